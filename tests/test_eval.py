"""``eval``: mIoU over COCO instances, checked against IoUs computed by hand on a tiny COCO file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from imx500_sam.data.coco import counts_to_rle_string, load_coco, rle_encode, write_coco
from imx500_sam.train.evaluate import evaluate_crops


@pytest.fixture
def tiny_coco(tmp_path: Path) -> tuple[Path, Path]:
    """One 100x80 image, two instances: a 40x40 square (RLE) and a 10x20 bar (compressed RLE)."""
    images = tmp_path / "images"
    images.mkdir()
    rgb = np.full((80, 100, 3), 90, np.uint8)
    cv2.imwrite(str(images / "a.png"), rgb)
    sq = np.zeros((80, 100), bool)
    sq[30:70, 20:60] = True  # box (20, 30, 40, 40)
    bar = np.zeros((80, 100), bool)
    bar[5:25, 80:90] = True  # box (80, 5, 10, 20)
    bar_rle = rle_encode(bar)
    anns = [
        {
            "id": 1, "image_id": 7, "category_id": 1, "bbox": [20, 30, 40, 40], "iscrowd": 0,
            "segmentation": rle_encode(sq),
        },
        {
            "id": 2, "image_id": 7, "category_id": 1, "bbox": [80, 5, 10, 20], "iscrowd": 0,
            "segmentation": {"size": bar_rle["size"], "counts": counts_to_rle_string(bar_rle["counts"])},
        },
    ]  # fmt: skip
    write_coco(tmp_path / "ann.json", [{"id": 7, "file_name": "a.png", "width": 100, "height": 80}], anns, [])
    return tmp_path / "ann.json", images


def test_iou_by_hand(tiny_coco: tuple[Path, Path]) -> None:
    ann, images = tiny_coco
    data = load_coco(ann, images)

    def everything(batch: np.ndarray) -> np.ndarray:  # predicts the whole prompt crop as the object
        return np.ones((len(batch), 1, 96, 96), np.float32)

    res = evaluate_crops("all", data, everything)
    # square: ROI side round(40 * 1.1) = 44 at (18, 28): IoU = 1600 / 44^2.
    # bar: side round(20 * 1.1) = 22, centre (85, 15) -> x0 = 74, y0 = 4: IoU = 200 / 22^2.
    assert res.instances == 2 and res.images == 1
    assert res.ious == pytest.approx([1600 / 44**2, 200 / 22**2], abs=1e-9)
    assert res.miou == pytest.approx((1600 / 44**2 + 200 / 22**2) / 2)

    def nothing(batch: np.ndarray) -> np.ndarray:
        return -np.ones((len(batch), 96, 96), np.float32)

    assert evaluate_crops("none", data, nothing).miou == 0.0

    def exact_square(batch: np.ndarray) -> np.ndarray:  # the centre 40/44 of the crop: the square itself
        out = -np.ones((len(batch), 96, 96), np.float32)
        lo, hi = round(2 / 44 * 96), round(42 / 44 * 96)
        out[0, lo:hi, lo:hi] = 1
        return out

    first = evaluate_crops("sq", data, exact_square).ious[0]
    assert first > 0.97  # resampling 96 -> 44 px blurs at most one pixel row at each edge


def test_eval_cli_json(tiny_coco: tuple[Path, Path], tmp_path: Path) -> None:
    import torch

    from imx500_sam.model import PicoSAM3, save_checkpoint

    torch.manual_seed(0)
    ckpt = tmp_path / "m.pt"
    save_checkpoint(PicoSAM3().eval(), ckpt)
    ann, images = tiny_coco
    proc = subprocess.run(
        [sys.executable, "-m", "imx500_sam", "eval", str(ckpt), "--coco", str(ann), "--images", str(images), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    (res,) = out["results"]
    assert out["protocol"] == "image" and out["set"]["role"] == "evaluate" and out["set"]["instances"] == 2
    assert [r["name"] for r in out["set"]["images"]] == ["a.png"] and len(out["set"]["images"][0]["sha256"]) == 64
    assert res["instances"] == 2 and res["model"] == "float:m.pt" and 0.0 <= res["miou"] <= 1.0
    bad = subprocess.run(
        [sys.executable, "-m", "imx500_sam", "eval", str(ckpt), "--coco", str(tmp_path / "nope.json"), "--images",
         str(images)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "no such file" in bad.stderr and not bad.stdout


def test_save_overlays(tiny_coco: tuple[Path, Path], tmp_path: Path) -> None:
    """One PNG per instance with every model's panel side by side; what is drawn is where it belongs."""
    from imx500_sam.train.overlays import GT_BGR, PANEL, OverlayWriter

    ann, images = tiny_coco
    data = load_coco(ann, images)
    out = tmp_path / "ov"
    writer = OverlayWriter(out)

    def everything(batch: np.ndarray) -> np.ndarray:
        return np.ones((len(batch), 1, 96, 96), np.float32)

    def nothing(batch: np.ndarray) -> np.ndarray:
        return -np.ones((len(batch), 1, 96, 96), np.float32)

    a = evaluate_crops("all", data, everything, overlays=writer)
    b = evaluate_crops("none", data, nothing, overlays=writer)
    assert not out.exists()  # nothing until written
    pngs = writer.write()
    assert [p.name for p in pngs] == ["a_1.png", "a_2.png"]
    index = json.loads((out / "index.json").read_text())["instances"]
    assert index[0]["iou"] == {"all": round(a.ious[0], 4), "none": 0.0}
    assert index[1]["iou"] == {"all": round(a.ious[1], 4), "none": round(b.ious[1], 4)}
    pic = cv2.imread(str(pngs[0]))
    assert pic.shape == (PANEL + 22, 2 * PANEL + 4, 3)
    left, right = pic[22:, :PANEL], pic[22:, PANEL + 4 :]
    grey = np.array([90, 90, 90])
    # the square (40 px) fills 1/(1.1*1.5) of the view: its centre is tinted on the left ('all'), untouched on the
    # right ('none'); the ground-truth outline (~155 px a side here) is drawn on both
    c = PANEL // 2
    assert np.abs(left[c, c].astype(int) - grey).max() > 20
    assert np.abs(right[c, c].astype(int) - grey).max() <= 1
    for panel in (left, right):
        assert (np.abs(panel.astype(int) - np.array(GT_BGR)).max(axis=2) <= 40).sum() >= 300
    with pytest.raises(Exception, match="not an empty folder"):
        OverlayWriter(out)


def test_eval_cli_save_overlays(tiny_coco: tuple[Path, Path], tmp_path: Path) -> None:
    ann, images = tiny_coco
    out = tmp_path / "overlays"
    cmd = [sys.executable, "-m", "imx500_sam", "eval", "--coco", str(ann), "--images", str(images)]
    proc = subprocess.run([*cmd, "--save-overlays", str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a_1.png", "a_2.png", "index.json"]
    assert "overlays:" in proc.stdout
    again = subprocess.run([*cmd, "--save-overlays", str(out)], capture_output=True, text=True, check=False)
    assert again.returncode == 2 and "not an empty folder" in again.stderr
