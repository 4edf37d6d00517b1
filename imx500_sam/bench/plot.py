"""Small PNG plots drawn with OpenCV and numpy (no matplotlib on a Pi needed): lines, points, bars, histograms."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from imx500_sam.bench.record import write_atomic

FONT = cv2.FONT_HERSHEY_SIMPLEX
BLACK, GREY, LIGHT, WHITE = (0, 0, 0), (110, 110, 110), (225, 225, 225), (255, 255, 255)
# BGR: blue, orange, green, red, purple, brown
COLOURS = [(180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148), (75, 86, 140)]


@dataclass
class Series:
    """One data series: ``style`` is "line", "points", "rings", "line+points", "steps" or "bars"."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    style: str = "line"
    colour: tuple[int, int, int] | None = None


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + (abs(lo) * 0.1 or 1.0)
    raw = (hi - lo) / max(1, n - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    ticks = [round(math.floor(lo / step) * step, 10)]
    while ticks[-1] < hi - 1e-12 * max(1.0, abs(hi)):  # up to the first tick at or above hi
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.3g}"
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _text(img: np.ndarray, s: str, org: tuple[int, int], scale: float = 0.45, colour=BLACK, thick: int = 1) -> None:
    cv2.putText(img, s, (int(org[0]), int(org[1])), FONT, scale, colour, thick, cv2.LINE_AA)


def _text_size(s: str, scale: float = 0.45, thick: int = 1) -> tuple[int, int]:
    (w, h), _ = cv2.getTextSize(s, FONT, scale, thick)
    return w, h


def plot(
    series: Sequence[Series],
    title: str,
    xlabel: str,
    ylabel: str,
    size: tuple[int, int] = (900, 420),
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    hlines: Sequence[tuple[float, str]] = (),
    note: str | None = None,
    xlabels: Sequence[str] | None = None,
) -> np.ndarray:
    """A chart of ``series`` on shared axes, with title, axis labels, grid, legend and optional horizontal lines.

    ``xlabels``: category names for x = 0, 1, ... (bar charts) instead of numeric ticks.
    """
    if xlabels is not None:
        xlim = (-0.6, len(xlabels) - 0.4)
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 78, 20, 44, 58
    pw, ph = w - left - right, h - top - bottom
    xs = np.concatenate([np.asarray(s.x, float) for s in series if len(s.x)] or [np.zeros(1)])
    ys = np.concatenate([np.asarray(s.y, float) for s in series if len(s.y)] or [np.zeros(1)])
    ys = np.concatenate([ys, [v for v, _ in hlines]]) if hlines else ys
    xs, ys = xs[np.isfinite(xs)], ys[np.isfinite(ys)]
    x0, x1 = xlim or (float(xs.min()) if xs.size else 0.0, float(xs.max()) if xs.size else 1.0)
    y0, y1 = ylim or (min(0.0, float(ys.min())) if ys.size else 0.0, float(ys.max()) if ys.size else 1.0)
    if any(s.style == "bars" for s in series) and xlim is None:
        pad = 0.5 * (min(np.diff(np.unique(xs))) if np.unique(xs).size > 1 else 1.0)
        x0, x1 = x0 - pad, x1 + pad
    xt, yt = nice_ticks(x0, x1), nice_ticks(y0, y1 * 1.05 if ylim is None else y1)
    if xlim is None:
        x0, x1 = min(x0, xt[0]), max(x1, xt[-1])
    if ylim is None:
        y0, y1 = min(y0, yt[0]), max(y1, yt[-1])
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1

    def px(x: float) -> int:
        return int(round(left + (x - x0) / (x1 - x0) * pw))

    def py(y: float) -> int:
        return int(round(top + ph - (y - y0) / (y1 - y0) * ph))

    for t in yt:
        if y0 <= t <= y1:
            cv2.line(img, (left, py(t)), (left + pw, py(t)), LIGHT, 1)
            s = _fmt(t)
            _text(img, s, (left - 8 - _text_size(s)[0], py(t) + 5))
    if xlabels is not None:
        for i, s in enumerate(xlabels):
            _text(img, s, (px(i) - _text_size(s, 0.42)[0] // 2, top + ph + 18), 0.42)
    for t in xt if xlabels is None else []:
        if x0 <= t <= x1:
            cv2.line(img, (px(t), top), (px(t), top + ph), LIGHT, 1)
            s = _fmt(t)
            _text(img, s, (px(t) - _text_size(s)[0] // 2, top + ph + 18))
    cv2.rectangle(img, (left, top), (left + pw, top + ph), BLACK, 1)
    for i, s in enumerate(series):
        colour = s.colour or COLOURS[i % len(COLOURS)]
        pts = [(px(a), py(b)) for a, b in zip(s.x, s.y, strict=True) if math.isfinite(a) and math.isfinite(b)]
        if s.style == "bars":
            bw = max(1, int(pw / max(1, len(pts)) * 0.7)) if len(pts) > 1 else 20
            for x, y in pts:
                cv2.rectangle(img, (x - bw // 2, y), (x + bw // 2, py(max(y0, 0.0))), colour, -1)
        if s.style in ("line", "line+points") and len(pts) > 1:
            cv2.polylines(img, [np.array(pts, np.int32)], False, colour, 2, cv2.LINE_AA)
        if s.style == "steps" and len(pts) > 1:
            stepped = []
            for (xa, ya), (xb, _) in itertools.pairwise(pts):
                stepped += [(xa, ya), (xb, ya)]
            cv2.polylines(img, [np.array(stepped, np.int32)], False, colour, 2, cv2.LINE_AA)
        if s.style == "rings":
            for p in pts:
                cv2.circle(img, p, 7, colour, 2, cv2.LINE_AA)
        if s.style in ("points", "line+points"):
            r = 2 if len(pts) > 200 else 4
            for p in pts:
                cv2.circle(img, p, r, colour, -1, cv2.LINE_AA)
    for value, label in hlines:
        if y0 <= value <= y1:
            y = py(value)
            for xa in range(left, left + pw, 12):
                cv2.line(img, (xa, y), (min(xa + 6, left + pw), y), (60, 60, 60), 1)
            _text(img, label, (left + pw - _text_size(label, 0.42)[0] - 6, y - 6), 0.42, (60, 60, 60))
    # legend
    lx, ly = left + 10, top + 18
    for i, s in enumerate(series):
        if not s.label:
            continue
        colour = s.colour or COLOURS[i % len(COLOURS)]
        cv2.rectangle(img, (lx, ly - 9), (lx + 14, ly + 1), colour, -1)
        _text(img, s.label, (lx + 20, ly), 0.45)
        ly += 18
    tw = _text_size(title, 0.6, 1)[0]
    _text(img, title, ((w - tw) // 2, 26), 0.6, BLACK, 1)
    _text(img, xlabel, (left + (pw - _text_size(xlabel)[0]) // 2, h - 14))
    ylab = np.full((22, _text_size(ylabel)[0] + 8, 3), 255, np.uint8)
    _text(ylab, ylabel, (4, 16))
    ylab = cv2.rotate(ylab, cv2.ROTATE_90_COUNTERCLOCKWISE)
    yh = min(ylab.shape[0], h)
    ys0 = max(0, top + (ph - yh) // 2)
    img[ys0 : ys0 + yh, 4 : 4 + ylab.shape[1]] = ylab[:yh]
    if note:
        nw = _text_size(note, 0.38)[0]
        _text(img, note, (w - right - nw, top - 6), 0.38, GREY)
    return img


def histogram(values: Sequence[float], bins: int = 30) -> tuple[list[float], list[float]]:
    """Bin centres and counts of ``values``."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], float)
    if v.size == 0:
        return [], []
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        hi = lo + 1e-3
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    return list((edges[:-1] + edges[1:]) / 2), [float(c) for c in counts]


def stack(images: Sequence[np.ndarray]) -> np.ndarray:
    """Images one above the other (widths padded to the widest)."""
    width = max(i.shape[1] for i in images)
    rows = [np.pad(i, ((0, 0), (0, width - i.shape[1]), (0, 0)), constant_values=255) for i in images]
    return np.concatenate(rows, axis=0)


def save_png(path: Path, image: np.ndarray) -> None:
    """Write a PNG atomically."""
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"cannot encode {path}")
    write_atomic(Path(path), buf.tobytes())
