"""An independent reading of the PicoSAM3 authors' evaluation, written from their code (pbonazzi/picosam3,
``model_compression/dataset.py`` ``PicoSAMDataset.__getitem__``, ``model_compression/utils.py``
``pad_bbox_to_square``, ``model_compression/picosam2/benchmark.py`` ``calc_miou``, ``calc_map_iou_range`` and
``evaluate_picosam``; read 2026-12-03 through the fork z0905/picosam3 at 69685ce) and shared/notes/picosam3.md,
not from imx500_sam: pycocotools' COCO class, Pillow, torchvision's ToTensor/Normalize arithmetic and a batch-size-1
loop, as theirs.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pycocotools.coco import COCO


class _ToTensorNormalize:
    """torchvision's ``Compose([ToTensor(), Normalize(mean, std)])`` as its code computes it (torchvision itself
    does not import beside this torch build): HWC uint8 -> CHW float / 255, then ``sub_(mean).div_(std)``."""

    def __init__(self, mean, std) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, pic: Image.Image) -> torch.Tensor:
        img = torch.from_numpy(np.array(pic, np.uint8, copy=True)).permute((2, 0, 1)).contiguous()
        return img.to(dtype=torch.float32).div(255).sub_(self.mean).div_(self.std)


def _pad_bbox_to_square(bbox, img_width, img_height, padding=0.1):
    x, y, w, h = bbox
    pad_w = w * padding
    pad_h = h * padding
    x -= pad_w
    y -= pad_h
    w += 2 * pad_w
    h += 2 * pad_h
    size = max(w, h)
    cx = x + w / 2
    cy = y + h / 2
    x1 = cx - size / 2
    y1 = cy - size / 2
    x2 = x1 + size
    y2 = y1 + size
    x1 = max(0, x1)
    y1 = max(0, y1)
    x2 = min(img_width, x2)
    y2 = min(img_height, y2)
    return int(x1), int(y1), int(x2), int(y2)


class AuthorsDataset:
    """Their ``PicoSAMDataset`` with ``require_cache=False`` (no teacher logits)."""

    def __init__(self, image_root: str, annotation_file: str, image_size: int = 96) -> None:
        self.coco = COCO(annotation_file)
        self.image_dir = image_root
        self.image_size = image_size
        self.image_ids = self.coco.getImgIds()
        existing = set()
        for img_id in self.image_ids:
            info = self.coco.loadImgs(img_id)[0]
            name = info.get("file_name", f"{info['id']:012d}.jpg")
            if os.path.exists(os.path.join(self.image_dir, name)):
                existing.add(img_id)
        self.annotations = [
            ann
            for ann in self.coco.loadAnns(self.coco.getAnnIds(imgIds=self.image_ids))
            if "segmentation" in ann and ann.get("iscrowd", 0) == 0 and ann["image_id"] in existing
        ]
        self.transform = _ToTensorNormalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])

    def __len__(self) -> int:
        return len(self.annotations)

    def __getitem__(self, index: int):
        ann = self.annotations[index]
        info = self.coco.loadImgs(ann["image_id"])[0]
        path = os.path.join(self.image_dir, info.get("file_name", f"{info['id']:012d}.jpg"))
        image = Image.open(path).convert("RGB")
        mask = self.coco.annToMask(ann)
        w, h = image.size
        x1, y1, x2, y2 = _pad_bbox_to_square(ann["bbox"], w, h, padding=0.1)
        image_rs = image.crop((x1, y1, x2, y2)).resize((self.image_size, self.image_size), Image.BILINEAR)
        mask_rs = Image.fromarray(mask).crop((x1, y1, x2, y2)).resize((self.image_size, self.image_size), Image.NEAREST)
        return self.transform(image_rs), torch.tensor(np.array(mask_rs), dtype=torch.float32).unsqueeze(0)


def calc_miou(preds: torch.Tensor, targets: torch.Tensor) -> float:
    preds = (torch.sigmoid(preds) > 0.5).cpu().numpy()
    targets = (targets > 0.5).cpu().numpy()
    return np.mean(
        [
            (np.logical_and(p, t).sum() / np.logical_or(p, t).sum()) if np.logical_or(p, t).sum() else 1.0
            for p, t in zip(preds, targets, strict=True)
        ]
    )


def calc_map_iou_range(preds: torch.Tensor, targets: torch.Tensor, iou_thresholds=np.arange(0.5, 1.0, 0.05)):
    preds = torch.sigmoid(preds).cpu().numpy()
    targets = targets.cpu().numpy()
    aps = []
    for iou_thresh in iou_thresholds:
        ap_per_thresh = []
        for p, t in zip(preds, targets, strict=True):
            if t.sum() == 0:
                continue
            p_bin = p > 0.5
            t_bin = t > 0.5
            iou = np.logical_and(p_bin, t_bin).sum() / (np.logical_or(p_bin, t_bin).sum() + 1e-8)
            ap_per_thresh.append(1.0 if iou >= iou_thresh else 0.0)
        if ap_per_thresh:
            aps.append(np.mean(ap_per_thresh))
    return float(np.mean(aps)) if aps else 0.0


def evaluate_picosam(model, dataset: AuthorsDataset) -> tuple[float, float, list[float]]:
    """Their ``evaluate_picosam`` over a batch-size-1 loader: (mIoU, mAP@[.5:.95], per-instance IoUs)."""
    preds, gts, mious = [], [], []
    for i in range(len(dataset)):
        x, y = dataset[i]
        x, y = x.unsqueeze(0), y.unsqueeze(0)
        with torch.no_grad():
            pred = model(x)
        pred = F.interpolate(pred, size=y.shape[-2:], mode="bilinear", align_corners=False)
        preds.append(pred.cpu())
        gts.append(y.cpu())
        mious.append(calc_miou(pred.cpu(), y.cpu()))
    return float(np.mean(mious)), calc_map_iou_range(torch.cat(preds), torch.cat(gts)), [float(m) for m in mious]
