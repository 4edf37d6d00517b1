"""Overlay drawing for preview and saved images/videos (OpenCV, BGR)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# BGR colours, one per prompt (cycled)
PALETTE: tuple[tuple[int, int, int], ...] = (
    (60, 200, 60),
    (230, 120, 30),
    (40, 60, 230),
    (200, 60, 200),
    (30, 210, 230),
    (230, 220, 60),
)


def colour(i: int) -> tuple[int, int, int]:
    """The overlay colour of prompt ``i``."""
    return PALETTE[i % len(PALETTE)]


def draw_overlay(
    image: np.ndarray,
    masks: Sequence[np.ndarray | None],
    rois: Sequence[tuple[int, int, int, int] | None] = (),
    lost: Sequence[bool] = (),
    text: Sequence[str] = (),
    alpha: float = 0.45,
    boxes: Sequence[Sequence[float] | None] = (),
    ids: Sequence[int] = (),
) -> np.ndarray:
    """A copy of ``image`` (BGR) with each prompt's mask tinted, its box and ROI drawn and text lines on top.

    ``masks[i]`` / ``rois[i]`` / ``boxes[i]`` belong to prompt ``i`` (output pixels), drawn in the colour of
    ``ids[i]`` (default ``i``): the prompt box (the object, 2 px) inside its ROI (what the sensor crops, 1 px);
    a lost prompt's ROI is drawn red.
    """
    out = image.copy()
    hue = [colour(ids[i] if i < len(ids) else i) for i in range(max(len(masks), len(rois), len(boxes)))]
    for i, mask in enumerate(masks):
        if mask is None or not mask.any():
            continue
        tint = np.array(hue[i], dtype=np.float32)
        sel = mask.astype(bool)
        out[sel] = (out[sel].astype(np.float32) * (1 - alpha) + tint * alpha).astype(np.uint8)
        contours, _ = cv2.findContours(sel.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, hue[i], 1, cv2.LINE_AA)
    for i, box in enumerate(boxes):
        if box is None:
            continue
        x0, y0 = round(box[0]), round(box[1])
        x1, y1 = round(box[0] + box[2]) - 1, round(box[1] + box[3]) - 1
        if x1 >= x0 and y1 >= y0:
            cv2.rectangle(out, (x0, y0), (x1, y1), hue[i], 2)
    for i, roi in enumerate(rois):
        if roi is None or roi[2] < 1 or roi[3] < 1:
            continue
        x, y, w, h = roi
        is_lost = i < len(lost) and lost[i]
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), (0, 0, 255) if is_lost else hue[i], 1)
        if is_lost:
            cv2.putText(out, "lost", (x + 2, y + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 255), 1, cv2.LINE_AA)
    scale = max(0.4, min(1.0, image.shape[1] / 1000))
    for k, line in enumerate(text):
        org = (8, int(20 * scale + 8 + k * 24 * scale))
        cv2.putText(out, line, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, line, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def status_text(fps: float | None, dnn_ms: float | None, dsp_ms: float | None = None) -> list[str]:
    """The status lines: frames per second and the sensor's DNN (and DSP) time."""
    parts = [f"{fps:.1f} fps" if fps else "-- fps"]
    if dnn_ms is not None:
        parts.append(f"DNN {dnn_ms:.2f} ms")
    if dsp_ms is not None:
        parts.append(f"DSP {dsp_ms:.2f} ms")
    return ["  ".join(parts)]
