"""A real photo (scikit-image 'coffee') with two ground-truth ellipse masks, written as a COCO file."""

from __future__ import annotations

from pathlib import Path


def write_coffee_coco(root: Path) -> tuple[Path, Path]:
    """``root/ann.json`` and ``root/images/coffee.png`` (400x600: a cup of coffee on a saucer; two boxes with
    rough ellipse masks as RLE); returns (annotation file, image folder)."""
    import cv2
    import numpy as np
    import skimage.data

    from imx500_sam.data.coco import rle_encode, write_coco

    (root / "images").mkdir(parents=True)
    rgb = skimage.data.coffee()
    cv2.imwrite(str(root / "images" / "coffee.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    h, w = rgb.shape[:2]
    anns = []
    for i, (x, y, bw, bh) in enumerate([(90, 40, 400, 300), (200, 60, 220, 180)], start=1):
        m = np.zeros((h, w), np.uint8)
        cv2.ellipse(m, (x + bw // 2, y + bh // 2), (bw // 2, bh // 2), 0, 0, 360, 1, -1)
        anns.append(
            {"id": i, "image_id": 1, "category_id": 1, "bbox": [x, y, bw, bh], "iscrowd": 0,
             "segmentation": rle_encode(m.astype(bool))}
        )  # fmt: skip
    write_coco(root / "ann.json", [{"id": 1, "file_name": "coffee.png", "width": w, "height": h}], anns, [])
    return root / "ann.json", root / "images"
