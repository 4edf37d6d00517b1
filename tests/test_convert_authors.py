"""The files users arrive with go through the real convert (real MCT, real imxconv-pt), fit the chip, and the host
INT8 network (``eval --int8``, the emulator) is MCT's: the authors' state_dicts as LibreYOLO wraps them and as the
authors' model page names a PicoSAM2 (``PicoSAM3_epoch1.pt``), the authors' float ONNX export, and imx500-sam 0.1's
layout. (Plain .pt state_dicts load through the same code: tests/test_user_files.py.)"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from imx500_sam.cli import main
from imx500_sam.model import load_checkpoint
from imx500_sam.model.legacy import LegacyConfig, LegacyPicoSAM3
from tests.support.picosam_reference import authors_forward, authors_input, authors_state_dict, export_authors_onnx
from tests.test_user_files import LIBREYOLO_META

PARAMS = {"picosam3": 1_371_418, "picosam2": 1_262_818, "imx500-sam-v1": None}
# kind -> (file name, the architecture's layout)
FILES = {
    "libreyolo": ("LibrePicoSAM3pico.pt", "picosam3"),
    "picosam2-named-picosam3": ("PicoSAM3_epoch1.pt", "picosam2"),
    "float-onnx": ("PicoSAM3_SAM3_student_best.onnx", "picosam3"),
    "imx500-sam-v1": ("picosam3_v1.pt", "imx500-sam-v1"),
}


def _checkpoint(kind: str, folder: Path) -> Path:
    name, layout = FILES[kind]
    path = folder / name
    if kind == "imx500-sam-v1":
        torch.manual_seed(0)
        old = LegacyPicoSAM3(LegacyConfig()).eval()
        torch.save({"format": "imx500-sam/picosam3/v1", "config": {"input_size": 96}, "model": old.state_dict()}, path)
    elif kind == "libreyolo":  # the authors' state_dict, re-saved by LibreYOLO with its metadata
        torch.save({"model": authors_state_dict(layout, seed=7), **LIBREYOLO_META}, path)
    elif kind == "float-onnx":  # torch.onnx.export of the authors' network, normalisation outside
        export_authors_onnx(layout, authors_state_dict(layout, seed=7), path)
    else:  # the authors' plain state_dict, as `model.load_state_dict(torch.load(p))` reads it
        torch.save(authors_state_dict(layout, seed=7), path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(FILES))
def test_users_checkpoints_convert(kind: str, tmp_path: Path) -> None:
    ckpt = _checkpoint(kind, tmp_path)
    kind_layout = FILES[kind][1]
    out = tmp_path / "out"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = main(["check", str(ckpt), "--format", "json"])
    assert rc == 0, stdout.getvalue()
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = main(["convert", str(ckpt), "-o", str(out), "--calib-count", "16", "--json"])
    assert rc == 0
    report = json.loads(stdout.getvalue())
    assert report["memory"]["fit_in_chip"] is True
    assert report["model"]["layout"] == kind_layout
    assert report["model"]["architecture"] == ("PicoSAM2" if kind_layout == "picosam2" else "PicoSAM3")
    if PARAMS[kind_layout] is not None:
        assert report["model"]["params"] == PARAMS[kind_layout]
    assert report["model"]["file_format"] == ("float-onnx" if kind == "float-onnx" else "state_dict")
    assert report["model"]["prompt_crop"] == ("shifted" if kind == "imx500-sam-v1" else "clamped")
    assert len(report["model"]["warnings"]) == (kind == "picosam2-named-picosam3")
    if kind == "libreyolo":
        assert report["model"]["file_info"]["model_family"] == "picosam3"
        assert report["model"]["file_info"]["imgsz"] == 96
    assert "Prompt crop" in (out / "report.md").read_text()
    assert (out / "packerOut.zip").is_file()

    # The INT8 reference is MCT's quantized network: the host network written by convert (the emulator's,
    # `eval --int8`'s) computes what mct_quantizers' own onnxruntime ops compute on the MCTQ file imxconv-pt
    # compiled, for the authors' layouts too; and it is the float network, quantized (normalisation in the graph).
    from converter.accuracy import mctq_logits
    from converter.calibration import accuracy_photos, prompt_crops, to_batch
    from imx500_sam.int8 import QdqNetwork
    from imx500_sam.runtime.emulator import EmulatedIMX500

    crops = prompt_crops(accuracy_photos(), 12, 96, seed=4321, convention=report["model"]["prompt_crop"])
    x = to_batch(crops)  # held-out photos: calibration never saw them
    model = load_checkpoint(ckpt)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    if kind != "imx500-sam-v1":  # the float module (float `eval`) is the authors' forward on their input
        sd = authors_state_dict(kind_layout, seed=7)
        px = torch.from_numpy(np.round(x * 256.0)).to(torch.uint8)
        with torch.inference_mode():
            theirs = authors_forward(sd, authors_input(px), kind_layout).numpy()
        assert np.abs(ref - theirs).max() <= 1e-4 * np.abs(theirs).max()
    got = QdqNetwork(out / "model_int8_qdq.onnx")(x)  # `eval --int8`'s network, as it runs there
    emu = EmulatedIMX500(out, None)
    assert np.array_equal(emu.network_input(crops[0]), x[:1])  # the emulator feeds what eval feeds
    emulated = np.stack([emu.infer(c)[0] for c in crops[:4]])
    emu.close()
    assert np.array_equal(emulated.reshape(got[:4].shape), got[:4])  # and runs the same network
    mct = mctq_logits(out / "model_mctq.onnx", x[:4])  # ~1 crop/s
    # these random-weight networks are PTQ-hostile (one flipped rounding cascades): MCT's own torch module and
    # its MCTQ file disagree on ~3% of mask pixels (benchmarks/results/int8_random.json); the host network is the
    # file's arithmetic
    assert ((got[:4].reshape(mct.shape) > 0) == (mct > 0)).mean() >= 0.999
    assert np.abs(got[:4].reshape(mct.shape) - mct).max() <= 0.05 * np.abs(mct).max()
    # Random weights are PTQ-hostile (measured float vs INT8 mask IoU 0.65-0.75 here, 0.96 on the trained
    # default), so the float check is on the logits: the quantized network must still be this network.
    assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] >= 0.9
    assert 0.5 <= report["accuracy"]["float_vs_int8_miou"] <= 1.0


@pytest.fixture(scope="module")
def authors_quantized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """The authors' recipe: bare MCT PTQ of PicoSAM3 with ImageNet normalisation *outside* (calibrated on
    normalised crops), MCTQ export (a signed input quantizer), then `imx500-sam convert` of that file."""
    from converter.calibration import load_photos, prompt_crops
    from imx500_sam.model import PicoSAM3
    from tests.support.convert_models import bare_mct_mctq

    folder = tmp_path_factory.mktemp("authors_quantized")
    net = PicoSAM3().eval()
    net.load_state_dict(authors_state_dict("picosam3", seed=7))
    px = torch.from_numpy(prompt_crops(load_photos(None), 32, 96, seed=0, convention="clamped"))
    calib = authors_input(px.permute(0, 3, 1, 2).contiguous()).numpy()
    mctq, _ = bare_mct_mctq(net, folder / "PicoSAM3_student_quantized.onnx", calib)
    out = folder / "out"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = main(["convert", str(mctq), "-o", str(out), "--json"])
    assert rc == 0
    return mctq, out, json.loads(stdout.getvalue())


@pytest.mark.slow
def test_authors_quantized_onnx_gets_its_normalised_input_on_the_sensor(authors_quantized) -> None:
    """The input preprocessor makes what the network expects; the emulator and `eval --int8` apply the same integer
    arithmetic and agree with MCT's network fed the same; the .rpk settings are in the report (and the Pi commands)."""
    from converter.accuracy import mctq_logits
    from converter.calibration import accuracy_photos, prompt_crops
    from imx500_sam.convert_output import ConvertOutputDir
    from imx500_sam.preprocessor import AUTHORS_INPUT, InputPreprocessor, network_input
    from imx500_sam.prompt import to_model_input
    from imx500_sam.runtime.emulator import EmulatedIMX500
    from imx500_sam.train.evaluate import int8_predictor

    mctq, out, report = authors_quantized
    inp = report["input"]
    assert inp["convention"] == AUTHORS_INPUT and inp["quantizer"]["signed"] is True
    step = inp["quantizer"]["scale"]
    pre = InputPreprocessor.from_dict(inp["preprocessor"])
    assert not pre.is_identity() and inp["preprocessor_max_error_steps"] <= 0.5
    converted = ConvertOutputDir.load(out)
    assert converted.dnn_params.input.signed and converted.dnn_params.input.scale == pytest.approx(step)
    assert converted.prompt_crop == "clamped" and report["model"]["prompt_crop"] == "clamped"
    assert any("network-info" in c and "inputTensorNorm_K00" in c for c in report["packaging"]["commands"])
    assert report["accuracy"]["preprocessor"]["max_input_difference_steps"] <= 1

    crops = prompt_crops(accuracy_photos(), 4, 96, seed=4321, convention="clamped")
    fed = network_input(pre, crops, step)  # what the sensor feeds the network
    emu = EmulatedIMX500(out, None)
    assert np.array_equal(emu.network_input(crops[0]), fed[:1])
    emulated = np.stack([emu.infer(c)[0] for c in crops])
    emu.close()
    mct = mctq_logits(mctq, fed)
    assert ((emulated.reshape(mct.shape) > 0) == (mct > 0)).mean() >= 0.999
    # `eval --int8` (its crops are pixels / 256) computes what the emulator computes
    predict, _ = int8_predictor(converted)
    evaluated = predict(np.stack([to_model_input(c) for c in crops]))
    assert np.array_equal(evaluated.reshape(emulated.shape), emulated)
