"""Local flash (the Pi side) against picamera2's real IMX500 interface, with no camera attached.

``IMX500.__init__`` needs the camera's v4l2 subdevice, so the test subclasses picamera2's own IMX500 and
replaces only ``__init__`` (the network is parsed with picamera2's ``__ni_from_network``). Frames come from a
minimal Picamera2 stand-in with metadata built in libcamera's layout (picamera2's own ctypes struct);
``get_outputs`` and ``get_kpi_info`` are picamera2's real code.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firmware_packaging import flash as fl
from firmware_packaging import rpk as R
from imx500_sam.cli import main
from imx500_sam.errors import BadInputError, PiOnlyError, ToolFailedError
from tests.rpk_fixtures import DEEPLAB, rpk_path
from tests.support.picamera2_host import import_imx500_module

pytestmark = pytest.mark.filterwarnings("ignore:The metaschema specified:DeprecationWarning")


def tensor_info(mod: Any, shapes: list[tuple[int, ...]]) -> bytes:
    """CnnOutputTensorInfo bytes as libcamera exports them (picamera2's struct, dims in picamera2's order)."""
    info = mod.CnnOutputTensorInfoExported()
    info.network_name = b"test"
    info.num_tensors = len(shapes)
    for i, shape in enumerate(shapes):
        info.info[i].tensor_data_num = int(np.prod(shape))
        info.info[i].num_dimensions = len(shape)
        for j, d in enumerate(shape):
            info.info[i].size[j] = d
    return ctypes.string_at(ctypes.addressof(info), ctypes.sizeof(info))


def fake_picamera(mod: Any, shapes: list[tuple[int, ...]], kpi: bool = True, empty_frames: int = 2) -> tuple[Any, Any]:
    """(Picamera2 stand-in class, IMX500 subclass with only __init__ replaced)."""
    events: list[str] = []

    class IMX500(mod.IMX500):
        def __init__(self, network_file: str) -> None:
            self.device_fd = None
            self.fw_progress = mod.IMX500.FwProgressType.NONE  # no debugfs here: picamera2 skips the bar
            self._IMX500__cfg = {"network_file": network_file, "input_tensor": {}}
            self._IMX500__ni_from_network(network_file)
            self._IMX500__camera_num = 0
            events.append(f"load {Path(network_file).name}")

        def show_network_fw_progress_bar(self) -> None:
            events.append("progress")
            super().show_network_fw_progress_bar()  # picamera2's: no debugfs here, so no bar

    class Picamera2:
        def __init__(self, num: int) -> None:
            self.frames = 0
            events.append(f"camera {num}")

        def create_preview_configuration(self, **kw: Any) -> dict[str, Any]:
            return {"kw": kw}

        def start(self, config: Any, show_preview: bool = False) -> None:
            events.append("start")

        def capture_metadata(self) -> dict[str, Any]:
            self.frames += 1
            if self.frames <= empty_frames:  # network still uploading: no tensor yet
                return {"SensorTimestamp": self.frames}
            n = int(sum(np.prod(s) for s in shapes))
            md = {
                "CnnOutputTensor": list(np.arange(n, dtype=np.float32)),
                "CnnOutputTensorInfo": tensor_info(mod, shapes),
            }
            if kpi:
                md["CnnKpiInfo"] = [11820, 950]
            return md

        def stop(self) -> None:
            events.append("stop")

        def close(self) -> None:
            events.append("close")

    IMX500.events = events  # type: ignore[attr-defined]
    return Picamera2, IMX500


@pytest.fixture
def mod() -> Any:
    return import_imx500_module()


def _use(monkeypatch: pytest.MonkeyPatch, classes: tuple[Any, Any]) -> list[str]:
    monkeypatch.setattr(fl, "_import_picamera2", lambda: classes)
    return classes[1].events


def test_verify_passes_for_matching_network(mod: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    events = _use(monkeypatch, fake_picamera(mod, [(320, 320)]))
    res = fl.flash_local(rpk_path(DEEPLAB), verify=True)
    v = res["verify"]
    assert v["problems"] == [] and v["output_shapes"] == [[320, 320]] and v["frames_read"] == 3
    assert v["kpi_ms"] == {"dnn": 11.82, "dsp": 0.95}
    # picamera2's order: IMX500 before Picamera2, progress bar, start (the driver uploads the network then)
    assert events == [f"load {DEEPLAB}", "camera 0", "progress", "start", "stop", "close"]


def test_flash_without_verify_waits_for_the_network_but_does_not_judge(mod: Any, monkeypatch) -> None:
    events = _use(monkeypatch, fake_picamera(mod, [(96, 96)], kpi=False))
    res = fl.flash_local(rpk_path(DEEPLAB), progress=False)
    assert res["loaded"] and res["frame"]["frames_read"] == 3 and "verify" not in res
    assert "progress" not in events and events[-2:] == ["stop", "close"]


def test_verify_catches_wrong_shape_and_missing_kpi(mod: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _use(monkeypatch, fake_picamera(mod, [(96, 96)]))
    with pytest.raises(ToolFailedError, match="9216 elements, the rpk says 102400"):
        fl.flash_local(rpk_path(DEEPLAB), verify=True)
    _use(monkeypatch, fake_picamera(mod, [(320, 320)], kpi=False))
    with pytest.raises(ToolFailedError, match="no KPI timing"):
        fl.flash_local(rpk_path(DEEPLAB), verify=True)
    _use(monkeypatch, fake_picamera(mod, [(320, 320), (4,)]))
    with pytest.raises(ToolFailedError, match="2 output tensors"):
        fl.flash_local(rpk_path(DEEPLAB), verify=True)


def test_verify_times_out_without_tensors(mod: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    events = _use(monkeypatch, fake_picamera(mod, [(320, 320)], empty_frames=10**9))
    with pytest.raises(ToolFailedError, match="no output tensor within"):
        fl.flash_local(rpk_path(DEEPLAB), verify=True, timeout_s=0.2)
    assert events[-2:] == ["stop", "close"]  # the camera is released even then


def test_file_validated_before_loading(tmp_path: Path, mod: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    events = _use(monkeypatch, fake_picamera(mod, [(320, 320)]))
    bad = tmp_path / "bad.rpk"
    bad.write_bytes(rpk_path(DEEPLAB).read_bytes()[:-600] + b"x" * 600)
    with pytest.raises(R.RpkFormatError):
        fl.flash_local(bad)
    with pytest.raises(BadInputError, match="SHA-256"):
        fl.flash_local(rpk_path(DEEPLAB), expect_sha256="ab" * 32)
    assert events == []


def test_off_a_pi_exit_5(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails as it does without libcamera
    with pytest.raises(PiOnlyError, match="runs only on a Raspberry Pi"):  # this host is not a Pi
        fl.flash_local(rpk_path(DEEPLAB))
    assert main(["flash", str(rpk_path(DEEPLAB))]) == 5
    assert "--host" in capsys.readouterr().err


def test_cli_flash_local(mod: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _use(monkeypatch, fake_picamera(mod, [(320, 320)]))
    assert main(["flash", str(rpk_path(DEEPLAB)), "--verify"]) == 0
    assert "verified: output shapes [[320, 320]]" in capsys.readouterr().out
    _use(monkeypatch, fake_picamera(mod, [(96, 96)]))
    assert main(["flash", str(rpk_path(DEEPLAB)), "--verify"]) == 6
    assert "verification failed" in capsys.readouterr().err
