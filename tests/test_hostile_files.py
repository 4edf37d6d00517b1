"""Hostile files for every kind of input (issue 23): checkpoints, float ONNX, MCTQ ONNX, .rpk, COCO JSON, photos and
intrinsics JSON. Each gets one ``imx500-sam: error:`` line and exit 2: never a traceback, a hang or a partial
output (the output paths named on the command line stay absent)."""

from __future__ import annotations

import contextlib
import io
import json
import signal
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from imx500_sam.errors import ExitCode
from tests.rpk_fixtures import DEEPLAB, rpk_path

HANG_S = 120  # a case running longer than this counts as a hang


@contextlib.contextmanager
def _no_hang(seconds: int) -> Iterator[None]:
    def fail(signum: int, frame: object) -> None:
        raise AssertionError(f"hung for {seconds} s")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def refused(*args: str, outputs: tuple[Path, ...] = (), codes: tuple[int, ...] = (ExitCode.BAD_INPUT,)) -> str:
    """Run the CLI: exit 2 (or ``codes``), exactly one error line on stderr and nothing else, no output written.

    ``check`` may instead give its verdict: the report on stdout (the input findings), nothing on stderr.
    """
    from imx500_sam.cli import main

    out, err = io.StringIO(), io.StringIO()
    with _no_hang(HANG_S), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    lines = [ln for ln in err.getvalue().splitlines() if not ln.startswith("[")]  # progress lines of convert
    assert rc in codes, (args, rc, err.getvalue()[-3000:])
    if args[0] == "check" and not lines:
        assert "input" in out.getvalue() and "Traceback" not in out.getvalue(), out.getvalue()
        return out.getvalue()
    assert len(lines) == 1 and lines[0].startswith("imx500-sam: error: "), err.getvalue()[-3000:]
    assert "Traceback" not in err.getvalue() + out.getvalue()
    for path in outputs:
        assert not path.exists(), path
    return lines[0]


def _zip_with(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


# ------------------------------------------------------------------------------------------- corpora

HOSTILE_BYTES: dict[str, bytes] = {
    "empty": b"",
    "zeros": bytes(4096),
    "random": np.random.default_rng(1).integers(0, 256, 4096, np.uint8).tobytes(),
    "text": b"hello, I am not what you think\n" * 10,
    "json": b'{"model": [1, 2, 3]}',
    "jpeg": b"\xff\xd8\xff\xe0" + bytes(200),
}


def _checkpoints(tmp: Path) -> Iterator[Path]:
    import torch

    for name, data in HOSTILE_BYTES.items():
        (tmp / f"{name}.pt").write_bytes(data)
        yield tmp / f"{name}.pt"
    good = io.BytesIO()
    torch.save({"conv.weight": torch.zeros(2, 2)}, good)
    (tmp / "truncated.pt").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    yield tmp / "truncated.pt"
    yield _zip_with(tmp / "zip_not_torch.pt", {"a.txt": b"x"})
    torch.save({"conv.weight": torch.zeros(2, 2)}, tmp / "wrong_layout.pt")
    yield tmp / "wrong_layout.pt"
    torch.save({"model": {"x": 1}}, tmp / "no_tensors.pt")
    yield tmp / "no_tensors.pt"
    torch.save([1, 2, 3], tmp / "a_list.pt")
    yield tmp / "a_list.pt"


def _onnx_files(tmp: Path, mctq: bool) -> Iterator[Path]:
    import onnx
    from onnx import TensorProto, helper

    from converter.mctq import MCTQ_DOMAIN

    for name, data in HOSTILE_BYTES.items():
        (tmp / f"{name}.onnx").write_bytes(data)
        yield tmp / f"{name}.onnx"
    domain = MCTQ_DOMAIN if mctq else ""
    op = "ActivationPOTInferableQuantizer" if mctq else "Relu"

    def model(dims: list, attrs: dict | None = None) -> onnx.ModelProto:
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)
        node = helper.make_node(op, ["x"], ["y"], domain=domain, **(attrs or {}))
        graph = helper.make_graph([node], "g", [x], [y])
        opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(MCTQ_DOMAIN, 1)] if mctq else [])
        return helper.make_model(graph, opset_imports=opsets)

    for name, dims in {
        "no_shape": [],
        "nhwc": [1, 32, 32, 3],
        "symbolic": [1, 3, "h", "w"],
        "huge": [1, 3, 1 << 20, 32],
    }.items():
        onnx.save(model(dims), tmp / f"{name}.onnx")
        yield tmp / f"{name}.onnx"
    if mctq:  # a quantizer node with a nonsense attribute
        onnx.save(model([1, 3, 32, 32], {"threshold": "not a number"}), tmp / "bad_attr.onnx")
        yield tmp / "bad_attr.onnx"
    good = model([1, 3, 32, 32]).SerializeToString()
    (tmp / "truncated.onnx").write_bytes(good[: len(good) // 2])
    yield tmp / "truncated.onnx"


def _rpk_files(tmp: Path) -> Iterator[Path]:
    real = rpk_path(DEEPLAB).read_bytes()
    for name, data in {**HOSTILE_BYTES, "truncated": real[: len(real) // 3], "header_only": real[:16],
                       "archive_only": real[-4096:]}.items():  # fmt: skip
        (tmp / f"{name}.rpk").write_bytes(data)
        yield tmp / f"{name}.rpk"
    (tmp / "a_folder.rpk").mkdir()
    yield tmp / "a_folder.rpk"


def _coco_files(tmp: Path) -> Iterator[Path]:
    cases: dict[str, object] = {
        "list": [1, 2],
        "no_images": {"annotations": []},
        "bad_image": {"images": [{"id": "x"}], "annotations": []},
        "bad_bbox": {"images": [{"id": 1, "file_name": "a.png", "width": 8, "height": 8}],
                     "annotations": [{"id": 1, "image_id": 1, "bbox": "wide", "segmentation": []}]},
        "unknown_image": {"images": [], "annotations": [{"id": 1, "image_id": 7, "bbox": [0, 0, 1, 1],
                                                        "segmentation": [[0, 0, 1, 0, 1, 1]]}]},
        "bad_rle": {"images": [{"id": 1, "file_name": "a.png", "width": 8, "height": 8}],
                    "annotations": [{"id": 1, "image_id": 1, "bbox": [0, 0, 4, 4], "iscrowd": 0,
                                     "segmentation": {"size": [8, 8], "counts": "$$$$"}}]},
        "outside_box": {"images": [{"id": 1, "file_name": "a.png", "width": 8, "height": 8}],
                        "annotations": [{"id": 1, "image_id": 1, "bbox": [50, 50, 4, 4], "iscrowd": 0,
                                         "segmentation": [[50, 50, 54, 50, 54, 54]]}]},
        "deep": json.loads("[" * 50 + "]" * 50),
    }  # fmt: skip
    for name, value in cases.items():
        (tmp / f"{name}.json").write_text(json.dumps(value))
        yield tmp / f"{name}.json"
    for name, data in HOSTILE_BYTES.items():
        (tmp / f"{name}.json").write_bytes(data)
        yield tmp / f"{name}.json"


def _intrinsics_json(tmp: Path) -> Iterator[Path]:
    cases = {
        "list": [1],
        "wrong_type": {"task": 3},
        "unknown_task": {"task": "dancing"},
        "negative_rate": {"inference_rate": -1},
        "aspect": {"input_aspect_ratio": {"width": 0, "height": 1}},
        "labels": {"classes": {"labels": [1, 2]}},
        "deep": {"classes": {"labels": json.loads("[" * 400 + '"x"' + "]" * 400)}},
    }
    for name, value in cases.items():
        (tmp / f"{name}.json").write_text(json.dumps(value))
        yield tmp / f"{name}.json"
    (tmp / "nan.json").write_text('{"inference_rate": NaN}')
    yield tmp / "nan.json"
    for name, data in HOSTILE_BYTES.items():
        if name != "json":
            (tmp / f"{name}.json").write_bytes(data)
            yield tmp / f"{name}.json"


#: A good COCO file of one 8x8 image a.png (eval scores it: the hostile part is elsewhere).
_ONE_BOX = {"images": [{"id": 1, "file_name": "a.png", "width": 8, "height": 8}],
            "annotations": [{"id": 1, "image_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 0,
                             "segmentation": [[1, 1, 6, 1, 6, 6, 1, 6]]}]}  # fmt: skip


def _cases(make: Callable[[Path], Iterator[Path]], tmp: Path) -> list[Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    return list(make(tmp))


# ------------------------------------------------------------------------------------------- tests


def test_hostile_checkpoints(tmp_path: Path) -> None:
    for path in _cases(_checkpoints, tmp_path / "pt"):
        line = refused("check", str(path))
        assert str(path) in line, line
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.full((8, 8, 3), 128, np.uint8))
    (tmp_path / "ann.json").write_text(json.dumps(_ONE_BOX))  # eval scores this set with a good checkpoint
    for path in _cases(_checkpoints, tmp_path / "pt2")[:3]:  # the same loader, through convert and eval
        refused("convert", str(path), "-o", str(tmp_path / "out"), "--quiet", outputs=(tmp_path / "out",))
        line = refused("eval", str(path), "--coco", str(tmp_path / "ann.json"), "--images", str(images))
        assert f"{path}: not a checkpoint" in line, line


def test_hostile_float_onnx(tmp_path: Path) -> None:
    for path in _cases(lambda t: _onnx_files(t, mctq=False), tmp_path / "onnx"):
        refused("check", str(path))


def test_hostile_mctq_onnx(tmp_path: Path) -> None:
    for path in _cases(lambda t: _onnx_files(t, mctq=True), tmp_path / "mctq"):
        out = tmp_path / f"out_{path.stem}"
        # an operator the gate does not know is its verdict: exit 3, one line
        refused("convert", str(path), "-o", str(out), "--quiet", outputs=(out,), codes=(2, 3))
        assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_hostile_rpk(tmp_path: Path) -> None:
    for path in _cases(_rpk_files, tmp_path / "rpk"):
        refused("inspect", str(path))
        out = tmp_path / "new.rpk"
        refused("intrinsics", str(path), "--set", "inference_rate=5", "-o", str(out), outputs=(out,))


def test_hostile_intrinsics_json(tmp_path: Path) -> None:
    src = tmp_path / "net.rpk"
    src.write_bytes(rpk_path(DEEPLAB).read_bytes())
    for path in _cases(_intrinsics_json, tmp_path / "intr"):
        out = tmp_path / "new.rpk"
        refused("intrinsics", str(src), "--from", str(path), "-o", str(out), outputs=(out,))
    assert src.read_bytes() == rpk_path(DEEPLAB).read_bytes()


def test_hostile_coco_json_and_photos(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.full((8, 8, 3), 128, np.uint8))
    for path in _cases(_coco_files, tmp_path / "coco"):
        refused("eval", "--coco", str(path), "--images", str(images))
    # photos: a COCO file naming images that are not photos (or are, but of another size)
    (tmp_path / "ann.json").write_text(json.dumps(_ONE_BOX))
    photos = tmp_path / "photos"
    photos.mkdir()
    for data in HOSTILE_BYTES.values():
        (photos / "a.png").write_bytes(data)
        refused("eval", "--coco", str(tmp_path / "ann.json"), "--images", str(photos))
    cv2.imwrite(str(photos / "a.png"), np.full((9, 7, 3), 1, np.uint8))  # a photo, of another size
    refused("eval", "--coco", str(tmp_path / "ann.json"), "--images", str(photos))


def test_rpk_with_an_absurd_output_tensor_count_does_not_hang() -> None:
    """Found by benchmarks/rpk_fuzz.py (seed 20261203, mutant 23907): outputTensorNum=99999999999999999999 made
    ``inspect`` count to 10^20."""
    from firmware_packaging import rpk as R
    from tests.support.rpk_fuzz import apply_plan, fuzz_bases, plan_for

    bases = fuzz_bases({p.name: R.read_rpk(p) for p in sorted(rpk_path(DEEPLAB).parent.glob("*.rpk"))})
    data = apply_plan(bases, plan_for(20261203, 23907, bases))
    with _no_hang(30):
        rpk = R.parse_rpk(data)
        assert rpk.network_info["networks"][0]["outputTensorNum"] == "99999999999999999999"
        rpk.summary()
