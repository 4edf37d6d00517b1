"""The IMX500's input preprocessor: per-channel gain and offset from 8-bit pixels to the network's input integers.

Where its settings live: in the .rpk, ``network_info.txt`` of network 0 (written by ``imx500-package``, read by the
sensor's DNN loader and by picamera2): ``inputTensorNorm_K00/K11/K22`` are the gains of the R, G, B rows (RGB
format; 12-bit two's complement, ``0x400`` = 1.0) and ``inputTensorNorm_K03/K13/K23`` their offsets (13-bit two's
complement in 1/16 steps, bit 12 set = a signed input). picamera2 (``IMX500.__ni_from_network``) decodes them into
``input_tensor.div_val`` (gain x 1024) and ``input_tensor.norm_val`` (offset x 16). Raspberry Pi's zoo uses gain 1.0
and offset 0 (unsigned) or -128 (signed): ``imx500-package`` takes no normalisation; the toolkit writes other values
into the packaged .rpk (``firmware_packaging.rpk.with_network_info``).

The arithmetic modelled here (the emulator and ``eval --int8`` use it, so they compute what the package sets):
``t = clip(floor((p * div_val + 64 * norm_val + 512) / 1024), qmin, qmax)``, i.e. ``p * gain + offset`` rounded half
up, for the pixel ``p`` in 0..255; the network's input is ``t * scale``. (picamera2's readback
``input_tensor_image`` inverts it: ``p = ((t << 4) - norm_val) << 6) // div_val``.) Light: numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from imx500_sam.errors import BadInputError

GAIN_ONE = 1024  # div_val of gain 1.0 (0x400)
OFFSET_STEPS = 16  # norm_val per input integer (picamera2: norm_shift 4)
GAIN_BITS, OFFSET_BITS = 12, 13
GAIN_KEYS = ("inputTensorNorm_K00", "inputTensorNorm_K11", "inputTensorNorm_K22")  # RGB rows R, G, B
OFFSET_KEYS = ("inputTensorNorm_K03", "inputTensorNorm_K13", "inputTensorNorm_K23")
MAX_ERROR_STEPS = 0.5  # the preprocessor must land within half an input step of the exact value, for every pixel
# the authors' input: torchvision ToTensor (pixels / 255), then Normalize(ImageNet mean, std), outside the network
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
AUTHORS_INPUT = "ImageNet mean/std of pixels / 255, outside the network (the authors' convention)"
SENSOR_INPUT = "pixels / 256 into the network (normalisation inside the quantized graph)"


def _twos(value: int, bits: int) -> int:
    return value & ((1 << bits) - 1)


@dataclass(frozen=True)
class InputPreprocessor:
    """Per-channel (R, G, B) gain x 1024 (``div_val``) and offset x 16 (``norm_val``), and the integer range."""

    div_val: tuple[int, int, int]
    norm_val: tuple[int, int, int]
    signed: bool

    @classmethod
    def identity(cls, signed: bool = False) -> InputPreprocessor:
        """Raspberry Pi's zoo settings: gain 1, offset 0 (unsigned) or -128 (signed)."""
        off = -128 * OFFSET_STEPS if signed else 0
        return cls((GAIN_ONE,) * 3, (off,) * 3, signed)

    @classmethod
    def for_normalised_input(
        cls,
        scale: float,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        pixel_divisor: float = 255.0,
        signed: bool = True,
        where: str = "network",
    ) -> tuple[InputPreprocessor, float]:
        """Settings that give ``round(((p / pixel_divisor) - mean) / std / scale)``: (preprocessor, max error in steps).

        BadInputError when the registers cannot hold it within ``MAX_ERROR_STEPS`` for every pixel value.
        """
        gains = [1.0 / (pixel_divisor * s * scale) for s in std]
        offsets = [-m / (s * scale) for m, s in zip(mean, std, strict=True)]
        div = tuple(round(g * GAIN_ONE) for g in gains)
        norm = tuple(round(o * OFFSET_STEPS) for o in offsets)
        pre = cls(div, norm, signed)  # type: ignore[arg-type]
        p = np.arange(256, dtype=np.float64)
        err = max(
            float(np.abs(p * d / GAIN_ONE + n / OFFSET_STEPS - (p * g + o)).max())
            for d, n, g, o in zip(div, norm, gains, offsets, strict=True)
        )
        lim_g, lim_o = 1 << (GAIN_BITS - 1), 1 << (OFFSET_BITS - 1)
        fits = all(-lim_g <= d < lim_g for d in div) and all(-lim_o <= n < lim_o for n in norm)
        if not fits or err > MAX_ERROR_STEPS:
            raise BadInputError(
                f"{where}: its input (scale {scale:.6g}, normalised with mean {list(mean)} / std {list(std)} outside "
                f"the network) needs per-channel gains {[round(g, 4) for g in gains]} and offsets "
                f"{[round(o, 2) for o in offsets]}, which the IMX500's input preprocessor cannot set within half an "
                f"input step (max error {err:.2f} steps).",
                hint="Convert the float network instead (the .pt or float .onnx): the normalisation then goes into "
                "the quantized graph.",
            )
        return pre, err

    @property
    def range(self) -> tuple[int, int]:
        """The input integers' range."""
        return (-128, 127) if self.signed else (0, 255)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """HxWx3 (or NxHxWx3) uint8 RGB -> the network's input integers, channels first (int16, 3xHxW / Nx3xHxW)."""
        p = np.moveaxis(np.asarray(rgb, dtype=np.int32), -1, -3)
        shape = (3, 1, 1)
        acc = p * np.reshape(self.div_val, shape) + 64 * np.reshape(self.norm_val, shape) + GAIN_ONE // 2
        lo, hi = self.range
        return np.clip(np.floor_divide(acc, GAIN_ONE), lo, hi).astype(np.int16)

    def deviation(self, rgb: np.ndarray, exact: np.ndarray, scale: float) -> dict[str, float]:
        """How far this preprocessor's integers for ``rgb`` are from the exact input ``exact`` (float, channels
        first, e.g. ``normalised_input(rgb)``) rounded to the input step ``scale``: the fraction of input integers
        that differ, and the largest difference in steps."""
        lo, hi = self.range
        diff = np.abs(self.apply(rgb) - np.clip(np.round(np.asarray(exact) / scale), lo, hi))
        return {"input_integers_differing": float(np.mean(diff != 0)), "max_input_difference_steps": float(diff.max())}

    def network_info(self) -> dict[str, str]:
        """The ``network_info.txt`` values (RGB input format), as ``imx500-package`` writes them (``0x%04X``)."""
        out = {k: f"0x{_twos(d, GAIN_BITS):04X}" for k, d in zip(GAIN_KEYS, self.div_val, strict=True)}
        out.update({k: f"0x{_twos(n, OFFSET_BITS):04X}" for k, n in zip(OFFSET_KEYS, self.norm_val, strict=True)})
        return out

    def is_identity(self) -> bool:
        """Whether these are the settings ``imx500-package`` writes anyway."""
        return self == InputPreprocessor.identity(self.signed)

    def to_dict(self) -> dict[str, Any]:
        """The report.json form."""
        return {
            "div_val": list(self.div_val),
            "norm_val": list(self.norm_val),
            "gain": [d / GAIN_ONE for d in self.div_val],
            "offset": [n / OFFSET_STEPS for n in self.norm_val],
            "signed": self.signed,
            "network_info": self.network_info(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputPreprocessor:
        """Inverse of ``to_dict`` (BadInputError on a malformed entry)."""
        try:
            div = tuple(int(v) for v in data["div_val"])
            norm = tuple(int(v) for v in data["norm_val"])
            if len(div) != 3 or len(norm) != 3:
                raise ValueError("three channels")
            return cls(div, norm, bool(data["signed"]))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(f"input preprocessor settings {data!r}: {exc}.") from exc


def network_input(pre: InputPreprocessor | None, rgb: np.ndarray, scale: float) -> np.ndarray:
    """What the sensor feeds the network for uint8 RGB pixels (HxWx3 or NxHxWx3): float32 channels-first
    ``t * scale``, ``t`` the preprocessor's integers (None: gain 1, offset 0). The emulator and ``eval --int8``."""
    t = (pre or InputPreprocessor.identity(False)).apply(rgb)
    return np.multiply(t, scale, dtype=np.float32)


def normalised_input(
    rgb: np.ndarray,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    pixel_divisor: float = 255.0,
) -> np.ndarray:
    """The exact normalised input of uint8 RGB pixels (HxWx3 or NxHxWx3): float32 channels first,
    ``(p / pixel_divisor - mean) / std`` (default: the authors' ``ToTensor`` then ``Normalize(ImageNet)``)."""
    p = np.moveaxis(np.asarray(rgb, dtype=np.float64), -1, -3) / pixel_divisor
    return ((p - np.reshape(mean, (3, 1, 1))) / np.reshape(std, (3, 1, 1))).astype(np.float32)


def pixels_of(batch: np.ndarray) -> np.ndarray:
    """The uint8 NxHxWx3 pixels of a model-input batch (float32 Nx3xHxW, pixels / 256: ``prompt.to_model_input``)."""
    return np.clip(np.round(np.asarray(batch) * 256.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
