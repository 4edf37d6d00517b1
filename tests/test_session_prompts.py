"""Prompts that come and go in one ``PromptSession`` (the web front end's use): ids, turns, late frames."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from imx500_sam.errors import BadInputError
from imx500_sam.prompt import ROI
from imx500_sam.runtime.geometry import SensorGeometry
from imx500_sam.runtime.sensor import Sensor, SensorFrame
from imx500_sam.runtime.session import PromptSession

SIZE = (640, 480)


class LateSensor(Sensor):
    """A sensor whose ROI takes effect ``delay`` frames later (as the pipelined emulator / the IMX500): each frame
    carries the tag of the ROI it was computed on, and a mask that fills that ROI."""

    input_size = (96, 96)
    network_name = "late"

    def __init__(self, delay: int = 1) -> None:
        self._geometry = SensorGeometry.for_output(SIZE)
        self.queue: list[tuple[ROI, Any]] = []
        self.delay = delay
        self.i = 0
        self.current: tuple[ROI, Any] | None = None

    @property
    def geometry(self) -> SensorGeometry:
        return self._geometry

    def set_roi(self, roi: ROI, tag: Any = None) -> None:
        self.current = (roi, tag)

    def capture(self) -> SensorFrame | None:
        assert self.current is not None
        self.queue.append(self.current)
        roi, tag = self.queue.pop(0) if len(self.queue) > self.delay else self.queue[0]
        image = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
        frame = SensorFrame(self.i, image, {}, self._geometry, roi, [np.full((1, 96, 96), 5.0, np.float32)], tag=tag)
        self.i += 1
        return frame


def test_prompts_added_and_removed_keep_their_ids_and_turns():
    session = PromptSession(LateSensor(delay=0), [(10, 10, 50, 50), (300, 200, 80, 60)])
    assert [p.id for p in session.prompts] == [0, 1]
    assert [session.step().prompt for _ in range(4)] == [0, 1, 0, 1]
    new = session.add_prompt((100, 300, 40, 40))
    assert new.id == 2 and new.track is False
    assert [session.step().prompt for _ in range(3)] == [2, 0, 1]  # the new prompt's turn comes first
    session.remove_prompt(1)
    assert [p.id for p in session.prompts] == [0, 2]
    assert [session.step().prompt for _ in range(4)] == [2, 0, 2, 0]
    with pytest.raises(KeyError):
        session.remove_prompt(1)
    with pytest.raises(BadInputError, match="outside the 640x480 frame"):
        session.add_prompt((900, 900, 10, 10))
    assert session.add_prompt((0, 0, 20, 20)).id == 3  # ids are never reused
    session.set_track(True)
    assert all(p.track for p in session.prompts) and session.add_prompt((5, 5, 9, 9)).track


def test_a_late_frame_of_a_removed_prompt_is_skipped():
    """The sensor delivers a frame computed on prompt 1's ROI after prompt 1 was removed: no mask is pinned on
    another prompt; the next frame (prompt 0's ROI) is the result."""
    sensor = LateSensor(delay=1)
    session = PromptSession(sensor, [(10, 10, 50, 50), (300, 200, 80, 60)])
    first = session.step()  # ROI of 0 set; the frame still carries 0's ROI (the first one)
    assert first.prompt == 0
    second = session.step()  # ROI of 1 set; the frame was computed on 0's
    assert second.prompt == 0 and second.roi == session.prompt(0).roi
    session.remove_prompt(1)  # 1's ROI is in flight
    result = session.step()
    assert result.prompt == 0 and result.roi == session.prompt(0).roi
    assert result.frame == 3  # frame 2 (prompt 1's ROI) was skipped
    roi_out = result.roi_output
    assert result.mask[roi_out[1] + 1, roi_out[0] + 1] and result.mask_area == roi_out[2] * roi_out[3]


def test_a_session_without_prompts_refuses_to_step():
    session = PromptSession(LateSensor())
    assert session.prompts == []
    with pytest.raises(ValueError, match="no prompt"):
        session.step()


class BusySensor(LateSensor):
    """Only every third frame carries a tensor (the network busy for two frames after each: DPS = FPS / 3)."""

    def capture(self) -> SensorFrame | None:
        frame = super().capture()
        if frame is not None and frame.index % 3:
            frame.outputs = None
        return frame


def test_frames_without_a_tensor_do_not_use_up_a_prompts_turn():
    """Three prompts on a sensor with a tensor every third frame: each prompt still gets its masks in turn."""
    session = PromptSession(BusySensor(delay=0), [(10, 10, 50, 50), (300, 200, 80, 60), (100, 300, 40, 40)])
    results = [session.step() for _ in range(18)]
    with_tensor = [r.prompt for r in results if r.sensor_frame.outputs is not None]
    assert with_tensor == [0, 1, 2, 0, 1, 2]
