"""Teacher targets computed once per image and cached (npz per image, keyed by image content and teacher).

A record holds, for every object of one image: its box (x, y, w, h), the teacher's soft mask at image
resolution (uint8, probability * 255), the teacher's confidence, and the ground-truth mask where one
exists. Records for unlabelled photos take their boxes from the teacher's automatic masks.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imx500_sam.defaults import cache_dir
from imx500_sam.procs import owned_temp_dir
from imx500_sam.prompt import mask_bbox


@dataclass
class ImageTargets:
    """Cached teacher (and ground-truth) targets of one image."""

    image_path: Path
    boxes: np.ndarray  # (N, 4) float32 x, y, w, h
    teacher: np.ndarray  # (N, H, W) uint8 soft masks (probability * 255)
    conf: np.ndarray  # (N,) float32 teacher confidence (its predicted IoU)
    gt: np.ndarray | None  # (N, H, W) uint8 {0, 1} or None

    def __len__(self) -> int:
        return len(self.boxes)


def _key(image: np.ndarray, tag: str) -> str:
    h = hashlib.sha256(image.tobytes())
    h.update(str(image.shape).encode())
    h.update(tag.encode())
    return h.hexdigest()[:20]


def _save(path: Path, rec: ImageTargets) -> None:
    """Write one record atomically, through an owner-marked temporary folder (a killed run's goes next time)."""
    with owned_temp_dir(".targets-", path.parent) as work:
        _write(work / path.name, rec)
        os.replace(work / path.name, path)


def _write(tmp: Path, rec: ImageTargets) -> None:
    np.savez_compressed(
        tmp,
        image_path=str(rec.image_path),
        boxes=rec.boxes,
        teacher=rec.teacher,
        conf=rec.conf,
        gt=rec.gt if rec.gt is not None else np.zeros((0,), np.uint8),
    )


def load_targets(path: Path) -> ImageTargets:
    """Read one cached record (plain arrays; no pickle)."""
    with np.load(path, allow_pickle=False) as z:
        gt = z["gt"]
        return ImageTargets(
            image_path=Path(str(z["image_path"])),
            boxes=z["boxes"],
            teacher=z["teacher"],
            conf=z["conf"],
            gt=gt if gt.ndim == 3 else None,
        )


def targets_dir(teacher_name: str, cache: Path | None = None) -> Path:
    """Folder of cached targets for one teacher."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in teacher_name)
    return (cache or cache_dir()) / "targets" / safe


class _TargetCache:
    """One teacher's cached targets: the folder, the records asked for so far, and the teacher, made at the first
    image that is not in the cache."""

    def __init__(self, teacher_name: str, cache: Path | None, teacher_factory: Callable[[], object]) -> None:
        self.dir = targets_dir(teacher_name, cache)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.teacher = functools.cache(teacher_factory)
        self.records: list[ImageTargets] = []

    def add(self, name: str, image_path: Path, make: Callable[..., ImageTargets], *args: object) -> float | None:
        """Add the record cached as ``name`` (pointing at ``image_path``), else ``make(teacher, *args)``'s, saved
        there; returns the seconds that took when it was computed (the teacher's making not counted), else None."""
        path = self.dir / name
        if path.is_file():
            rec = load_targets(path)
            rec.image_path = Path(image_path)
            self.records.append(rec)
            return None
        teacher = self.teacher()
        t0 = time.perf_counter()
        rec = make(teacher, *args)
        _save(path, rec)
        self.records.append(rec)
        return time.perf_counter() - t0


def _auto_targets(
    teacher: object, img: np.ndarray, photo: Path, points_per_side: int, max_objects: int
) -> ImageTargets:
    """One photo's targets: boxes of the teacher's automatic masks (4 px and more), its soft masks for them."""
    teacher.set_image(img)  # type: ignore[attr-defined]
    boxes, _ = teacher.auto_boxes(points_per_side=points_per_side)  # type: ignore[attr-defined]
    boxes = boxes[:max_objects]
    probs, conf = teacher.predict_boxes(boxes)  # type: ignore[attr-defined]
    keep_boxes, keep = [], []
    for j in range(len(boxes)):
        b = mask_bbox(probs[j] > 0.5)
        if b is not None and b[2] >= 4 and b[3] >= 4:
            keep_boxes.append(b)
            keep.append(j)
    return ImageTargets(
        image_path=Path(photo),
        boxes=np.asarray(keep_boxes, np.float32).reshape(-1, 4),
        teacher=np.round(probs[keep] * 255).astype(np.uint8),
        conf=conf[keep].astype(np.float32),
        gt=None,
    )


def _box_targets(teacher: object, img: np.ndarray, ipath: Path, b: np.ndarray, gt: np.ndarray | None) -> ImageTargets:
    """One image's targets for given boxes: the teacher's soft masks, ground truth kept beside them."""
    teacher.set_image(img)  # type: ignore[attr-defined]
    probs, conf = teacher.predict_boxes(b)  # type: ignore[attr-defined]
    return ImageTargets(
        Path(ipath),
        b,
        np.round(probs * 255).astype(np.uint8),
        conf.astype(np.float32),
        None if gt is None else np.asarray(gt, np.uint8),
    )


def photo_targets(
    photos: Sequence[Path],
    teacher_factory: Callable[[], object],
    teacher_name: str = "mobilesam",
    points_per_side: int = 8,
    max_objects: int = 40,
    cache: Path | None = None,
    log: Callable[[str], None] = print,
) -> list[ImageTargets]:
    """Teacher targets for unlabelled photos: boxes from the teacher's automatic masks (cached)."""
    from imx500_sam.data.sources import read_rgb

    store = _TargetCache(teacher_name, cache, teacher_factory)
    for i, photo in enumerate(photos):
        img = read_rgb(photo)
        name = f"auto{points_per_side}_{_key(img, f'auto{points_per_side}-{max_objects}')}.npz"
        dt = store.add(name, photo, _auto_targets, img, photo, points_per_side, max_objects)
        if dt is not None:
            objects = len(store.records[-1])
            log(f"teacher targets {i + 1}/{len(photos)} {Path(photo).name}: {objects} objects in {dt:.1f} s")
    return store.records


def box_targets(
    images: Sequence[np.ndarray],
    image_paths: Sequence[Path],
    boxes: Sequence[np.ndarray],
    gts: Sequence[np.ndarray | None],
    teacher_factory: Callable[[], object],
    teacher_name: str = "mobilesam",
    cache: Path | None = None,
    log: Callable[[str], None] = print,
) -> list[ImageTargets]:
    """Teacher targets for given boxes (e.g. a COCO file), with ground truth kept beside them (cached)."""
    store = _TargetCache(teacher_name, cache, teacher_factory)
    for i, (img, ipath, b, gt) in enumerate(zip(images, image_paths, boxes, gts, strict=True)):
        b = np.asarray(b, np.float32).reshape(-1, 4)
        name = f"box_{_key(img, 'box' + b.tobytes().hex())}.npz"
        if store.add(name, ipath, _box_targets, img, ipath, b, gt) is not None:
            log(f"teacher targets {i + 1}/{len(images)}: {len(store.records[-1])} objects")
    return store.records
