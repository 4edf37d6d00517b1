"""Composite scenes: RGBA cut-outs pasted on a real photo, each with its exact visible mask (numpy + OpenCV only).

A scene is a crop of a background photo at the frame size with several cut-outs pasted at camera-like scale. Most
are placed against one already pasted (``near``): beside it, touching it or over it, so a prompt crop holds
neighbours, objects occlude and are occluded, and (``same_kind``) the same object stands twice side by side. Then
light sensor-like degradations: white balance and gamma, blur, noise, JPEG.

Each instance is the visible part of one pasted object: the pixels where its alpha is at least half and no later
paste's is (a pixel belongs to the topmost object covering it by half or more), inside the frame, with its tight
box. Objects left with too little visible are pasted but not annotated (like unlabelled clutter).

Deterministic: a scene is a function of the cut-outs, backgrounds, ``CompositeParams``, seed and scene index (its own
``numpy`` generator, so scene k is the same whatever the number of scenes). The evaluation set
(``imx500_sam.data.composite_set``) uses the ``evaluate`` role's cut-outs and backgrounds; training composites reuse
this module with ``train`` ones and another seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

ALPHA_HALF = 128  # alpha >= this: the pixel shows the object (a binarised alpha of 0.5)


@dataclass(frozen=True)
class CompositeParams:
    """How scenes are drawn (the defaults: a 640x480 camera frame, 4-9 objects)."""

    width: int = 640
    height: int = 480
    objects: tuple[int, int] = (4, 9)  # per scene, inclusive
    object_side: tuple[float, float] = (0.08, 0.4)  # longest side / frame width, log-uniform
    max_upscale: float = 2.0  # a cut-out is never enlarged more than this (small stamps stay small)
    near: float = 0.7  # share of objects placed against one already pasted
    same_kind: float = 0.25  # of those, share that repeat their neighbour's cut-out beside it
    gap: tuple[float, float] = (0.5, 1.02)  # centre distance / box-touching distance: overlapping .. touching
    background_share: tuple[float, float] = (0.45, 1.0)  # crop of the background: share of its largest 4:3 crop
    object_gain: float = 0.12  # per-object brightness jitter (+-)
    white_balance: float = 0.08  # per-channel gain jitter (+-)
    gamma: tuple[float, float] = (0.85, 1.15)
    blur: float = 0.5  # probability of a Gaussian blur
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    noise_sigma: tuple[float, float] = (0.5, 5.0)  # grey levels
    jpeg_quality: tuple[int, int] = (55, 95)
    min_visible_px: int = 150  # an object with fewer visible pixels is not annotated
    min_visible_share: float = 0.3  # ... nor one with less than this share of its pasted pixels visible


@dataclass(frozen=True)
class Cutout:
    """An object to paste: its name and RGBA pixels (cropped to its alpha)."""

    name: str
    rgba: np.ndarray

    @classmethod
    def of(cls, name: str, rgba: np.ndarray) -> Cutout:
        """A cut-out from RGBA pixels, cropped to the box of its non-zero alpha (ValueError if empty or not RGBA)."""
        a = np.asarray(rgba)
        if a.ndim != 3 or a.shape[2] != 4 or a.dtype != np.uint8:
            raise ValueError(f"{name}: expected uint8 HxWx4 RGBA, got {a.dtype} {a.shape}")
        ys, xs = np.nonzero(a[:, :, 3] >= ALPHA_HALF)
        if not len(ys):
            raise ValueError(f"{name}: its alpha is empty")
        ys, xs = np.nonzero(a[:, :, 3])
        return cls(name, np.ascontiguousarray(a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]))


@dataclass(frozen=True)
class Background:
    """A scene photo: its name and RGB pixels."""

    name: str
    rgb: np.ndarray


@dataclass(frozen=True)
class Placement:
    """Where one object was pasted: its cut-out, its top-left corner and size in the frame (may reach outside it),
    whether it was mirrored, and its brightness gain."""

    cutout: str
    x: int
    y: int
    w: int
    h: int
    flip: bool
    gain: float


@dataclass(frozen=True)
class SceneInstance:
    """The visible part of one pasted object: its mask (bool HxW), tight box (x, y, w, h), its paste order, the
    share of its pasted pixels that is visible, and how many other objects show inside its box grown by 10% a side
    (neighbours in its prompt crop)."""

    cutout: str
    order: int
    mask: np.ndarray
    bbox: tuple[float, float, float, float]
    visible_share: float
    neighbours: int


@dataclass(frozen=True)
class Scene:
    """One composite: the degraded RGB frame, its background, every paste in order and the annotated instances."""

    rgb: np.ndarray
    background: str
    placements: tuple[Placement, ...]
    instances: tuple[SceneInstance, ...]


def scene_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of scene ``index`` of a set drawn with ``seed``."""
    return np.random.default_rng([int(seed), int(index)])


def _background(bg: Background, rng: np.random.Generator, p: CompositeParams) -> np.ndarray:
    h, w = bg.rgb.shape[:2]
    aspect = p.width / p.height
    full_w = min(w, h * aspect)
    cw = full_w * rng.uniform(*p.background_share)
    ch = cw / aspect
    x0 = rng.uniform(0, w - cw)
    y0 = rng.uniform(0, h - ch)
    crop = bg.rgb[int(y0) : int(y0 + ch), int(x0) : int(x0 + cw)]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    shrink = crop.shape[1] > p.width
    return cv2.resize(
        np.ascontiguousarray(crop), (p.width, p.height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )


def _size(co: Cutout, side: float, p: CompositeParams) -> tuple[int, int]:
    h, w = co.rgba.shape[:2]
    side = min(side, p.max_upscale * max(h, w))
    s = side / max(h, w)
    return max(2, round(w * s)), max(2, round(h * s))


def _draw_side(rng: np.random.Generator, p: CompositeParams) -> float:
    lo, hi = p.object_side
    return p.width * math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _place(
    cutouts: Sequence[Cutout], placed: list[Placement], rng: np.random.Generator, p: CompositeParams
) -> Placement:
    """The next object: against an already placed one (``near``; maybe the same cut-out) or anywhere."""
    by_name = {c.name: c for c in cutouts}
    if placed and rng.random() < p.near:
        anchor = placed[int(rng.integers(len(placed)))]
        if rng.random() < p.same_kind:
            co = by_name[anchor.cutout]
            side = max(anchor.w, anchor.h) * rng.uniform(0.85, 1.15)
        else:
            co = cutouts[int(rng.integers(len(cutouts)))]
            side = _draw_side(rng, p)
        w, h = _size(co, side, p)
        angle = rng.uniform(0, 2 * math.pi)
        c, s = math.cos(angle), math.sin(angle)
        # centre distance at which the two boxes touch along this direction
        touch = min(
            (anchor.w + w) / 2 / max(abs(c), 1e-6),
            (anchor.h + h) / 2 / max(abs(s), 1e-6),
        )
        dist = touch * rng.uniform(*p.gap)
        cx = anchor.x + anchor.w / 2 + dist * c
        cy = anchor.y + anchor.h / 2 + dist * s
    else:
        co = cutouts[int(rng.integers(len(cutouts)))]
        w, h = _size(co, _draw_side(rng, p), p)
        cx = rng.uniform(0, p.width)
        cy = rng.uniform(0, p.height)
    flip = bool(rng.random() < 0.5)
    gain = float(rng.uniform(1 - p.object_gain, 1 + p.object_gain))
    return Placement(co.name, round(cx - w / 2), round(cy - h / 2), w, h, flip, gain)


def _object_pixels(co: Cutout, pl: Placement) -> tuple[np.ndarray, np.ndarray]:
    """The cut-out at its pasted size: RGB float32 (gain applied) and alpha uint8."""
    src = co.rgba[:, ::-1] if pl.flip else co.rgba
    shrink = pl.w < src.shape[1]
    obj = cv2.resize(
        np.ascontiguousarray(src), (pl.w, pl.h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )
    return np.clip(obj[:, :, :3].astype(np.float32) * pl.gain, 0, 255), obj[:, :, 3]


def _window(pl: Placement, p: CompositeParams) -> tuple[slice, slice, slice, slice] | None:
    """(frame rows, frame cols, object rows, object cols) of the part of a paste inside the frame."""
    x0, y0 = max(pl.x, 0), max(pl.y, 0)
    x1, y1 = min(pl.x + pl.w, p.width), min(pl.y + pl.h, p.height)
    if x1 <= x0 or y1 <= y0:
        return None
    return slice(y0, y1), slice(x0, x1), slice(y0 - pl.y, y1 - pl.y), slice(x0 - pl.x, x1 - pl.x)


def paste(
    frame: np.ndarray, cutouts: Sequence[Cutout], placements: Sequence[Placement], p: CompositeParams
) -> tuple[np.ndarray, list[np.ndarray], list[int]]:
    """Paste ``placements`` in order onto ``frame`` (uint8 RGB): the composite (float32), each object's full mask in
    the frame (bool, alpha >= half; before occlusion) and each object's pasted pixel count (inside or outside it)."""
    by_name = {c.name: c for c in cutouts}
    canvas = frame.astype(np.float32)
    masks: list[np.ndarray] = []
    areas: list[int] = []
    for pl in placements:
        rgb, alpha = _object_pixels(by_name[pl.cutout], pl)
        full = np.zeros((p.height, p.width), bool)
        areas.append(int((alpha >= ALPHA_HALF).sum()))
        win = _window(pl, p)
        if win is not None:
            fr, fc, orow, ocol = win
            a = alpha[orow, ocol].astype(np.float32)[:, :, None] / 255.0
            canvas[fr, fc] = canvas[fr, fc] * (1 - a) + rgb[orow, ocol] * a
            full[fr, fc] = alpha[orow, ocol] >= ALPHA_HALF
        masks.append(full)
    return canvas, masks, areas


def visible_masks(full: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each object's visible part: its full mask minus the union of every later object's."""
    out: list[np.ndarray] = [np.zeros(0, bool)] * len(full)
    above = np.zeros_like(full[0]) if full else None
    for i in range(len(full) - 1, -1, -1):
        out[i] = full[i] & ~above
        above = above | full[i]
    return out


def degrade(rgb: np.ndarray, rng: np.random.Generator, p: CompositeParams) -> np.ndarray:
    """Sensor-like degradations of a float RGB frame: white balance, gamma, blur, noise, then JPEG -> uint8 RGB."""
    img = np.clip(rgb, 0, 255) / 255.0
    gains = rng.uniform(1 - p.white_balance, 1 + p.white_balance, 3).astype(np.float32)
    img = np.clip(img * gains, 0, 1) ** rng.uniform(*p.gamma)
    if rng.random() < p.blur:
        img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), float(rng.uniform(*p.blur_sigma)))
    img = img * 255.0 + rng.normal(0, rng.uniform(*p.noise_sigma), img.shape)
    u8 = np.clip(np.round(img), 0, 255).astype(np.uint8)
    quality = int(rng.integers(p.jpeg_quality[0], p.jpeg_quality[1] + 1))
    ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(u8, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return cv2.cvtColor(cv2.imdecode(jpg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _bbox(mask: np.ndarray) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)


def compose_scene(
    cutouts: Sequence[Cutout],
    backgrounds: Sequence[Background],
    seed: int,
    index: int,
    params: CompositeParams | None = None,
) -> Scene:
    """Scene ``index`` of the set drawn with ``seed``: background crop, pastes, degradations, visible instances."""
    p = params or CompositeParams()
    if not cutouts or not backgrounds:
        raise ValueError("compose_scene needs cut-outs and backgrounds")
    rng = scene_rng(seed, index)
    bg = backgrounds[int(rng.integers(len(backgrounds)))]
    frame = _background(bg, rng, p)
    placed: list[Placement] = []
    for _ in range(int(rng.integers(p.objects[0], p.objects[1] + 1))):
        placed.append(_place(cutouts, placed, rng, p))
    canvas, full, areas = paste(frame, cutouts, placed, p)
    rgb = degrade(canvas, rng, p)
    visible = visible_masks(full)
    instances = []
    for i, (pl, vis) in enumerate(zip(placed, visible, strict=True)):
        n = int(vis.sum())
        if n < p.min_visible_px or n < p.min_visible_share * areas[i]:
            continue
        box = _bbox(vis)
        x, y, w, h = box
        x0, y0 = max(0, int(x - 0.1 * w)), max(0, int(y - 0.1 * h))
        x1, y1 = int(math.ceil(x + 1.1 * w)), int(math.ceil(y + 1.1 * h))
        near = sum(1 for j, v in enumerate(visible) if j != i and v[y0:y1, x0:x1].any())
        instances.append(SceneInstance(pl.cutout, i, vis, box, n / areas[i], near))
    return Scene(rgb, bg.name, tuple(placed), tuple(instances))
