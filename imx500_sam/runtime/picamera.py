"""The IMX500 on a Raspberry Pi through picamera2 (imported when a camera is opened).

Follows picamera2's own IMX500 examples: ``IMX500(rpk)`` is built before ``Picamera2``, the
network firmware upload shows ``show_network_fw_progress_bar``, the network's intrinsics must say
``task: segmentation``, the inference ROI is set with ``set_inference_roi_abs`` in full-sensor
pixels, outputs come from ``get_outputs``, timing from ``get_kpi_info`` and the ROI in the output
stream from ``get_roi_scaled``. Tensor injection follows picamera2's
``imx500_object_detection_injection_demo.py``: ``IMX500(rpk, tensor_injection=True)``, the tensor bytes in a
memfd handed to the driver (picamera2's ``IMX500.__set_input_tensor``), ``get_injection_cmp_frm`` for the
frame that will carry its output; input readback with the control ``CnnEnableInputTensor`` and
``input_tensor_image``. Not run on a Pi by this project's tests (no camera here): they run it against
picamera2's real IMX500 class with the v4l2 device and the camera replaced.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from imx500_sam.errors import BadInputError, ToolchainMissingError
from imx500_sam.pi import require_pi
from imx500_sam.prompt import ROI
from imx500_sam.runtime.geometry import SensorGeometry
from imx500_sam.runtime.sensor import Sensor, SensorFrame, check_segmentation_intrinsics


def _import_picamera2() -> tuple[Any, Any, Any]:
    try:
        from picamera2 import Picamera2
        from picamera2.devices import IMX500
        from picamera2.devices.imx500 import NetworkIntrinsics
    except ImportError as exc:
        require_pi("--rpk (the AI Camera through picamera2)", "Off the Pi, use --emulate CONVERT_DIR.")
        raise ToolchainMissingError(
            f"picamera2 is not available ({exc}).",
            hint="On Raspberry Pi OS: sudo apt install imx500-all python3-picamera2, and make the venv with "
            "--system-site-packages (docs/run.md, 'On the Pi'). Off the Pi use --emulate.",
        ) from exc
    return Picamera2, IMX500, NetworkIntrinsics


MASKS_ONLY_STREAM = (64, 48)  # the main stream requested in masks-only mode (4:3, as the default 640x480)
NO_IMAGE = np.zeros((0, 0, 3), np.uint8)  # a masks-only frame's image: none is read
NO_IMAGE.flags.writeable = False


class IMX500Sensor(Sensor):
    """The Raspberry Pi AI Camera running a PicoSAM3 ``.rpk``.

    ``roi_settle_frames``: frames dropped after the ROI changes, so that a frame's tensor belongs to
    the ROI it is reported with (the ROI control reaches the sensor a frame or more later; the exact
    delay has not been measured on a device by this project).

    ``images=False`` (masks only): the main stream is configured at ``MASKS_ONLY_STREAM`` in YUV420 (the Pi 5 ISP
    back end's driver, pisp_be, takes outputs down to 16x16, ``PISP_BACK_END_MIN_TILE_WIDTH/HEIGHT``, and clamps
    smaller requests up), and no image is ever read from a request: frames carry an empty image; masks are still
    pasted on an ``output_size`` grid of the same sensor region (``ScalerCrop``).
    """

    def __init__(
        self,
        rpk: str | Path,
        output_size: tuple[int, int] = (640, 480),
        roi_settle_frames: int = 1,
        camera_id: str = "",
        frame_rate: float | None = None,
        tensor_injection: bool = False,
        input_tensor: bool = False,
        images: bool = True,
    ) -> None:
        path = Path(rpk)
        if not path.is_file():
            raise BadInputError(f"{path}: no such .rpk file.", hint="Make one with imx500-sam package on the Pi.")
        Picamera2, IMX500, NetworkIntrinsics = _import_picamera2()
        try:
            extra = {"tensor_injection": True} if tensor_injection else {}
            self.imx500 = IMX500(os.path.abspath(path), camera_id=camera_id, **extra)  # must come before Picamera2
        except RuntimeError as exc:
            raise BadInputError(
                f"{path}: cannot load it on an IMX500 ({exc}).",
                hint="Check that the AI Camera is connected (rpicam-hello --list-cameras) and imx500-all is installed.",
            ) from exc
        intrinsics = self.imx500.network_intrinsics or NetworkIntrinsics()
        check_segmentation_intrinsics(intrinsics.intrinsics, str(path))
        intrinsics.update_with_defaults()
        self.intrinsics = intrinsics
        w, h = self.imx500.get_input_size()
        self.input_size = (int(w), int(h))
        tensor_cfg = self.imx500.config.get("input_tensor", {})
        self.input_format = str(tensor_cfg.get("input_format", "RGB"))
        self.input_signed = tensor_cfg.get("dtype") == "signed"
        self.network_name = path.stem
        self.roi_settle_frames = max(0, int(roi_settle_frames))
        self.tensor_injection = tensor_injection
        self.requests = 0
        self.picam2 = Picamera2(self.imx500.camera_num)
        controls: dict[str, Any] = {"FrameRate": float(frame_rate) if frame_rate else intrinsics.inference_rate}
        if input_tensor:
            controls["CnnEnableInputTensor"] = True
        self.images = images
        main = (
            {"size": tuple(output_size), "format": "RGB888"}  # BGR byte order, as OpenCV
            if images
            else {"size": MASKS_ONLY_STREAM, "format": "YUV420"}
        )
        config = self.picam2.create_preview_configuration(main=main, controls=controls, buffer_count=12)
        self.imx500.show_network_fw_progress_bar()
        self.picam2.start(config, show_preview=False)
        self.stream_size = tuple(self.picam2.camera_configuration()["main"]["size"])
        self.output_size = self.stream_size if images else tuple(int(v) for v in output_size)
        self._geometry = SensorGeometry.for_output(self.output_size)
        self._roi: ROI | None = None
        self._tag: Any = None
        self._settle = 0
        self._index = 0

    @property
    def geometry(self) -> SensorGeometry:
        """Output-image <-> sensor mapping from the last frame's ``ScalerCrop``."""
        return self._geometry

    def set_roi(self, roi: ROI, tag: Any = None) -> None:
        """``IMX500.set_inference_roi_abs`` in full-sensor pixels."""
        self._tag = tag
        if roi != self._roi:
            self.imx500.set_inference_roi_abs(roi.xywh)
            self._roi = roi
            self._settle = self.roi_settle_frames

    def set_frame_rate(self, fps: float) -> None:
        """picamera2's ``FrameRate`` control (takes effect a few frames later)."""
        self.picam2.set_controls({"FrameRate": float(fps)})

    def inject(self, tensor: bytes) -> int:
        """Hand an input tensor to the driver in a memfd, as picamera2's injection demo; the comparison frame."""
        if not self.tensor_injection:
            return super().inject(tensor)
        fd = os.memfd_create("imx500-sam-tensor", os.MFD_CLOEXEC)
        try:
            view = memoryview(tensor)
            while view:
                view = view[os.write(fd, view) :]
            self.imx500._IMX500__set_input_tensor(fd)  # picamera2's own (private) setter, as its demo uses it
            return int(self.imx500.get_injection_cmp_frm()) & 0xFF
        finally:
            os.close(fd)

    def input_image(self, frame: SensorFrame) -> Any:
        """``CnnInputTensor`` decoded by picamera2's ``input_tensor_image`` (HxWx3 BGR), or None."""
        tensor = frame.metadata.get("CnnInputTensor")
        return None if not tensor else self.imx500.input_tensor_image(tensor)

    def capture(self) -> SensorFrame | None:
        """The next frame with a tensor computed on the current ROI."""
        while True:
            request = self.picam2.capture_request()
            self.requests += 1
            try:
                if self._settle > 0:
                    self._settle -= 1
                    continue
                metadata = request.get_metadata()
                image = request.make_array("main") if self.images else NO_IMAGE
                outputs = self.imx500.get_outputs(metadata)
                kpi = self.imx500.get_kpi_info(metadata)
                roi_scaled = self.imx500.get_roi_scaled(request)
            finally:
                request.release()
            if "ScalerCrop" in metadata:
                self._geometry = SensorGeometry(self.output_size, tuple(metadata["ScalerCrop"]))
            frame = SensorFrame(
                index=self._index,
                image=image,
                metadata=metadata,
                geometry=self._geometry,
                roi=self._roi,
                tag=self._tag,
                outputs=outputs,
                dnn_ms=kpi[0] if kpi else None,
                dsp_ms=kpi[1] if kpi else None,
                timestamp_ns=int(metadata.get("SensorTimestamp", 0)),
                extra={"roi_scaled": roi_scaled},
            )
            self._index += 1
            return frame

    def close(self) -> None:
        """Stop and close the camera."""
        picam2 = getattr(self, "picam2", None)
        if picam2 is not None:
            picam2.stop()
            picam2.close()
            self.picam2 = None


def stream_without_network(
    seconds: float, frame_rate: float, output_size: tuple[int, int] = (640, 480), camera_id: str = ""
) -> int:
    """Stream the AI Camera for ``seconds`` with no network loaded (the idle power baseline); frames seen.

    Picamera2 alone on the IMX500 (no ``IMX500(rpk)``, so no network firmware is handed to the sensor).
    """
    Picamera2, _, _ = _import_picamera2()
    cameras = [c for c in Picamera2.global_camera_info() if c.get("Model") == "imx500"]
    if camera_id:
        cameras = [c for c in cameras if camera_id in str(c.get("Id", ""))]
    if not cameras:
        raise BadInputError(
            "no AI Camera (imx500) found.", hint="Check the ribbon cable and rpicam-hello --list-cameras."
        )
    picam2 = Picamera2(cameras[0]["Num"])
    try:
        config = picam2.create_preview_configuration(
            main={"size": tuple(output_size), "format": "RGB888"}, controls={"FrameRate": float(frame_rate)}
        )
        picam2.start(config, show_preview=False)
        import time

        frames, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            picam2.capture_request().release()
            frames += 1
        return frames
    finally:
        picam2.stop()
        picam2.close()
