"""The serve engine without HTTP: commands between frames, their errors, masks-only, bounded hand-over to the web."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from imx500_sam.serve.app import FrameHub
from imx500_sam.serve.engine import COMMAND_QUEUE, RequestError, ServeEngine, render
from tests.test_session_prompts import LateSensor


class EndingSensor(LateSensor):
    """``LateSensor`` (mask = the whole ROI) that ends after ``frames`` frames; its images are a grey photo."""

    def __init__(self, frames: int) -> None:
        super().__init__(delay=0)
        self.frames = frames

    def capture(self):  # type: ignore[no-untyped-def]
        if self.i >= self.frames:
            return None
        if self.current is None:
            self.current = (self._geometry.prompt_roi((0, 0, 640, 480)), None)
        frame = super().capture()
        frame.image[:] = 128
        return frame


def test_commands_are_applied_between_frames_with_their_errors():
    engine = ServeEngine(EndingSensor(frames=6), max_prompts=2)
    futures = [
        engine.submit("add", (10, 10, 50, 50)),
        engine.submit("add", (700, 10, 50, 50)),  # outside the 640x480 frame
        engine.submit("add", (300, 200, 80, 60)),
        engine.submit("add", (100, 100, 20, 20)),  # a third: too many
        engine.submit("remove", 7),
        engine.submit("track", True),
    ]
    assert engine.run() == 6
    assert futures[0].result() == 0 and futures[2].result() == 1 and futures[5].result() is True
    for future, status in ((futures[1], 400), (futures[3], 409), (futures[4], 404)):
        with pytest.raises(RequestError) as err:
            future.result()
        assert err.value.status == status
    snap = engine.snapshot
    assert [p.id for p in snap.prompts] == [0, 1] and snap.track and all(p.track for p in snap.prompts)
    assert all(p.mask is not None and p.mask_area > 0 and p.first_mask_ms is not None for p in snap.prompts)
    assert snap.image is not None and snap.fps is not None and snap.roi is not None
    late = engine.submit("add", (10, 10, 50, 50))  # the loop has ended: refused, not left waiting
    with pytest.raises(RequestError) as err:
        late.result(timeout=1)
    assert err.value.status == 503


def test_the_command_queue_is_bounded():
    engine = ServeEngine(EndingSensor(frames=1))
    futures = [engine.submit("clear") for _ in range(COMMAND_QUEUE + 5)]
    refused = [f for f in futures if f.done()]
    assert len(refused) == 5
    with pytest.raises(RequestError) as err:
        refused[0].result()
    assert err.value.status == 503


def test_masks_only_keeps_no_frame_and_draws_none():
    engine = ServeEngine(EndingSensor(frames=3), masks_only=True)
    engine.watchers["overlay"] = engine.watchers["masks"] = 1
    engine.submit("add", (100, 100, 200, 150))
    engine.run()
    snap = engine.snapshot
    assert snap.image is None and set(snap.jpegs) == {"masks"}
    with pytest.raises(RequestError) as err:
        render(snap, "overlay")
    assert err.value.status == 403
    masks = render(snap, "masks")
    x, y = snap.prompts[0].roi_output[:2]
    assert masks[y + 5, x + 5].max() > 60 and masks[5, 5].max() == 0  # the mask on black, no grey photo pixel
    assert not np.any(masks == 128)


def test_a_slow_web_loop_gets_only_the_newest_snapshot():
    """Snapshots offered while the web side is busy are replaced, not queued: one hand-over, the newest."""
    engine = ServeEngine(EndingSensor(frames=50))
    engine.submit("add", (10, 10, 50, 50))
    snaps = []
    engine.listeners.append(snaps.append)
    engine.run()
    loop = asyncio.new_event_loop()
    try:
        hub = FrameHub(loop)
        taken = []
        original = hub._take
        hub._take = lambda: (taken.append(1), original())  # type: ignore[method-assign]
        for snap in snaps:  # the event loop is not running: it is "slow"
            hub.offer(snap)
        loop.run_until_complete(asyncio.sleep(0.01))
        assert len(taken) == 1 and hub.latest is snaps[-1]
        assert loop.run_until_complete(hub.next_after(snaps[-2].seq)) is snaps[-1]
    finally:
        loop.close()
