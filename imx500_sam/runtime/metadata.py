"""libcamera's IMX500 per-frame metadata, encoded and decoded (numpy + struct only).

The layout is libcamera's (as read by picamera2 0.3.38, ``picamera2/devices/imx500/imx500.py``):

- ``CnnOutputTensor``: every output tensor flattened in Fortran order and concatenated, float32
  values (a tuple of floats: libcamera's Python bindings turn array controls into tuples).
- ``CnnOutputTensorInfo``: a 712-byte little-endian struct ``CnnOutputTensorInfoExported``:
  ``char network_name[64]; u32 num_tensors; {u32 tensor_data_num; u32 num_dimensions;
  u16 size[16];}[16]; u8 frameCount`` (+3 bytes of struct padding). A tuple of byte values.
- ``CnnKpiInfo``: ``(dnn_runtime_us, dsp_runtime_us)``.
- ``ScalerCrop``: ``(x, y, w, h)`` in full-sensor pixels; ``SensorTimestamp``: ns.
- ``CnnInputTensor`` (with the control ``CnnEnableInputTensor``): the network's input tensor as the sensor
  stored it, planar (3, H, W) bytes in the network's input format (RGB or BGR), before picamera2's
  ``input_tensor_image`` undoes the input normalisation.
- Tensor injection (picamera2 ``prepare_tensor_for_injection``): planar 8-bit channels in the network's
  format, each padded to a width multiple of 32 and an even height; the frame that ran it carries
  ``frameCount`` = the driver's injection comparison frame (mod 256).

The emulator writes this format; the decoders here read it the way picamera2 does (tests check
that picamera2's own ``IMX500.get_outputs`` / ``get_kpi_info`` get the same arrays back).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

NETWORK_NAME_LEN = 64
MAX_NUM_TENSORS = 16
MAX_NUM_DIMENSIONS = 16

_TENSOR_FMT = f"II{MAX_NUM_DIMENSIONS}H"
_INFO_FMT = f"<{NETWORK_NAME_LEN}sI" + _TENSOR_FMT * MAX_NUM_TENSORS + "B3x"
TENSOR_INFO_SIZE = struct.calcsize(_INFO_FMT)  # 712, as ctypes lays out libcamera's struct

OUTPUT_TENSOR = "CnnOutputTensor"
OUTPUT_TENSOR_INFO = "CnnOutputTensorInfo"
KPI_INFO = "CnnKpiInfo"
SCALER_CROP = "ScalerCrop"
SENSOR_TIMESTAMP = "SensorTimestamp"
INPUT_TENSOR = "CnnInputTensor"
ENABLE_INPUT_TENSOR = "CnnEnableInputTensor"
FRAME_DURATION = "FrameDuration"


@dataclass(frozen=True)
class OutputTensorInfo:
    """Decoded ``CnnOutputTensorInfo``."""

    network_name: str
    shapes: tuple[tuple[int, ...], ...]
    frame_count: int


def pack_output_tensor_info(network_name: str, shapes: Sequence[Sequence[int]], frame_count: int = 0) -> bytes:
    """The 712-byte ``CnnOutputTensorInfo`` struct for output tensors of ``shapes``."""
    if not 1 <= len(shapes) <= MAX_NUM_TENSORS:
        raise ValueError(f"1 to {MAX_NUM_TENSORS} output tensors supported, got {len(shapes)}")
    fields: list[Any] = [network_name.encode("utf-8")[: NETWORK_NAME_LEN - 1], len(shapes)]
    for i in range(MAX_NUM_TENSORS):
        shape = [int(s) for s in shapes[i]] if i < len(shapes) else []
        if len(shape) > MAX_NUM_DIMENSIONS or any(not 0 < s < 65536 for s in shape):
            raise ValueError(f"tensor shape {shape} does not fit libcamera's u16[{MAX_NUM_DIMENSIONS}] sizes")
        fields += [int(np.prod(shape)) if shape else 0, len(shape), *shape, *([0] * (MAX_NUM_DIMENSIONS - len(shape)))]
    fields.append(frame_count & 0xFF)
    return struct.pack(_INFO_FMT, *fields)


def unpack_output_tensor_info(info: bytes | bytearray | Sequence[int]) -> OutputTensorInfo:
    """Parse a ``CnnOutputTensorInfo`` value (bytes or a list of byte values)."""
    raw = bytes(info)
    if len(raw) != TENSOR_INFO_SIZE:
        raise ValueError(f"tensor info length {len(raw)} does not match expected size {TENSOR_INFO_SIZE}")
    values = struct.unpack(_INFO_FMT, raw)
    name = values[0].split(b"\x00", 1)[0].decode("utf-8", errors="replace")
    num = values[1]
    per = 2 + MAX_NUM_DIMENSIONS
    shapes = []
    for i in range(min(num, MAX_NUM_TENSORS)):
        rec = values[2 + i * per : 2 + (i + 1) * per]
        shapes.append(tuple(int(s) for s in rec[2 : 2 + rec[1]]))
    return OutputTensorInfo(network_name=name, shapes=tuple(shapes), frame_count=int(values[-1]))


def encode_output_tensor(outputs: Sequence[np.ndarray]) -> tuple[float, ...]:
    """``CnnOutputTensor``: the tensors flattened in Fortran order, concatenated, as float32 values."""
    flat = np.concatenate([np.asarray(o, dtype=np.float32).ravel(order="F") for o in outputs])
    return tuple(flat.tolist())


def decode_outputs(metadata: dict[str, Any]) -> list[np.ndarray] | None:
    """The output tensors of a frame (as ``IMX500.get_outputs``), or None when it carries none."""
    tensor = metadata.get(OUTPUT_TENSOR)
    info = metadata.get(OUTPUT_TENSOR_INFO)
    if tensor is None or len(tensor) == 0 or info is None:
        return None
    flat = np.fromiter(tensor, dtype=np.float32, count=len(tensor))
    outputs, offset = [], 0
    for shape in unpack_output_tensor_info(info).shapes:
        size = int(np.prod(shape))
        if offset + size > flat.size:
            raise ValueError(f"CnnOutputTensor holds {flat.size} values, the tensor info needs more")
        outputs.append(flat[offset : offset + size].reshape(shape, order="F"))
        offset += size
    return outputs


def kpi_value(dnn_us: float, dsp_us: float) -> tuple[int, int]:
    """``CnnKpiInfo``: (dnn_runtime, dsp_runtime) in whole microseconds."""
    return (int(round(dnn_us)), int(round(dsp_us)))


def decode_kpi(metadata: dict[str, Any]) -> tuple[float, float] | None:
    """(dnn_ms, dsp_ms) from ``CnnKpiInfo`` (as ``IMX500.get_kpi_info``), or None."""
    kpi = metadata.get(KPI_INFO)
    if kpi is None:
        return None
    return kpi[0] / 1000, kpi[1] / 1000


def frame_count(metadata: dict[str, Any]) -> int | None:
    """``frameCount`` (0..255) of a frame's ``CnnOutputTensorInfo``, or None when it carries none."""
    info = metadata.get(OUTPUT_TENSOR_INFO)
    if not info:
        return None
    return unpack_output_tensor_info(info).frame_count


def injection_padded_size(width: int, height: int) -> tuple[int, int]:
    """The padded plane size of an injected tensor: width to a multiple of 32, height to a multiple of 2."""
    return ((int(width) + 31) // 32 * 32, (int(height) + 1) // 2 * 2)


def pack_injection_tensor(rgb: np.ndarray, input_format: str = "RGB", signed: bool = False) -> bytes:
    """An HxWx3 uint8 RGB image -> the bytes picamera2's ``prepare_tensor_for_injection`` makes of it.

    picamera2 takes float RGB in [0, 1] and quantises ``round(x * 255)`` (minus 128 when the input is
    signed), pads each plane and concatenates the planes in the network's order; a uint8 pixel p
    given as p/255 comes back as p, so the uint8 image is used directly.
    """
    img = np.asarray(rgb)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected a uint8 HxWx3 RGB image, got {img.dtype} {img.shape}")
    if input_format not in ("RGB", "BGR"):
        raise ValueError(f"tensor injection supports RGB and BGR inputs, not {input_format!r}")
    h, w = img.shape[:2]
    pw, ph = injection_padded_size(w, h)
    order = (0, 1, 2) if input_format == "RGB" else (2, 1, 0)
    planes = np.zeros((3, ph, pw), np.int16)  # padding stays 0, as in picamera2
    planes[:, :h, :w] = img.transpose(2, 0, 1)[list(order)].astype(np.int16) - (128 if signed else 0)
    return planes.astype(np.int8 if signed else np.uint8).tobytes()


def unpack_injection_tensor(raw: bytes, width: int, height: int, input_format: str = "RGB") -> np.ndarray:
    """Injected tensor bytes (unsigned) -> the HxWx3 uint8 RGB image they hold."""
    pw, ph = injection_padded_size(width, height)
    buf = np.frombuffer(bytes(raw), np.uint8)
    if buf.size != 3 * pw * ph:
        raise ValueError(f"injected tensor has {buf.size} bytes, a {width}x{height} input needs {3 * pw * ph}")
    planes = buf.reshape(3, ph, pw)[:, :height, :width]
    if input_format == "BGR":
        planes = planes[::-1]
    return np.ascontiguousarray(planes.transpose(1, 2, 0))


def encode_input_tensor(rgb: np.ndarray, input_format: str = "RGB") -> tuple[int, ...]:
    """``CnnInputTensor`` of an HxWx3 uint8 RGB network input (identity input normalisation): planar bytes."""
    planes = np.asarray(rgb, np.uint8).transpose(2, 0, 1)
    if input_format == "BGR":
        planes = planes[::-1]
    return tuple(np.ascontiguousarray(planes).ravel().tolist())


def decode_input_tensor(
    tensor: Sequence[int] | bytes,
    width: int,
    height: int,
    input_format: str = "RGB",
    norm_val: Sequence[int] = (0, 0, 0),
    norm_shift: Sequence[int] = (4, 4, 4),
    div_val: Sequence[int] = (1024, 1024, 1024),
    div_shift: int = 6,
) -> np.ndarray:
    """``CnnInputTensor`` -> HxWx3 uint8 BGR image, as picamera2's ``IMX500.input_tensor_image``.

    The defaults are the identity normalisation (gain 1, offset 0); on a Pi, picamera2 reads the real
    values from the .rpk's ``network_info.txt``.
    """
    r = np.array(tensor, dtype=np.uint8).astype(np.int32).reshape((3, height, width))
    if input_format != "BGR":
        r = r[(2, 1, 0), :, :]
    for i in range(3):
        r[i] = ((((r[i] << norm_shift[i]) - norm_val[i]) << div_shift) // div_val[i]) & 0xFF
    return np.transpose(r, (1, 2, 0)).astype(np.uint8)
