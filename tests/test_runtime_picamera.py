"""The Pi sensor (``IMX500Sensor``) against picamera2's real IMX500 class, camera replaced by fakes.

picamera2's own code parses the real DeepLabV3+ .rpk (intrinsics: segmentation), decodes the output
tensor (``get_outputs``), the timing (``get_kpi_info``) and maps the ROI (``get_roi_scaled``); only the
v4l2 device and the libcamera camera are faked.
"""

from __future__ import annotations

import numpy as np
import pytest

from imx500_sam.errors import BadInputError
from imx500_sam.runtime import metadata as md
from imx500_sam.runtime.session import PromptSession
from tests.conftest import rpk_fixture_dir
from tests.support.picamera2_host import import_imx500_module

OUT = (640, 480)


@pytest.fixture
def fake_pi(monkeypatch):
    """Patch picamera2 so IMX500Sensor runs without a camera; returns the call log."""
    mod = import_imx500_module()
    import picamera2
    import picamera2.devices

    calls: list[tuple] = []

    class FakeIMX500(mod.IMX500):
        def __init__(self, network_file: str, camera_id: str = "") -> None:
            calls.append(("IMX500", network_file))
            self.device_fd = None
            self._IMX500__cfg = {"network_file": network_file, "input_tensor": {}}
            self._IMX500__ni_from_network(network_file)  # picamera2's real .rpk parser

        @property
        def camera_num(self) -> int:
            return 0

        def show_network_fw_progress_bar(self) -> None:
            calls.append(("progress",))

        def set_inference_roi_abs(self, roi: tuple) -> None:
            calls.append(("roi", tuple(roi)))
            self._IMX500__cfg["roi"] = __import__("libcamera").Rectangle(*roi)

    class FakeRequest:
        def __init__(self, cam: FakePicamera2) -> None:
            self.picam2 = cam
            cam.frames += 1
            rng = np.random.default_rng(cam.frames)
            self.mask = rng.normal(size=(1, 96, 96)).astype(np.float32)
            self.meta = {
                "CnnOutputTensor": md.encode_output_tensor([self.mask]),
                "CnnOutputTensorInfo": tuple(md.pack_output_tensor_info("net", [(1, 96, 96)], cam.frames)),
                "CnnKpiInfo": (11820, 900),
                "ScalerCrop": (0, 0, 4056, 3040),
                "SensorTimestamp": 1000 * cam.frames,
            }
            cam.sent.append(self.mask)

        def get_metadata(self) -> dict:
            return self.meta

        def make_array(self, name: str) -> np.ndarray:
            calls.append(("make_array", name))
            return np.zeros((OUT[1], OUT[0], 3), np.uint8)

        def release(self) -> None:
            pass

    class FakePicamera2:
        def __init__(self, num: int) -> None:
            calls.append(("Picamera2", num))
            self.frames, self.sent = 0, []
            FakePicamera2.last = self

        def create_preview_configuration(self, main: dict, controls: dict, buffer_count: int) -> dict:
            calls.append(("config", main, controls))
            return {"main": main}

        def start(self, config: dict, show_preview: bool = False) -> None:
            calls.append(("start",))
            self.main = config["main"]

        def camera_configuration(self) -> dict:
            return {"main": {"size": tuple(self.main["size"])}, "raw": {"size": (2028, 1520)}}

        def capture_request(self) -> FakeRequest:
            return FakeRequest(self)

        def stop(self) -> None:
            calls.append(("stop",))

        def close(self) -> None:
            calls.append(("close",))

    monkeypatch.setattr(picamera2, "Picamera2", FakePicamera2)
    monkeypatch.setattr(picamera2.devices, "IMX500", FakeIMX500)
    return calls, FakePicamera2


def test_pi_sensor_follows_picamera2_conventions(fake_pi):
    from imx500_sam.runtime.picamera import IMX500Sensor

    calls, cam_cls = fake_pi
    rpk = rpk_fixture_dir() / "imx500_network_deeplabv3plus.rpk"
    with IMX500Sensor(rpk, output_size=OUT, roi_settle_frames=1) as sensor:
        assert sensor.input_size == (320, 320)  # read by picamera2 from the .rpk
        session = PromptSession(sensor, [(100, 100, 80, 60), (300, 200, 100, 100)])
        results = [session.step() for _ in range(4)]
    names = [c[0] for c in calls]
    assert names.index("IMX500") < names.index("Picamera2") < names.index("progress") < names.index("start")
    config = next(c for c in calls if c[0] == "config")
    assert config[1]["size"] == OUT and config[2]["FrameRate"] == 19  # the .rpk's intrinsics inference_rate
    rois = [c[1] for c in calls if c[0] == "roi"]
    assert rois == [r.roi.xywh for r in results]  # ROI set in full-sensor pixels, one per prompt turn
    cam = cam_cls.last
    # one frame dropped after every ROI change (settle), then the decoded tensor is the one sent
    assert cam.frames == 8
    for r, sent in zip(results, cam.sent[1::2], strict=True):
        np.testing.assert_array_equal(r.sensor_frame.outputs[0], sent)
        assert r.dnn_ms == pytest.approx(11.82) and r.dsp_ms == pytest.approx(0.9)
        rx, ry, rw, rh = r.sensor_frame.extra["roi_scaled"]  # picamera2's get_roi_scaled
        assert np.abs(np.array([rx, ry, rw, rh]) - np.array(r.roi_output)).max() <= 2
    assert names[-2:] == ["stop", "close"]


def test_pi_sensor_refuses_a_network_that_is_not_segmentation(fake_pi):
    from imx500_sam.runtime.picamera import IMX500Sensor

    with pytest.raises(BadInputError, match="segmentation"):
        IMX500Sensor(rpk_fixture_dir() / "imx500_network_higherhrnet_coco.rpk")
    with pytest.raises(BadInputError, match="no such"):
        IMX500Sensor(rpk_fixture_dir() / "missing.rpk")


def test_pi_sensor_masks_only_reads_no_image(fake_pi):
    """images=False (serve --masks-only): the smallest main stream is requested, no request's image is ever read,
    and masks still come on a 640x480 grid of the same sensor region."""
    from imx500_sam.runtime.picamera import MASKS_ONLY_STREAM, IMX500Sensor

    calls, _ = fake_pi
    rpk = rpk_fixture_dir() / "imx500_network_deeplabv3plus.rpk"
    with IMX500Sensor(rpk, output_size=OUT, images=False) as sensor:
        assert sensor.stream_size == MASKS_ONLY_STREAM and sensor.output_size == OUT
        session = PromptSession(sensor, [(100, 100, 80, 60)], motion=False)
        results = [session.step() for _ in range(3)]
    config = next(c for c in calls if c[0] == "config")
    assert config[1] == {"size": MASKS_ONLY_STREAM, "format": "YUV420"}
    assert not [c for c in calls if c[0] == "make_array"]
    for r in results:
        assert r.image.size == 0 and r.mask.shape == (OUT[1], OUT[0]) and r.sensor_frame.outputs is not None
