"""imx500-sam convert: a real end-to-end conversion (real MCT, real imxconv-pt) and real failures."""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from converter.report import summary_lines
from imx500_sam.cli import main
from imx500_sam.convert_output import ConvertOutputDir
from imx500_sam.errors import ExitCode
from imx500_sam.model import PicoSAM3, PicoSAMConfig, count_parameters, save_checkpoint
from imx500_sam.prompt import iou


def run_cli(*args: str) -> int:
    return main(list(args))


def test_end_to_end_conversion_of_default_model(converted_default: ConvertOutputDir) -> None:
    out = converted_default
    report = out.report
    # packerOut.zip is the converter's real output: a zip with the firmware pieces and a manifest for the IMX500.
    with zipfile.ZipFile(out.packer_out) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
    assert {"dnnParams.xml", "l2staticData.bin", "manifest.json"} <= names
    assert manifest["Target"] == "IMX500"
    assert report["memory"]["fit_in_chip"] is True
    assert 0 < report["memory"]["usage_bytes"] <= report["memory"]["available_bytes"] == 8388480
    assert report["memory"]["usage_bytes"] == out.memory_report.usage_bytes
    assert report["memory"]["weights_bytes"] + report["memory"]["runtime_bytes"] <= report["memory"]["usage_bytes"]
    assert report["model"]["params"] == count_parameters(PicoSAM3())
    assert report["model"]["input_size"] == [96, 96]
    assert out.dnn_params.input.shape == (3, 96, 96)
    assert out.dnn_params.outputs[0].shape == (1, 96, 96)
    # float and INT8 masks against each other: 0.88 for the default of issue #19 (convert_default.json), whose INT8
    # mIoU against ground truth is within a point of float (learning_curve_run9.json); 0.95 for the one before
    assert 0.85 <= report["accuracy"]["float_vs_int8_miou"] <= 1.0
    assert report["accuracy"]["crops"] >= 32
    for key in ("ptq", "export", "convert", "total"):
        assert report["timings_s"][key] > 0
    assert report["timings_s"]["total"] >= report["timings_s"]["ptq"] + report["timings_s"]["convert"]
    assert report["artifacts"]["packer_out"] == str(out.packer_out)
    assert report["artifacts"]["rpk"] is None  # no imx500-package off a Pi
    assert any("imx500-package" in c for c in report["packaging"]["commands"])
    assert report["toolchain"]["model-compression-toolkit"] == "2.5.1"
    assert out.intrinsics["task"] == "segmentation"
    assert (out.out_dir / "report.md").read_text().count("imx500-package") >= 1
    # the lines convert prints at the end, from that report
    summary = summary_lines(report, out.out_dir)
    assert summary[0].startswith("Memory: fits the IMX500: ") and f"{report['memory']['usage_bytes']:,}" in summary[0]
    assert f"{report['accuracy']['float_vs_int8_miou']:.3f}" in summary[1]
    assert f"{report['accuracy']['emulator_agreement']['pixels']:.2%}" in summary[2]
    assert "made on the Pi" in summary[3] and summary[4] == f"Report: {out.out_dir / 'report.md'}"
    # No temporary work directories left beside OUT.
    assert not [p for p in out.out_dir.parent.iterdir() if p.name.startswith(".")]


def test_int8_network_tracks_float(converted_default: ConvertOutputDir) -> None:
    """The QDQ ONNX written by convert computes what the float model computes, to INT8 precision,
    on prompt crops of real photos it was not calibrated on."""
    from converter.calibration import load_photos, prompt_crops, to_batch
    from imx500_sam.int8 import QdqNetwork
    from imx500_sam.model import load_checkpoint

    model = load_checkpoint(converted_default.report["model"]["checkpoint"])
    x = to_batch(prompt_crops(load_photos(None), 16, 96, seed=12345))
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    got = QdqNetwork(converted_default.qdq_onnx)(x)
    assert got.shape == ref.shape
    assert np.abs(got - ref).mean() <= 0.1 * np.abs(ref).mean()
    ious = [iou(a > 0, b > 0) for a, b in zip(got, ref, strict=True)]
    assert np.mean(ious) >= 0.85, ious  # float vs INT8 masks, as in convert's report (see the test above)


def _only_failure_logs(out: Path) -> bool:
    return not out.exists() or all(p.name.startswith("FAILED-") for p in out.iterdir())


def test_unsupported_operator_stops_at_the_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """convert runs the operator check first: exit 3 before MCT, naming the module and the source line."""
    out = tmp_path / "cumsum_out"
    rc = run_cli("convert", "py:tests.support.convert_models:cumsum_net", "-o", str(out), "-q")
    err = capsys.readouterr().err
    assert rc == ExitCode.UNSUPPORTED_OPERATOR, err
    assert "cumsum" in err.lower() and "convert_models.py" in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
def test_unsupported_operator_real_converter_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With the gate skipped, MCT quantizes and the real imxconv-pt rejects CumSum: still exit 3, log kept."""
    out = tmp_path / "cumsum_out"
    rc = run_cli(
        "convert",
        "py:tests.support.convert_models:cumsum_net",
        "-o",
        str(out),
        "--calib-count",
        "8",
        "-q",
        "--no-check",
    )
    err = capsys.readouterr().err
    assert rc == ExitCode.UNSUPPORTED_OPERATOR, err
    assert "CumSum" in err and "FAILED-imxconv-pt.log" in err
    assert len(err.strip().splitlines()) == 1
    assert (out / "FAILED-imxconv-pt.log").is_file() and _only_failure_logs(out)


def test_over_budget_stops_at_the_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """PicoSAM3 at 192x192 needs more than the IMX500's 8 MiB (activations dominate): exit 4 before MCT."""
    ckpt = tmp_path / "picosam3_192.pt"
    torch.manual_seed(0)
    save_checkpoint(PicoSAM3(PicoSAMConfig(input_size=192)), ckpt)
    out = tmp_path / "big_out"
    rc = run_cli("convert", str(ckpt), "-o", str(out), "-q")
    err = capsys.readouterr().err
    assert rc == ExitCode.OVER_BUDGET, err
    assert "8,388,480" in err
    assert not out.exists()


@pytest.mark.slow
def test_over_budget_real_converter_exits_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """~9.4M INT8 weights: the real imxconv-pt reports it does not fit; convert exits 4 with the figures."""
    out = tmp_path / "wide_out"
    rc = run_cli(
        "convert", "py:tests.support.convert_models:wide_net", "-o", str(out), "--calib-count", "8", "-q", "--no-check"
    )
    err = capsys.readouterr().err
    assert rc == ExitCode.OVER_BUDGET, err
    assert "8,388,480 B available" in err
    assert not (out / "packerOut.zip").exists() and _only_failure_logs(out)


def _bad_checkpoints(tmp: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    files["missing"] = tmp / "nope.pt"
    (tmp / "text.pt").write_text("hello, not a checkpoint")
    files["not_a_checkpoint"] = tmp / "text.pt"
    torch.save({"conv.weight": torch.zeros(3, 3)}, tmp / "keys.pt")
    files["wrong_keys"] = tmp / "keys.pt"
    sd = PicoSAM3().state_dict()
    sd["refine.3.weight"] = torch.zeros(2, 40, 1, 1)
    torch.save(sd, tmp / "shapes.pt")
    files["wrong_shapes"] = tmp / "shapes.pt"

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp / "pwned"),))

    buf = io.BytesIO()
    torch.save({"model": PicoSAM3().state_dict(), "x": Evil()}, buf)
    (tmp / "evil.pt").write_bytes(buf.getvalue())
    files["code_pickle"] = tmp / "evil.pt"
    (tmp / "raw.pkl").write_bytes(pickle.dumps(Evil()))
    files["raw_pickle"] = tmp / "raw.pkl"
    return files


@pytest.mark.parametrize(
    "case", ["missing", "not_a_checkpoint", "wrong_keys", "wrong_shapes", "code_pickle", "raw_pickle"]
)
def test_bad_checkpoint_exits_2(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _bad_checkpoints(tmp_path)[case]
    out = tmp_path / "out"
    rc = run_cli("convert", str(path), "-o", str(out), "-q")
    err = capsys.readouterr().err
    assert rc == ExitCode.BAD_INPUT, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imx500-sam: error:"), err
    assert "Traceback" not in err
    assert not out.exists()
    assert not (tmp_path / "pwned").exists()  # the pickle's code never ran


def test_existing_out_needs_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    rc = run_cli("convert", "-o", str(out), "-q")
    assert rc == ExitCode.BAD_INPUT
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


def test_bad_calib_folder_and_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "photos"
    empty.mkdir()
    assert run_cli("convert", "-o", str(tmp_path / "o1"), "--calib", str(empty), "-q") == ExitCode.BAD_INPUT
    assert "no readable photos" in capsys.readouterr().err
    assert run_cli("convert", "-o", str(tmp_path / "o2"), "--calib-count", "2", "-q") == ExitCode.BAD_INPUT
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_missing_toolchain_exits_5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Without Java on PATH, convert stops before MCT with the command to install it."""
    import shutil
    import sys

    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "imxconv-pt").symlink_to(shutil.which("imxconv-pt") or Path(sys.executable).parent / "imxconv-pt")
    monkeypatch.setenv("PATH", str(bindir))
    rc = run_cli("convert", "-o", str(tmp_path / "out"), "-q")
    err = capsys.readouterr().err
    assert rc == ExitCode.TOOLCHAIN_MISSING, err
    assert "openjdk-17" in err
    assert not (tmp_path / "out").exists()


def test_cli_json_prints_report(default_convert_run) -> None:
    """`convert --json` prints exactly report.json on stdout (progress goes nowhere)."""
    output, stdout = default_convert_run
    assert json.loads(stdout) == output.report


def test_failed_overwrite_keeps_previous_output(converted_default: ConvertOutputDir, tmp_path: Path) -> None:
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(converted_default.out_dir, target)
    before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}
    rc = run_cli("convert", "-o", str(target), "--overwrite", "-q", "--calib", str(tmp_path / "none"))
    assert rc == ExitCode.BAD_INPUT
    assert {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()} == before
