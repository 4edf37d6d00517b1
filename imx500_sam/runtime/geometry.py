"""Output image <-> IMX500 sensor geometry (numpy + OpenCV).

Three coordinate systems:
- *sensor*: full-sensor pixels, 4056x3040 (``imx500_sam.facts.SENSOR_FULL_SIZE``). The inference ROI
  (``IMX500.set_inference_roi_abs``) is given here.
- *output*: pixels of the image the application sees (picamera2's ``main`` stream). It shows the
  sensor region ``ScalerCrop`` scaled to ``output_size``, the mapping picamera2's ``get_roi_scaled``
  applies: ``out = (sensor - crop.xy) * output_size / crop.size``.
- *input*: the network's input tensor (96x96): the ROI scaled by the sensor.

The prompt ROI itself comes from ``imx500_sam.prompt.prompt_roi`` under the model's crop convention (a square
shifted inside the sensor, or the authors' padded square clamped to it, which is not square at an edge),
computed in sensor pixels because that is where the sensor crops. The sensor scales any ROI rectangle into the
input tensor, so a non-square ROI is stretched on chip as the authors' crops are stretched in training; the
mask comes back over the same rectangle (``paste_mask``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imx500_sam.facts import SENSOR_FULL_SIZE
from imx500_sam.prompt import GROW, ROI, SHIFTED, paste_rect, prompt_roi

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class SensorGeometry:
    """How the output image relates to the sensor: its size and the ``ScalerCrop`` it shows."""

    output_size: tuple[int, int]
    scaler_crop: tuple[int, int, int, int]
    full_size: tuple[int, int] = SENSOR_FULL_SIZE

    def __post_init__(self) -> None:
        ow, oh = self.output_size
        cx, cy, cw, ch = self.scaler_crop
        fw, fh = self.full_size
        if ow < 1 or oh < 1 or cw < 1 or ch < 1:
            raise ValueError(f"empty geometry: output {self.output_size}, ScalerCrop {self.scaler_crop}")
        if cx < 0 or cy < 0 or cx + cw > fw or cy + ch > fh:
            raise ValueError(f"ScalerCrop {self.scaler_crop} is not inside the sensor {self.full_size}")

    @classmethod
    def for_output(cls, output_size: tuple[int, int], full_size: tuple[int, int] = SENSOR_FULL_SIZE) -> SensorGeometry:
        """The largest centred sensor region with the output's aspect ratio (as libcamera picks ScalerCrop)."""
        ow, oh = int(output_size[0]), int(output_size[1])
        fw, fh = int(full_size[0]), int(full_size[1])
        if ow < 1 or oh < 1:
            raise ValueError(f"output size must be positive, got {output_size}")
        if ow * fh >= oh * fw:  # output wider than the sensor: full width
            cw, ch = fw, max(1, min(fh, round(fw * oh / ow)))
        else:
            cw, ch = max(1, min(fw, round(fh * ow / oh))), fh
        return cls((ow, oh), ((fw - cw) // 2, (fh - ch) // 2, cw, ch), (fw, fh))

    @property
    def scale(self) -> tuple[float, float]:
        """Sensor pixels per output pixel, (x, y)."""
        return (self.scaler_crop[2] / self.output_size[0], self.scaler_crop[3] / self.output_size[1])

    def output_to_sensor(self, box: Box) -> Box:
        """A box (x, y, w, h) in output pixels -> the same region in sensor pixels (floats)."""
        sx, sy = self.scale
        x, y, w, h = (float(v) for v in box)
        return (self.scaler_crop[0] + x * sx, self.scaler_crop[1] + y * sy, w * sx, h * sy)

    def sensor_to_output(self, rect: Box) -> Box:
        """A rectangle (x, y, w, h) in sensor pixels -> output pixels (floats, not clipped)."""
        sx, sy = self.scale
        x, y, w, h = (float(v) for v in rect)
        return ((x - self.scaler_crop[0]) / sx, (y - self.scaler_crop[1]) / sy, w / sx, h / sy)

    def prompt_roi(self, box: Box, grow: float = GROW, convention: str = SHIFTED) -> ROI:
        """The sensor ROI for a prompt box in output pixels, under a crop convention.

        ``shifted``: a square inside the sensor. ``clamped`` / ``as-drawn``: clamped to the region the output image
        shows (``ScalerCrop``), as the authors clamp to their image.
        """
        if convention == SHIFTED:
            return prompt_roi(self.output_to_sensor(box), self.full_size, convention, grow)
        cx, cy, cw, ch = self.scaler_crop
        x, y, w, h = self.output_to_sensor(box)
        r = prompt_roi((x - cx, y - cy, w, h), (cw, ch), convention, grow)
        return ROI(r.x + cx, r.y + cy, r.w, r.h)

    def roi_rect(self, roi: ROI) -> tuple[int, int, int, int]:
        """The ROI on the output image's pixel grid: edges rounded to whole pixels, not clipped."""
        x, y, w, h = self.sensor_to_output(roi.xywh)
        x0, y0 = round(x), round(y)
        return (x0, y0, max(1, round(x + w) - x0), max(1, round(y + h) - y0))

    def roi_output_rect(self, roi: ROI) -> tuple[int, int, int, int]:
        """The ROI in output pixels, clipped to the output image (like picamera2's ``get_roi_scaled``)."""
        x, y, w, h = self.roi_rect(roi)
        ow, oh = self.output_size
        x0, y0, x1, y1 = max(0, x), max(0, y), min(ow, x + w), min(oh, y + h)
        return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))

    def paste_mask(self, mask: np.ndarray, roi: ROI) -> np.ndarray:
        """A network-resolution mask (logits or probabilities) of ``roi`` -> float32 (H, W) in output pixels.

        The mask is resized (bilinear, as ``imx500_sam.prompt.paste_mask``) onto the ROI's whole-pixel
        rectangle (``roi_rect``: at most half a pixel from the exact ROI), zero elsewhere; an ROI partly
        outside the output image is clipped, not squeezed.
        """
        return paste_rect(mask, self.roi_rect(roi), self.output_size)
