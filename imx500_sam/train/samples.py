"""Training crops: prompt-style crops from cached teacher targets, and cut-and-paste composites.

Every sample is what PicoSAM3 sees at run time: the crop of an object's box under the model's crop convention
(imx500_sam.prompt.prompt_roi / crop: the shifted square or the authors' clamped one), 96x96 RGB, plus its targets
in the same crop:
- ``teacher``: the teacher's soft mask (float in [0, 1]) and confidence, where a teacher ran;
- ``gt``: an exact ground-truth mask, where one exists (COCO masks, or the alpha of a pasted cut-out).
Pure numpy + OpenCV; all randomness comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from imx500_sam.prompt import SHIFTED, check_convention, crop, mask_bbox, prompt_roi
from imx500_sam.train.targets import ImageTargets


@dataclass
class Batch:
    """A batch as numpy arrays: images (B, 96, 96, 3) uint8, masks (B, 96, 96) float32, flags/weights (B,)."""

    images: np.ndarray
    teacher: np.ndarray
    teacher_conf: np.ndarray  # 0 where no teacher target
    gt: np.ndarray
    has_gt: np.ndarray


def jitter_box(box: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Scale and shift a box (x, y, w, h) by up to ``amount`` of its size (annotation-like noise)."""
    x, y, w, h = (float(v) for v in box)
    if amount <= 0:
        return np.array([x, y, w, h], np.float32)
    sw, sh = 1 + rng.uniform(-amount, amount, 2)
    dx, dy = rng.uniform(-amount / 2, amount / 2, 2)
    nw, nh = max(2.0, w * sw), max(2.0, h * sh)
    cx, cy = x + w / 2 + dx * w, y + h / 2 + dy * h
    return np.array([cx - nw / 2, cy - nh / 2, nw, nh], np.float32)


def _photometric(img: np.ndarray, rng: np.random.Generator, strength: float = 0.25) -> np.ndarray:
    """Brightness, contrast and saturation jitter on a uint8 RGB image."""
    f = img.astype(np.float32)
    f = f * rng.uniform(1 - strength, 1 + strength) + rng.uniform(-20, 20) * strength * 2
    mean = f.mean()
    f = (f - mean) * rng.uniform(1 - strength, 1 + strength) + mean
    grey = f.mean(axis=2, keepdims=True)
    f = (f - grey) * rng.uniform(1 - strength, 1 + strength) + grey
    return np.clip(f, 0, 255).astype(np.uint8)


class TargetSampler:
    """Crops from cached teacher (and ground-truth) targets, images held in memory."""

    def __init__(
        self, records: list[ImageTargets], size: int = 96, min_side: float = 6.0, convention: str = SHIFTED
    ) -> None:
        from imx500_sam.data.sources import read_rgb

        self.size = size
        self.convention = check_convention(convention)
        self.records = [r for r in records if len(r)]
        self.images = [read_rgb(r.image_path) for r in self.records]
        self.index = [
            (i, j)
            for i, r in enumerate(self.records)
            for j in range(len(r))
            if min(r.boxes[j][2], r.boxes[j][3]) >= min_side
        ]

    def __len__(self) -> int:
        return len(self.index)

    def reset(self) -> None:
        """Nothing to forget: each crop depends only on the generator."""

    def sample(self, rng: np.random.Generator, jitter: float = 0.05) -> tuple[np.ndarray, ...]:
        """One crop: (image uint8, teacher float, conf, gt float, has_gt)."""
        i, j = self.index[int(rng.integers(len(self.index)))]
        rec, img = self.records[i], self.images[i]
        h, w = img.shape[:2]
        roi = prompt_roi(tuple(jitter_box(rec.boxes[j], rng, jitter)), (w, h), self.convention)
        im = crop(img, roi, self.size)
        t = crop(rec.teacher[j], roi, self.size).astype(np.float32) / 255.0
        if rec.gt is not None:
            g = (crop(rec.gt[j] * 255, roi, self.size) > 127).astype(np.float32)
            has = 1.0
        else:
            g, has = np.zeros_like(t), 0.0
        return im, t, float(np.clip(rec.conf[j], 0, 1)), g, has


class PasteSampler:
    """Cut-and-paste composites: exact-alpha cut-outs pasted on crops of real photos (exact ground truth).

    A target cut-out and 0-3 others (behind it, and sometimes one in front, occluding it) are pasted
    with random scale, position, flip and colour jitter; the target's visible alpha is the ground truth.
    """

    def __init__(
        self, cutouts: list[Path], backgrounds: list[Path], size: int = 96, canvas: int = 256, convention: str = SHIFTED
    ) -> None:
        from imx500_sam.data.sources import read_rgb

        self.size, self.canvas = size, canvas
        self.convention = check_convention(convention)
        self.cutouts = []
        for p in cutouts:
            rgba = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            if rgba is not None and rgba.ndim == 3 and rgba.shape[2] == 4:
                rgba = cv2.cvtColor(rgba, cv2.COLOR_BGRA2RGBA)
                box = mask_bbox(rgba[:, :, 3] > 127)
                if box is not None:
                    x, y, bw, bh = box
                    self.cutouts.append(rgba[y : y + bh, x : x + bw])
        self.backgrounds = [read_rgb(p) for p in backgrounds]
        if not self.cutouts or not self.backgrounds:
            raise ValueError("cut-and-paste needs at least one cut-out and one background photo")

    def reset(self) -> None:
        """Nothing to forget: each crop depends only on the generator."""

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        bg = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        h, w = bg.shape[:2]
        side = int(min(h, w) * rng.uniform(0.3, 1.0))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        out = cv2.resize(bg[y : y + side, x : x + side], (self.canvas, self.canvas), interpolation=cv2.INTER_AREA)
        return out[:, ::-1].copy() if rng.random() < 0.5 else out

    def _paste(self, canvas: np.ndarray, rng: np.random.Generator, scale: tuple[float, float]) -> np.ndarray:
        """Paste one random cut-out; returns its alpha (float, canvas size)."""
        co = self.cutouts[int(rng.integers(len(self.cutouts)))]
        if rng.random() < 0.5:
            co = co[:, ::-1]
        longest = self.canvas * rng.uniform(*scale)
        s = longest / max(co.shape[:2])
        nw, nh = max(3, round(co.shape[1] * s * rng.uniform(0.85, 1.15))), max(3, round(co.shape[0] * s))
        co = cv2.resize(np.ascontiguousarray(co), (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        rgb = _photometric(co[:, :, :3], rng, 0.2)
        a = co[:, :, 3].astype(np.float32) / 255.0
        # position: mostly inside, sometimes cut by the canvas border
        x0 = int(rng.integers(-nw // 4, self.canvas - 3 * nw // 4 + 1))
        y0 = int(rng.integers(-nh // 4, self.canvas - 3 * nh // 4 + 1))
        alpha = np.zeros((self.canvas, self.canvas), np.float32)
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x0 + nw, self.canvas), min(y0 + nh, self.canvas)
        if cx1 <= cx0 or cy1 <= cy0:
            return alpha
        sub_a = a[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        sub_rgb = rgb[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0].astype(np.float32)
        region = canvas[cy0:cy1, cx0:cx1].astype(np.float32)
        canvas[cy0:cy1, cx0:cx1] = (sub_a[..., None] * sub_rgb + (1 - sub_a[..., None]) * region).astype(np.uint8)
        alpha[cy0:cy1, cx0:cx1] = sub_a
        return alpha

    def sample(self, rng: np.random.Generator, jitter: float = 0.05) -> tuple[np.ndarray, ...]:
        """One composite crop: (image uint8, teacher zeros, conf 0, gt float, has_gt 1)."""
        for _ in range(20):
            canvas = self._background(rng)
            for _ in range(int(rng.integers(0, 3))):
                self._paste(canvas, rng, (0.2, 0.7))
            target = self._paste(canvas, rng, (0.15, 0.8))
            if rng.random() < 0.3:
                front = self._paste(canvas, rng, (0.1, 0.4))
                target = target * (1 - front)
            gt = target > 0.5
            box = mask_bbox(gt)
            if box is None or min(box[2], box[3]) < 6 or gt.sum() < 0.25 * (target > 0.01).sum():
                continue
            box = tuple(jitter_box(np.asarray(box, np.float32), rng, jitter))
            roi = prompt_roi(box, (self.canvas, self.canvas), self.convention)
            im = _photometric(crop(canvas, roi, self.size), rng, 0.1)
            g = (crop(gt.astype(np.uint8) * 255, roi, self.size) > 127).astype(np.float32)
            return im, np.zeros_like(g), 0.0, g, 1.0
        raise RuntimeError("could not compose a valid cut-and-paste sample")


def make_batch(
    samplers: list[tuple[object, float]], batch: int, rng: np.random.Generator, jitter: float = 0.05
) -> Batch:
    """Draw ``batch`` samples, each from a sampler chosen with the given probability weights; random h-flip."""
    weights = np.asarray([w for _, w in samplers], np.float64)
    weights /= weights.sum()
    out = []
    for _ in range(batch):
        sampler = samplers[int(rng.choice(len(samplers), p=weights))][0]
        im, t, c, g, has = sampler.sample(rng, jitter)  # type: ignore[attr-defined]
        if rng.random() < 0.5:
            im, t, g = im[:, ::-1], t[:, ::-1], g[:, ::-1]
        out.append((np.ascontiguousarray(im), np.ascontiguousarray(t), c, np.ascontiguousarray(g), has))
    ims, ts, cs, gs, hs = zip(*out, strict=True)
    return Batch(
        np.stack(ims), np.stack(ts).astype(np.float32), np.asarray(cs, np.float32),
        np.stack(gs).astype(np.float32), np.asarray(hs, np.float32),
    )  # fmt: skip


def resize_batch(b: Batch, size: int) -> Batch:
    """The same batch at another crop size (area interpolation; masks stay soft)."""
    if b.images.shape[1] == size:
        return b

    def rs(a: np.ndarray) -> np.ndarray:
        return np.stack([cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA) for x in a])

    return Batch(rs(b.images), rs(b.teacher), b.teacher_conf, rs(b.gt), b.has_gt)
