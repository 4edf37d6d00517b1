"""The sensor interface shared by the IMX500 (picamera2) and the emulated IMX500.

A sensor runs a segmentation network on an inference ROI (square, full-sensor pixels) and hands
back, per frame, the output image (BGR, OpenCV's order) and libcamera-style metadata with the
network's output tensors. Light module: numpy only.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imx500_sam.errors import BadInputError
from imx500_sam.prompt import ROI
from imx500_sam.runtime.geometry import SensorGeometry

SEGMENTATION_TASK = "segmentation"


@dataclass
class SensorFrame:
    """One frame from a sensor.

    ``roi`` is the sensor ROI the frame's tensor was computed on (None when unknown), ``outputs``
    the decoded output tensors (None when the frame carries none), ``dnn_ms`` / ``dsp_ms`` the
    sensor's own timing (``CnnKpiInfo``), ``timestamp_ns`` the ``SensorTimestamp``.
    """

    index: int
    image: np.ndarray
    metadata: dict[str, Any]
    geometry: SensorGeometry
    roi: ROI | None
    outputs: list[np.ndarray] | None
    dnn_ms: float | None = None
    dsp_ms: float | None = None
    timestamp_ns: int = 0
    tag: Any = None  # the tag given with the ROI this frame used (``Sensor.set_roi``)
    extra: dict[str, Any] = field(default_factory=dict)  # host stage timings (ms, emulator), roi_scaled (Pi)


def sensor_to_mask_ms(frame: SensorFrame, ready_ns: int) -> float | None:
    """Sensor-to-mask latency: ``ready_ns`` (``time.monotonic_ns()`` when the mask is ready on the CPU) minus the
    frame's ``SensorTimestamp``; None for a frame without a tensor or a timestamp."""
    if frame.outputs is None or not frame.timestamp_ns:
        return None
    return (ready_ns - frame.timestamp_ns) / 1e6


class Sensor(abc.ABC):
    """An IMX500-like sensor: set the inference ROI, capture frames with the network's outputs."""

    #: network input (width, height), e.g. (96, 96)
    input_size: tuple[int, int]
    #: the name the network reports in ``CnnOutputTensorInfo``
    network_name: str
    #: the network's input format ("RGB" / "BGR") and whether its 8-bit input is signed (tensor injection)
    input_format: str = "RGB"
    input_signed: bool = False
    #: sensor frames (libcamera requests) completed so far, those the sensor dropped included (RPS)
    requests: int = 0

    @property
    @abc.abstractmethod
    def geometry(self) -> SensorGeometry:
        """The current output-image <-> sensor mapping."""

    def peek_geometry(self) -> SensorGeometry:
        """The geometry before the first capture (a sensor that learns its output size from its first frame, the
        emulator, reads that frame now and keeps it)."""
        return self.geometry

    @abc.abstractmethod
    def set_roi(self, roi: ROI, tag: Any = None) -> None:
        """Set the inference ROI in full-sensor pixels (``IMX500.set_inference_roi_abs``).

        ``tag`` is handed back on the frames computed with this ROI (``SensorFrame.tag``).
        """

    @abc.abstractmethod
    def capture(self) -> SensorFrame | None:
        """The next frame, or None when the source has ended."""

    def set_frame_rate(self, fps: float) -> None:
        """Set the sensor frame rate (picamera2 control ``FrameRate``)."""
        raise NotImplementedError(f"{type(self).__name__} cannot change its frame rate")

    def inject(self, tensor: bytes) -> int:
        """Feed an input tensor (``metadata.pack_injection_tensor`` bytes) to the network instead of the ROI.

        Returns the ``frameCount`` (mod 256) of the frame that will carry its output (picamera2's
        ``get_injection_cmp_frm``). Needs a sensor opened with tensor injection enabled.
        """
        raise BadInputError(f"{type(self).__name__} was not opened with tensor injection.")

    def input_image(self, frame: SensorFrame) -> np.ndarray | None:
        """The network input the sensor read back for ``frame`` (HxWx3 BGR), or None (readback off / none)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the camera / source."""

    def __enter__(self) -> Sensor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_segmentation_intrinsics(intrinsics: dict[str, Any] | None, where: str) -> None:
    """BadInputError unless the network's intrinsics say ``task: segmentation``."""
    task = (intrinsics or {}).get("task")
    if task != SEGMENTATION_TASK:
        found = f"task {task!r}" if task else "no task"
        raise BadInputError(
            f"{where}: network intrinsics give {found}, a PicoSAM3 network must be a segmentation network.",
            hint='Package it with intrinsics {"task": "segmentation"} (imx500-sam package / imx500-sam intrinsics).',
        )
