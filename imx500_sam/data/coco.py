"""COCO instance files: read (polygon, uncompressed and compressed RLE masks) and write. No pycocotools."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from imx500_sam.errors import BadInputError, clip_words


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """Binary HxW mask -> uncompressed COCO RLE {"size": [h, w], "counts": [...]} (column-major, zeros first)."""
    m = np.asarray(mask, bool)
    flat = m.flatten(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]  # runs alternate 0s and 1s, starting with 0s
    return {"size": [int(m.shape[0]), int(m.shape[1])], "counts": [int(c) for c in counts]}


def rle_string_to_counts(s: str | bytes) -> list[int]:
    """Decode COCO's compressed RLE string (pycocotools' rleFrString) into run counts."""
    data = s.encode() if isinstance(s, str) else bytes(s)
    counts: list[int] = []
    p = 0
    while p < len(data):
        x, k, more = 0, 0, True
        while more:
            if p >= len(data):
                raise ValueError("truncated compressed RLE")
            c = data[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def counts_to_rle_string(counts: list[int]) -> str:
    """Encode run counts as COCO's compressed RLE string (pycocotools' rleToString)."""
    out = []
    for i, cnt in enumerate(counts):
        x = int(cnt) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """COCO RLE (counts as a list or a compressed string) -> uint8 HxW mask."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        counts = rle_string_to_counts(counts)
    counts = np.asarray(counts, dtype=np.int64)
    if counts.sum() != h * w or (counts < 0).any():
        raise ValueError(f"RLE counts sum to {int(counts.sum())}, expected {h * w}")
    values = np.zeros(len(counts), np.uint8)
    values[1::2] = 1
    flat = np.repeat(values, counts)
    return flat.reshape((w, h)).T.copy()


def polygons_to_mask(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    """COCO polygons [[x1, y1, x2, y2, ...], ...] -> uint8 HxW mask (OpenCV fill, even-odd union)."""
    mask = np.zeros((height, width), np.uint8)
    for poly in polygons:
        pts = np.asarray(poly, np.float64).reshape(-1, 2)
        if len(pts) < 3:
            continue
        cv2.fillPoly(mask, [np.round(pts * 4).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=2)
    return mask


def segmentation_to_mask(seg: Any, height: int, width: int) -> np.ndarray:
    """Any COCO segmentation (polygon list, RLE dict, compressed RLE dict) -> uint8 HxW mask."""
    if isinstance(seg, list):
        return polygons_to_mask(seg, height, width)
    if isinstance(seg, dict) and "counts" in seg:
        m = rle_decode(seg)
        if m.shape != (height, width):
            raise ValueError(f"RLE size {m.shape} differs from the image size {(height, width)}")
        return m
    raise ValueError("segmentation is neither polygons nor RLE")


@dataclass
class CocoInstance:
    """One annotated object: box (x, y, w, h) and its segmentation (decoded on demand)."""

    id: int
    bbox: tuple[float, float, float, float]
    segmentation: Any
    category_id: int

    def mask(self, height: int, width: int) -> np.ndarray:
        """The instance mask, uint8 HxW; BadInputError for a segmentation that cannot be decoded."""
        try:
            return segmentation_to_mask(self.segmentation, height, width)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise BadInputError(
                f"annotation {self.id}: its segmentation cannot be decoded ({clip_words(str(exc), 120)}).",
                hint="Give polygons or COCO RLE of the image's size.",
            ) from None


@dataclass
class CocoImage:
    """One image of a COCO file with its instances."""

    id: int
    path: Path
    width: int
    height: int
    instances: list[CocoInstance] = field(default_factory=list)

    def prompt_box(self, inst: CocoInstance, notices: list[str]) -> tuple[float, float, float, float]:
        """``inst``'s box as a prompt: clamped to this image by the runtime's rule (``prompt.clip_box_to_frame``),
        the clamp notice added to ``notices`` (``eval`` and ``eval --device`` summarise them in one line)."""
        from imx500_sam.prompt import clamp_prompt_box

        what = f"{self.path.name} annotation {inst.id}"
        return clamp_prompt_box(inst.bbox, (self.width, self.height), what, notices)


def check_paths(ann_file: Path, images_dir: Path) -> tuple[Path, Path]:
    """``(ann_file, images_dir)`` as paths; BadInputError if the file or the folder is missing."""
    ann_file, images_dir = Path(ann_file), Path(images_dir)
    if not ann_file.is_file():
        raise BadInputError(f"{ann_file}: no such file.", hint="Give a COCO (or LVIS) instances JSON file.")
    if not images_dir.is_dir():
        raise BadInputError(f"{images_dir}: no such folder.", hint="Give the folder holding its images.")
    return ann_file, images_dir


def image_path(info: dict[str, Any], images_dir: Path) -> Path:
    """The file of an ``images`` entry: its ``file_name`` under ``images_dir`` (LVIS has none: named by id)."""
    return images_dir / str(info.get("file_name", f"{int(info['id']):012d}.jpg"))


def load_coco(ann_file: Path, images_dir: Path) -> list[CocoImage]:
    """Read a COCO instance file; images resolved under ``images_dir``. BadInputError on bad input."""
    ann_file, images_dir = check_paths(ann_file, images_dir)
    try:
        data = json.loads(ann_file.read_text())
        images = {
            int(im["id"]): CocoImage(int(im["id"]), image_path(im, images_dir), int(im["width"]), int(im["height"]))
            for im in data["images"]
        }
        for a in data["annotations"]:
            if a.get("iscrowd", 0) and not isinstance(a.get("segmentation"), dict):
                continue
            img = images[int(a["image_id"])]
            seg = a.get("segmentation")
            bbox = tuple(float(v) for v in a["bbox"])
            if seg is None or len(bbox) != 4 or bbox[2] <= 0 or bbox[3] <= 0:
                continue
            img.instances.append(CocoInstance(int(a.get("id", 0)), bbox, seg, int(a.get("category_id", 0))))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"{ann_file}: not a COCO instance file ({exc!r}).", hint="Check its format.") from exc
    for img in images.values():
        if img.instances and not img.path.is_file():
            raise BadInputError(f"{img.path}: image listed in {ann_file.name} not found.", hint="Check --images.")
    return [im for im in images.values() if im.instances]


def write_coco(
    path: Path, images: list[dict[str, Any]], annotations: list[dict[str, Any]], categories: list[dict]
) -> None:
    """Write a COCO instance file atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    tmp.replace(path)
