"""A prompt session over any sensor: box prompts -> on-sensor ROIs -> masks in output-image pixels.

Each prompt is a box (x, y, w, h) in output-image pixels. Its ROI, in sensor pixels, follows the model's crop
convention (``SensorGeometry.prompt_roi`` -> ``imx500_sam.prompt.prompt_roi``: the square grown 10% shifted inside
the sensor, the authors' padded square clamped to it, or the box as drawn). Several prompts take turns, one ROI
per frame (round robin); prompts can be added and removed between frames (``add_prompt`` / ``remove_prompt``:
the web front end), each keeping its ``id``. With ``track=True`` the next ROI of a prompt comes from its
current mask's box (the mask parts overlapping the expected box; size smoothed), its
centre corrected by the object's motion in the image (mask-weighted phase correlation with the prompt's
previous frame) and moved on by the smoothed motion; when the mask vanishes the
prompt is reported ``lost`` and its ROI stays where the object was last seen until it is found again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from imx500_sam.prompt import GROW, ROI, SHIFTED, check_convention, clip_box_to_frame
from imx500_sam.runtime.geometry import Box, SensorGeometry
from imx500_sam.runtime.sensor import Sensor, SensorFrame


@dataclass(eq=False)
class PromptState:
    """One prompt: its current box (output pixels), ROI (sensor pixels) and tracking status."""

    box: Box
    roi: ROI
    track: bool
    id: int = 0  # stable while prompts come and go (the index of the prompts given at the start)
    lost: bool = False
    lost_frames: int = 0
    velocity: tuple[float, float] = (0.0, 0.0)  # centre motion per turn (output pixels)
    last_centre: tuple[float, float] | None = None
    mask: np.ndarray | None = None  # the latest mask (bool, output pixels)
    last_grey: np.ndarray | None = None  # the image of this prompt's last turn (tracking's motion cue)
    prev_mask: np.ndarray | None = None  # the mask of that turn

    def restart_tracking(self) -> None:
        """Forget the motion and the previous image: tracking starts again from the current box."""
        self.velocity, self.last_centre = (0.0, 0.0), None
        self.last_grey, self.prev_mask = None, None


@dataclass
class MaskResult:
    """The mask of one prompt on one frame, in output-image pixels, with its timing."""

    frame: int
    prompt: int  # the prompt's id (its index among the boxes given, when none was removed)
    roi: ROI
    roi_output: tuple[int, int, int, int]
    mask: np.ndarray
    bbox: tuple[int, int, int, int] | None
    mask_area: int
    lost: bool
    dnn_ms: float | None
    dsp_ms: float | None
    host_ms: float
    fps: float | None
    image: np.ndarray
    sensor_frame: SensorFrame = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """The per-frame JSON record (``imx500-sam run --json``)."""
        return {
            "frame": self.frame,
            "prompt": self.prompt,
            "roi": list(self.roi.xywh),
            "roi_output": list(self.roi_output),
            "mask_area": self.mask_area,
            "bbox": list(self.bbox) if self.bbox else None,
            "lost": self.lost,
            "dnn_ms": None if self.dnn_ms is None else round(self.dnn_ms, 3),
            "dsp_ms": None if self.dsp_ms is None else round(self.dsp_ms, 3),
            "host_ms": round(self.host_ms, 3),
            "fps": None if self.fps is None else round(self.fps, 2),
        }


def fast_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box (x, y, w, h) of the nonzero pixels of a 2-D mask (as ``prompt.mask_bbox``), or None."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return (int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))


def main_component_bbox(
    mask: np.ndarray, window: tuple[int, int, int, int], prior: Box | None = None
) -> tuple[int, int, int, int] | None:
    """Box (output pixels) of the object's connected part of ``mask`` inside ``window`` (x, y, w, h).

    The parts that overlap ``prior`` (the box the object was expected in), else the largest part.
    """
    x, y, w, h = window
    sub = np.ascontiguousarray(mask[y : y + h, x : x + w]).view(np.uint8)
    if w < 1 or h < 1 or not sub.any():
        return None
    n, labels, stats, _ = cv2.connectedComponentsWithStats(sub, connectivity=8)
    if n <= 2:
        bx, by, bw, bh = fast_bbox(sub)  # type: ignore[misc]
        return (x + bx, y + by, bw, bh)
    keep = [1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))]  # default: the largest part
    if prior is not None:
        px0, py0 = max(0, int(prior[0]) - x), max(0, int(prior[1]) - y)
        px1, py1 = min(w, int(prior[0] + prior[2]) - x), min(h, int(prior[1] + prior[3]) - y)
        if px1 > px0 and py1 > py0:
            inside = np.bincount(labels[py0:py1, px0:px1].ravel(), minlength=n)
            overlapping = [k for k in range(1, n) if inside[k] > 0]
            if overlapping:
                keep = overlapping  # every part touching the expected box: objects come in pieces
    x0 = min(int(stats[k, 0]) for k in keep)
    y0 = min(int(stats[k, 1]) for k in keep)
    x1 = max(int(stats[k, 0] + stats[k, 2]) for k in keep)
    y1 = max(int(stats[k, 1] + stats[k, 3]) for k in keep)
    return (x + x0, y + y0, x1 - x0, y1 - y0)


def object_motion(
    prev: np.ndarray, cur: np.ndarray, mask: np.ndarray, box: Box, margin: float = 0.3
) -> tuple[float, float] | None:
    """The object's shift (dx, dy) in pixels from grey image ``prev`` to ``cur``.

    Phase correlation around ``box`` (grown by ``margin``), weighted by the object's mask in ``prev``,
    so the object's motion wins over a still background. None when there is too little to go on.
    """
    h, w = prev.shape[:2]
    bx, by, bw, bh = box
    x0, y0 = max(0, int(bx - margin * bw)), max(0, int(by - margin * bh))
    x1, y1 = min(w, int(bx + bw * (1 + margin)) + 1), min(h, int(by + bh * (1 + margin)) + 1)
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    weight = cv2.GaussianBlur(mask[y0:y1, x0:x1].astype(np.float32), (0, 0), 2.0)
    if weight.sum() < 16:
        return None
    weight *= cv2.createHanningWindow((x1 - x0, y1 - y0), cv2.CV_32F)
    a = prev[y0:y1, x0:x1].astype(np.float32)
    b = cur[y0:y1, x0:x1].astype(np.float32)
    (dx, dy), response = cv2.phaseCorrelate(a, b, weight)
    if response < 0.05 or abs(dx) > bw or abs(dy) > bh:
        return None
    return (float(dx), float(dy))


class PromptSession:
    """Prompts on a sensor; iterate to get one ``MaskResult`` per frame.

    ``boxes`` are the first prompts (ids 0, 1, ...); more can be added later (``add_prompt``).

    ``threshold`` is on the network's logits (mask = logit > threshold); when tracking, ``smoothing``
    (0..1) is the weight of the previous motion and ``size_smoothing`` that of the previous box size, and
    the box changes size by at most ``max_scale_step`` per turn; with ``motion`` the image motion of the
    object moves its last position and ``motion_weight`` (0..1) is its weight against the mask's centre;
    a mask smaller than ``min_area_fraction`` of its ROI means the object is lost. ``convention``: how a box
    becomes its ROI (``imx500_sam.prompt.CROP_CONVENTIONS``): the one the model was trained with.
    """

    def __init__(
        self,
        sensor: Sensor,
        boxes: Sequence[Sequence[float]] = (),
        track: bool = False,
        threshold: float = 0.0,
        smoothing: float = 0.3,
        size_smoothing: float = 0.8,
        min_area_fraction: float = 0.002,
        grow: float = GROW,
        max_scale_step: float = 1.1,
        motion: bool = True,
        motion_weight: float = 0.5,
        convention: str = SHIFTED,
    ) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.sensor = sensor
        self.track = track
        self.threshold = float(threshold)
        self.smoothing = float(smoothing)
        if not 0.0 <= size_smoothing < 1.0:
            raise ValueError(f"size_smoothing must be in [0, 1), got {size_smoothing}")
        self.size_smoothing = float(size_smoothing)
        self.min_area_fraction = float(min_area_fraction)
        self.grow = grow
        self.convention = check_convention(convention)
        if max_scale_step < 1.0:
            raise ValueError(f"max_scale_step must be >= 1, got {max_scale_step}")
        self.max_scale_step = float(max_scale_step)
        if not 0.0 <= motion_weight <= 1.0:
            raise ValueError(f"motion_weight must be in [0, 1], got {motion_weight}")
        self.motion = motion
        self.motion_weight = float(motion_weight)
        self.prompts: list[PromptState] = []
        self._next_id = 0
        self.notices: list[str] = []  # one line per box clamped to the output image (prompt.clip_box_to_frame)
        for b in boxes:
            self.add_prompt(b)
        self._turn = 0
        self._last_time: float | None = None
        self._fps: float | None = None

    def add_prompt(self, box: Sequence[float], track: bool | None = None) -> PromptState:
        """Add a prompt (box in output pixels; BadInputError when it is not in the image); it gets the next id.

        A box partly outside the image is clamped to it, with a line in ``notices`` (``prompt.clip_box_to_frame``)."""
        geometry = self._geometry()
        clipped, notice = clip_box_to_frame(box, geometry.output_size)
        if notice:
            self.notices.append(notice)
        state = PromptState(
            box=clipped,
            roi=geometry.prompt_roi(clipped, self.grow, self.convention),
            track=self.track if track is None else bool(track),
            id=self._next_id,
        )
        self._next_id += 1
        self.prompts.append(state)
        return state

    def prompt(self, prompt_id: int) -> PromptState | None:
        """The prompt with this id, or None (never given, or removed)."""
        return next((p for p in self.prompts if p.id == prompt_id), None)

    def remove_prompt(self, prompt_id: int) -> PromptState:
        """Remove the prompt with this id (KeyError when there is none); the others keep their turns."""
        state = self.prompt(prompt_id)
        if state is None:
            raise KeyError(prompt_id)
        index = next(i for i, p in enumerate(self.prompts) if p is state)
        pos = self._turn % len(self.prompts)  # the next prompt's turn
        self.prompts.pop(index)
        self._turn = pos - 1 if index < pos else pos
        return state

    def set_track(self, track: bool) -> None:
        """Turn tracking on or off for every prompt (and those added later); tracking restarts from the boxes."""
        self.track = bool(track)
        for state in self.prompts:
            state.track = self.track
            state.restart_tracking()

    def set_box(self, index: int, box: Sequence[float]) -> str | None:
        """Re-prompt prompt ``index`` with a new box (output pixels); clears its lost state.

        Returns the notice when the box was clamped to the output image (``prompt.clip_box_to_frame``)."""
        geometry = self._geometry()
        state = self.prompts[index]
        state.box, notice = clip_box_to_frame(box, geometry.output_size)
        state.roi = geometry.prompt_roi(state.box, self.grow, self.convention)
        state.lost, state.lost_frames = False, 0
        state.restart_tracking()
        return notice

    @property
    def fps(self) -> float | None:
        """Smoothed results per second so far (None before the second frame)."""
        return self._fps

    def _geometry(self) -> SensorGeometry:
        return self.sensor.peek_geometry()

    def __iter__(self) -> Iterator[MaskResult]:
        while True:
            result = self.step()
            if result is None:
                return
            yield result

    def step(self) -> MaskResult | None:
        """Set the next prompt's ROI, capture a frame, return its mask (None when the source ends).

        A frame computed on the ROI of a prompt removed meanwhile (a sensor whose ROI takes effect later) is
        skipped. ValueError when there is no prompt.
        """
        if not self.prompts:
            raise ValueError("no prompt to segment: add one with add_prompt()")
        pos = self._turn % len(self.prompts)
        current = self.prompts[pos]
        self.sensor.set_roi(current.roi, tag=current.id)
        while True:
            frame = self.sensor.capture()
            if frame is None:
                return None
            # a sensor whose ROI takes effect later says which prompt's ROI the frame used
            state = self.prompt(frame.tag) if isinstance(frame.tag, int) else current
            if state is not None:
                break
        t0 = time.perf_counter()
        roi = frame.roi or state.roi
        geometry = frame.geometry
        if not frame.outputs:
            logits = None
            mask = np.zeros((geometry.output_size[1], geometry.output_size[0]), dtype=bool)
        else:
            logits = geometry.paste_mask(frame.outputs[0], roi)
            mask = logits > self.threshold
        roi_out = geometry.roi_output_rect(roi)
        wx, wy, ww, wh = roi_out
        window = mask[wy : wy + wh, wx : wx + ww]  # the mask is zero outside the ROI
        area = int(np.count_nonzero(window))
        bbox = fast_bbox(window)
        if bbox is not None:
            bbox = (bbox[0] + wx, bbox[1] + wy, bbox[2], bbox[3])
        roi_area = max(1, roi_out[2] * roi_out[3])
        lost = logits is not None and area < max(4.0, self.min_area_fraction * roi_area)
        state.mask = mask
        state.lost = lost
        if lost:
            state.lost_frames += 1
            state.velocity, state.last_centre = (0.0, 0.0), None
        else:
            state.lost_frames = 0
            window_box = main_component_bbox(mask, roi_out, state.box) if state.track else None
            if window_box is not None:
                motion = None
                grey = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY) if self.motion else None
                if grey is not None and state.last_grey is not None and state.last_grey.shape == grey.shape:
                    prev_mask = state.prev_mask if state.prev_mask is not None else mask
                    motion = object_motion(state.last_grey, grey, prev_mask, state.box)
                state.last_grey = grey
                state.prev_mask = mask
                state.box = self._follow(state, window_box, roi_out, motion)
                state.roi = geometry.prompt_roi(state.box, self.grow, self.convention)
        now = time.perf_counter()
        if self._last_time is not None:
            inst = 1.0 / max(1e-9, now - self._last_time)
            self._fps = inst if self._fps is None else 0.9 * self._fps + 0.1 * inst
        self._last_time = now
        # the next prompt's turn (a prompt added now comes next, after this round); a frame without a tensor
        # (the network still busy) gave no prompt its mask: the same prompt again, so none is starved
        self._turn = pos + 1 if frame.outputs else pos
        return MaskResult(
            frame=frame.index,
            prompt=state.id,
            roi=roi,
            roi_output=roi_out,
            mask=mask,
            bbox=bbox,
            mask_area=area,
            lost=lost,
            dnn_ms=frame.dnn_ms,
            dsp_ms=frame.dsp_ms,
            host_ms=(now - t0) * 1e3,
            fps=self._fps,
            image=frame.image,
            sensor_frame=frame,
        )

    def _follow(
        self,
        state: PromptState,
        meas: tuple[int, int, int, int],
        window: tuple[int, int, int, int],
        motion: tuple[float, float] | None = None,
    ) -> Box:
        """Next box of a tracked prompt from its mask's box ``meas`` inside the ROI ``window``.

        Centre: the measured centre plus the smoothed motion per turn (the object moves while the
        next frame is taken). Size: smoothed; a side where the mask touches the ROI's edge is cut
        off by the ROI, so the box does not shrink along that axis.
        """
        s = self.smoothing
        old = state.box
        mx, my, mw, mh = (float(v) for v in meas)
        cx, cy = mx + mw / 2, my + mh / 2
        if motion is not None and state.last_centre is not None:
            # the image motion moves the object's last position; the mask's centre corrects it
            f = self.motion_weight
            ocx, ocy = state.last_centre[0] + motion[0], state.last_centre[1] + motion[1]
            cx, cy = f * ocx + (1 - f) * cx, f * ocy + (1 - f) * cy
        wx, wy, ww, wh = window
        cut_x = mx <= wx + 1 or mx + mw >= wx + ww - 1
        cut_y = my <= wy + 1 or my + mh >= wy + wh - 1
        z = self.size_smoothing
        w = z * old[2] + (1 - z) * mw
        h = z * old[3] + (1 - z) * mh
        if cut_x:
            w = max(w, old[2])
        if cut_y:
            h = max(h, old[3])
        k = self.max_scale_step  # objects do not change size fast: a bad mask cannot collapse or blow up the ROI
        w = min(max(w, old[2] / k), old[2] * k)
        h = min(max(h, old[3] / k), old[3] * k)
        if state.last_centre is not None:
            # damped, and bounded by a quarter of the box per turn: a noisy mask must not fling the ROI away
            lim_x, lim_y = 0.25 * w, 0.25 * h
            vx = s * state.velocity[0] + (1 - s) * (cx - state.last_centre[0])
            vy = s * state.velocity[1] + (1 - s) * (cy - state.last_centre[1])
            state.velocity = (min(max(vx, -lim_x), lim_x), min(max(vy, -lim_y), lim_y))
        state.last_centre = (cx, cy)
        px, py = cx + state.velocity[0], cy + state.velocity[1]
        return (px - w / 2, py - h / 2, w, h)
