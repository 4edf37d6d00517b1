"""The checkpoints users arrive with: the authors' PicoSAM3 / PicoSAM2 state_dicts and imx500-sam 0.1's layout
go through the real convert (real MCT, real imxconv-pt), fit the chip, and INT8 tracks float on real photo crops."""

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
from imx500_sam.prompt import iou
from tests.support.picosam_reference import authors_forward, authors_input, authors_state_dict

PARAMS = {"picosam3": 1_371_418, "picosam2": 1_262_818, "imx500-sam-v1": None}


def _checkpoint(kind: str, path: Path) -> Path:
    if kind == "imx500-sam-v1":
        torch.manual_seed(0)
        old = LegacyPicoSAM3(LegacyConfig()).eval()
        torch.save({"format": "imx500-sam/picosam3/v1", "config": {"input_size": 96}, "model": old.state_dict()}, path)
    else:  # the authors' plain state_dict, as `model.load_state_dict(torch.load(p))` reads it
        torch.save(authors_state_dict(kind, seed=7), path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["picosam3", "picosam2", "imx500-sam-v1"])
def test_users_checkpoints_convert(kind: str, tmp_path: Path) -> None:
    ckpt = _checkpoint(kind, tmp_path / f"{kind}.pt")
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
    assert report["model"]["layout"] == kind
    assert report["model"]["architecture"] == ("PicoSAM2" if kind == "picosam2" else "PicoSAM3")
    if PARAMS[kind] is not None:
        assert report["model"]["params"] == PARAMS[kind]
    assert (out / "packerOut.zip").is_file()

    # INT8 (the convert output's host network) agrees with the float module on prompt crops of real photos.
    from converter.calibration import load_photos, prompt_crops, to_batch
    from imx500_sam.int8 import QdqNetwork

    x = to_batch(prompt_crops(load_photos(None), 12, 96, seed=4321))
    model = load_checkpoint(ckpt)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    if kind != "imx500-sam-v1":  # the float module is the authors' forward on their normalised input
        sd = authors_state_dict(kind, seed=7)
        px = torch.from_numpy(np.round(x * 256.0)).to(torch.uint8)
        with torch.inference_mode():
            theirs = authors_forward(sd, authors_input(px), kind).numpy()
        assert np.abs(ref - theirs).max() <= 1e-4 * np.abs(theirs).max()
    got = QdqNetwork(out / "model_int8_qdq.onnx")(x)
    assert np.abs(got - ref).mean() <= 0.15 * np.abs(ref).mean()
    assert np.mean([iou(a > 0, b > 0) for a, b in zip(got, ref, strict=True)]) >= 0.85
