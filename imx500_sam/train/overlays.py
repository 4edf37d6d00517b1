"""``eval --save-overlays``: one picture per instance, every evaluated model side by side.

Each panel shows the same view around the instance: the prompt box (white), the ground truth (yellow
outline) and the model's mask (tinted), with the model's name and IoU. ``index.json`` lists the panels.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from imx500_sam.procs import owned_temp_dir, publish_dir
from imx500_sam.runtime.overlay import colour

PANEL = 256  # panel side in pixels
CONTEXT = 1.5  # view side / prompt ROI side
GT_BGR = (0, 230, 255)
BOX_BGR = (255, 255, 255)


@dataclass
class _Instance:
    image: str
    ann_id: int
    view: tuple[int, int, int, int]  # x0, y0, x1, y1 in the image
    picture: np.ndarray  # RGB of the view
    gt: np.ndarray  # bool, view-sized
    box: tuple[float, float, float, float]  # x, y, w, h (image)
    panels: list[tuple[str, np.ndarray, float]] = field(default_factory=list)  # (model, bool mask, IoU)


def _view(box: tuple[float, float, float, float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A square around ``box`` (CONTEXT x its larger side, grown 10% as the prompt is), inside the image."""
    x, y, w, h = box
    side = max(w, h) * 1.1 * CONTEXT
    cx, cy = x + w / 2, y + h / 2
    iw, ih = size
    x0, y0 = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
    x1, y1 = min(iw, int(np.ceil(cx + side / 2))), min(ih, int(np.ceil(cy + side / 2)))
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


class OverlayWriter:
    """Collects each model's mask per instance (only the view around it), then writes one PNG per instance."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        if self.out_dir.exists() and (not self.out_dir.is_dir() or any(self.out_dir.iterdir())):
            from imx500_sam.errors import BadInputError

            raise BadInputError(f"{self.out_dir}: exists and is not an empty folder.", hint="Give a new folder.")
        self._items: dict[tuple[str, int], _Instance] = {}

    def add(
        self,
        model: str,
        image: str,
        ann_id: int,
        rgb: np.ndarray,
        box: tuple[float, float, float, float],
        gt: np.ndarray,
        pred: np.ndarray,
        iou: float,
    ) -> None:
        """Record ``model``'s mask ``pred`` (bool, image-sized) of instance ``ann_id`` of ``image``."""
        key = (image, ann_id)
        item = self._items.get(key)
        if item is None:
            x0, y0, x1, y1 = _view(box, (rgb.shape[1], rgb.shape[0]))
            item = _Instance(image, ann_id, (x0, y0, x1, y1), rgb[y0:y1, x0:x1].copy(), gt[y0:y1, x0:x1] > 0, box)
            self._items[key] = item
        x0, y0, x1, y1 = item.view
        item.panels.append((model, pred[y0:y1, x0:x1] > 0, float(iou)))

    def _panel(self, item: _Instance, k: int, model: str, mask: np.ndarray, iou: float) -> np.ndarray:
        h, w = item.gt.shape
        scale = PANEL / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        bgr = cv2.resize(cv2.cvtColor(item.picture, cv2.COLOR_RGB2BGR), size, interpolation=cv2.INTER_AREA)
        canvas = np.full((PANEL + 22, PANEL, 3), 32, np.uint8)
        m = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        g = cv2.resize(item.gt.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        tint = np.array(colour(k), np.float32)
        bgr[m] = (bgr[m].astype(np.float32) * 0.5 + tint * 0.5).astype(np.uint8)
        contours, _ = cv2.findContours(g, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(bgr, contours, -1, GT_BGR, 1, cv2.LINE_AA)
        bx, by, bw, bh = item.box
        x0, y0 = item.view[:2]
        p0 = (int((bx - x0) * scale), int((by - y0) * scale))
        p1 = (int((bx + bw - x0) * scale), int((by + bh - y0) * scale))
        cv2.rectangle(bgr, p0, p1, BOX_BGR, 1)
        canvas[22 : 22 + size[1], : size[0]] = bgr
        label = f"{model}  IoU {iou:.2f}"
        cv2.putText(canvas, label, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
        return canvas

    def write(self) -> list[Path]:
        """Write ``<image>_<ann>.png`` per instance and ``index.json`` (into a temporary folder, renamed at the end)."""
        parent = self.out_dir.resolve().parent
        parent.mkdir(parents=True, exist_ok=True)
        # owner-marked (imx500_sam.procs): one left by a killed run is removed by the next
        with owned_temp_dir(f".{self.out_dir.name}.tmp-", parent) as box:
            tmp = box / "overlays"
            tmp.mkdir()
            index = []
            for item in self._items.values():
                panels = [self._panel(item, k, *p) for k, p in enumerate(item.panels)]
                gap = np.full((PANEL + 22, 4, 3), 255, np.uint8)
                row = np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1)
                stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(item.image).stem)
                name = f"{stem}_{item.ann_id}.png"
                if not cv2.imwrite(str(tmp / name), row, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
                    raise OSError(f"could not write {tmp / name}")
                index.append(
                    {
                        "file": name,
                        "image": item.image,
                        "annotation_id": item.ann_id,
                        "box_xywh": [round(float(v), 2) for v in item.box],
                        "iou": {m: round(i, 4) for m, _, i in item.panels},
                    }
                )
            legend = "white box: prompt (the object's box); yellow outline: ground truth; tint: the model's mask"
            (tmp / "index.json").write_text(json.dumps({"legend": legend, "instances": index}, indent=1) + "\n")
            for p in tmp.iterdir():
                os.chmod(p, 0o644)
            os.chmod(tmp, 0o755)
            if self.out_dir.exists():
                self.out_dir.rmdir()  # empty (checked at the start)
            publish_dir(tmp, self.out_dir)
        return sorted(self.out_dir.glob("*.png"))
