"""The IMX500 on a Raspberry Pi through picamera2 (imported when a camera is opened).

Follows picamera2's own IMX500 examples: ``IMX500(rpk)`` is built before ``Picamera2``, the
network firmware upload shows ``show_network_fw_progress_bar``, the network's intrinsics must say
``task: segmentation``, the inference ROI is set with ``set_inference_roi_abs`` in full-sensor
pixels, outputs come from ``get_outputs``, timing from ``get_kpi_info`` and the ROI in the output
stream from ``get_roi_scaled``. Not run on a Pi by this project's tests (no camera here).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from imx500_sam.errors import BadInputError, ToolchainMissingError
from imx500_sam.prompt import ROI
from imx500_sam.runtime.geometry import SensorGeometry
from imx500_sam.runtime.sensor import Sensor, SensorFrame, check_segmentation_intrinsics


def _import_picamera2() -> tuple[Any, Any, Any]:
    try:
        from picamera2 import Picamera2
        from picamera2.devices import IMX500
        from picamera2.devices.imx500 import NetworkIntrinsics
    except ImportError as exc:
        raise ToolchainMissingError(
            f"picamera2 is not available ({exc}).",
            hint="On Raspberry Pi OS: sudo apt install imx500-all python3-picamera2, and make the venv with "
            "--system-site-packages (README 'On the Pi'). Off the Pi use --emulate.",
        ) from exc
    return Picamera2, IMX500, NetworkIntrinsics


class IMX500Sensor(Sensor):
    """The Raspberry Pi AI Camera running a PicoSAM3 ``.rpk``.

    ``roi_settle_frames``: frames dropped after the ROI changes, so that a frame's tensor belongs to
    the ROI it is reported with (the ROI control reaches the sensor a frame or more later; the exact
    delay has not been measured on a device by this project).
    """

    def __init__(
        self,
        rpk: str | Path,
        output_size: tuple[int, int] = (640, 480),
        roi_settle_frames: int = 1,
        camera_id: str = "",
    ) -> None:
        path = Path(rpk)
        if not path.is_file():
            raise BadInputError(f"{path}: no such .rpk file.", hint="Make one with imx500-sam package on the Pi.")
        Picamera2, IMX500, NetworkIntrinsics = _import_picamera2()
        try:
            self.imx500 = IMX500(os.path.abspath(path), camera_id=camera_id)  # must come before Picamera2
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
        self.network_name = path.stem
        self.roi_settle_frames = max(0, int(roi_settle_frames))
        self.picam2 = Picamera2(self.imx500.camera_num)
        config = self.picam2.create_preview_configuration(
            main={"size": tuple(output_size), "format": "RGB888"},  # BGR byte order, as OpenCV
            controls={"FrameRate": intrinsics.inference_rate},
            buffer_count=12,
        )
        self.imx500.show_network_fw_progress_bar()
        self.picam2.start(config, show_preview=False)
        self.output_size = tuple(self.picam2.camera_configuration()["main"]["size"])
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

    def capture(self) -> SensorFrame | None:
        """The next frame with a tensor computed on the current ROI."""
        while True:
            request = self.picam2.capture_request()
            try:
                if self._settle > 0:
                    self._settle -= 1
                    continue
                metadata = request.get_metadata()
                image = request.make_array("main")
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
