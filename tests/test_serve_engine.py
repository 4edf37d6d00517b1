"""The serve engine without HTTP: commands between frames, their errors, masks-only, bounded hand-over to the web."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

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


def test_the_state_shows_each_command_before_its_answer():
    """Between frames: a command's effect (added, removed, tracking) is in the published state by the time its
    future answers, each prompt's own fields included, not from the next frame on."""
    sensor = EndingSensor(frames=8)
    engine = ServeEngine(sensor)
    engine.submit("add", (10, 10, 50, 50))
    engine.submit("add", (300, 200, 80, 60))
    seen = {}

    def capture():  # type: ignore[no-untyped-def]
        if sensor.i == 4:  # while frame 4 is taken: the commands are applied after it, before frame 5
            seen["futures"] = [
                engine.submit("remove", 0),
                engine.submit("track", True),
                engine.submit("add", (100, 300, 40, 40)),
            ]
            seen["before"] = engine.snapshot
        if sensor.i == 5:  # the commands are applied, frame 5 not yet taken
            seen["after"] = engine.snapshot
            seen["done"] = [f.done() for f in seen["futures"]]
        return EndingSensor.capture(sensor)

    sensor.capture = capture  # type: ignore[method-assign]
    engine.run()
    before, after = seen["before"], seen["after"]
    assert seen["done"] == [True, True, True]
    assert [p.id for p in before.prompts] == [0, 1] and not before.track
    assert after.seq == before.seq + 1 and after.frame == 4  # frame 4's state, changed by the commands
    assert [p.id for p in after.prompts] == [1, 2] and after.track
    assert all(p.track for p in after.prompts)  # each prompt's own field too, not only the top-level flag
    new = after.prompt(2)
    assert new is not None and new.mask is None and new.mask_frame is None and new.roi_output[2] > 0
    assert after.prompt(1).mask is not None  # the standing prompt keeps its latest mask


def test_serve_prompts_with_the_models_crop_convention(monkeypatch):
    """``serve`` takes the ROI convention the model was trained with, as ``run`` does (``crop_convention``): a box
    drawn in the page becomes the ROI that convention gives, not always the shifted square."""
    from types import SimpleNamespace

    from imx500_sam.prompt import AS_DRAWN
    from imx500_sam.runtime import runner
    from imx500_sam.serve import server

    sensor = EndingSensor(frames=4)
    sensor.convert_out = SimpleNamespace(prompt_crop=AS_DRAWN)  # type: ignore[attr-defined]  # report.json's
    monkeypatch.setattr(runner, "open_sensor", lambda *a, **k: sensor)
    engines = []

    class Recorded(ServeEngine):
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            engines.append(self)
            self.submit("add", (100, 100, 200, 50))

    monkeypatch.setattr(server, "ServeEngine", Recorded)
    options = server.ServeOptions(emulate=Path("convert-out"), source="photo.png", port=0)
    assert server.serve(options) == 4
    (engine,) = engines
    box = (100.0, 100.0, 200.0, 50.0)
    assert engine.session.convention == AS_DRAWN
    assert engine.snapshot.prompts[0].roi == sensor.geometry.prompt_roi(box, convention=AS_DRAWN).xywh
    assert engine.snapshot.prompts[0].roi != sensor.geometry.prompt_roi(box).xywh  # the shifted square differs


def test_power_monitor_shows_the_newest_pmic_sample(tmp_path, monkeypatch):
    """serve's power reading is the device bench's sampler (one sample kept): watts on a Pi 5, a note elsewhere."""
    from imx500_sam.bench.power import parse_pmic_adc
    from imx500_sam.serve.server import PowerMonitor
    from tests.support.pmic import PI5_PMIC_READ_ADC, fake_vcgencmd, path_with

    fake_vcgencmd(tmp_path / "pi5", PI5_PMIC_READ_ADC)
    pi5 = path_with(tmp_path / "pi5")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no vcgencmd: not a Pi
    off = PowerMonitor(period_s=0.05)
    assert off().watts is None and "not readable" in off().note
    off.stop()
    monkeypatch.setenv("PATH", pi5)
    monitor = PowerMonitor(period_s=0.05)
    try:
        wait_until = time.monotonic() + 10
        while len(monitor._sampler.samples) < 1 and time.monotonic() < wait_until:  # type: ignore[union-attr]
            time.sleep(0.05)
        time.sleep(0.3)  # several samples taken: still one kept
        state = monitor()
        assert state.watts == pytest.approx(parse_pmic_adc(PI5_PMIC_READ_ADC).watts, abs=1e-3)
        assert "every 0.05 s" in state.note and len(monitor._sampler.samples) == 1  # type: ignore[union-attr]
    finally:
        monitor.stop()
