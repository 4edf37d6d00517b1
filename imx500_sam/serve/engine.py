"""The camera loop behind ``imx500-sam serve``: one ``PromptSession``, commands applied between frames.

The loop runs in one thread (the main thread: Ctrl-C and SIGTERM reach it, as in ``run``). Web requests never
touch the session: they submit a ``Command`` (bounded queue) and wait for its future; the loop applies the
commands before each frame, so prompts are added, removed and re-configured between frames. After each frame
the loop publishes an immutable ``Snapshot`` (the frame, each prompt's latest mask, the rates and KPIs) and, when
somebody watches a stream, its JPEG: a new snapshot replaces the old one, nothing queues up.
"""

from __future__ import annotations

import dataclasses
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from imx500_sam.errors import BadInputError
from imx500_sam.prompt import SHIFTED
from imx500_sam.runtime.geometry import SensorGeometry
from imx500_sam.runtime.overlay import colour, draw_overlay, status_text
from imx500_sam.runtime.sensor import Sensor, SensorFrame, sensor_to_mask_ms
from imx500_sam.runtime.session import MaskResult, PromptSession

MAX_PROMPTS = 8
COMMAND_QUEUE = 64  # commands waiting for the next frame; more are refused (503)
JPEG_QUALITY = 80
VIEWS = ("overlay", "masks")  # the two streams: the frame with masks, the masks on black
MASKS_ALPHA = 0.85  # the masks on black: nearly solid colours
FPS_WINDOW = 31  # frames per second over the last 30 frame intervals


class RequestError(Exception):
    """A request the loop refuses: ``status`` (4xx/5xx) and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class PromptView:
    """One prompt as the web side sees it: box (output px), ROI (sensor px), its latest mask and timing."""

    id: int
    box: tuple[float, float, float, float]
    roi: tuple[int, int, int, int]
    roi_output: tuple[int, int, int, int]
    track: bool
    lost: bool
    mask: np.ndarray | None = field(repr=False)  # bool, output size; None before its first frame
    mask_area: int
    bbox: tuple[int, int, int, int] | None
    mask_frame: int | None  # the frame its latest mask came from
    first_mask_ms: float | None  # from the request that added it to its first mask

    def to_json(self) -> dict[str, Any]:
        """The prompt in ``GET /api/state``."""
        b, g, r = colour(self.id)
        return {
            "id": self.id,
            "box": [round(v, 1) for v in self.box],
            "roi": list(self.roi),
            "roi_output": list(self.roi_output),
            "track": self.track,
            "lost": self.lost,
            "mask_area": self.mask_area,
            "bbox": list(self.bbox) if self.bbox else None,
            "mask_frame": self.mask_frame,
            "first_mask_ms": None if self.first_mask_ms is None else round(self.first_mask_ms, 1),
            "colour": f"#{r:02x}{g:02x}{b:02x}",
        }


@dataclass(frozen=True)
class Snapshot:
    """What the loop published after one frame (never changed afterwards)."""

    seq: int
    frame: int
    output_size: tuple[int, int]
    image: np.ndarray | None = field(repr=False)  # None in masks-only mode: no frame is kept
    prompts: tuple[PromptView, ...]
    fps: float | None
    dnn_ms: float | None
    dsp_ms: float | None
    latency_ms: float | None
    roi: tuple[int, int, int, int] | None  # the ROI of the latest mask (sensor px)
    track: bool
    jpegs: dict[str, bytes] = field(repr=False)  # the streams watched at the time: view -> JPEG

    def prompt(self, prompt_id: int) -> PromptView | None:
        """The prompt with this id, or None."""
        return next((p for p in self.prompts if p.id == prompt_id), None)


@dataclass(frozen=True)
class LatestMask:
    """A prompt's latest mask (no frame kept with it): the frame index, the mask, its area and box."""

    frame: int
    mask: np.ndarray = field(repr=False)
    mask_area: int
    bbox: tuple[int, int, int, int] | None


@dataclass
class Command:
    """A request for the loop: ``kind`` with ``args``; its result (or error) comes back on ``future``."""

    kind: str
    args: tuple[Any, ...]
    future: Future[Any]
    submitted: float = field(default_factory=time.perf_counter)


def parse_box(value: Any, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """A JSON box ``[x, y, w, h]`` (stream pixels) -> floats; RequestError 400 when malformed or outside the frame."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise RequestError(400, 'box: give "box": [x, y, w, h] in stream pixels (four numbers).')
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise RequestError(400, f"box {value}: x, y, w, h must be numbers.")
    x, y, w, h = (float(v) for v in value)
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        raise RequestError(400, f"box {value}: width and height must be positive.")
    if x + w <= 0 or y + h <= 0 or x >= size[0] or y >= size[1]:
        raise RequestError(400, f"box {value} is outside the {size[0]}x{size[1]} frame.")
    return (x, y, w, h)


class ServeEngine:
    """Runs a ``PromptSession`` on ``sensor`` frame after frame; the web side talks to it through ``submit``.

    ``masks_only``: frames are never kept, drawn or encoded (only the masks on black are); the session's motion
    cue, which reads the image, is off. ``convention``: how a box becomes its ROI (``PromptSession``): the model's
    training crop, as ``run`` takes it (``runner.crop_convention``).
    """

    def __init__(
        self,
        sensor: Sensor,
        masks_only: bool = False,
        max_prompts: int = MAX_PROMPTS,
        track: bool = False,
        convention: str = SHIFTED,
    ) -> None:
        if max_prompts < 1:
            raise BadInputError(f"--max-prompts {max_prompts}: give at least 1.")
        self.sensor = sensor
        self.masks_only = masks_only
        self.max_prompts = int(max_prompts)
        self.session = PromptSession(sensor, (), track=track, motion=not masks_only, convention=convention)
        self.network_name = sensor.network_name
        self._geometry: SensorGeometry = sensor.peek_geometry()  # then the last frame's
        self.output_size: tuple[int, int] = tuple(self._geometry.output_size)  # type: ignore[assignment]
        self.snapshot: Snapshot | None = None
        self.watchers = dict.fromkeys(VIEWS, 0)  # stream clients per view (changed by the web thread)
        self.listeners: list[Callable[[Snapshot], None]] = []  # called in the loop after each frame
        self._commands: queue.Queue[Command] = queue.Queue(maxsize=COMMAND_QUEUE)
        self._submitted: dict[int, float] = {}  # prompt id -> perf_counter of the request that added it
        self._first_ms: dict[int, float] = {}
        self._latest: dict[int, LatestMask] = {}  # id -> its latest mask computed on a tensor
        self._stop = threading.Event()
        self._closed = False
        self._seq = 0
        self._times: deque[float] = deque(maxlen=FPS_WINDOW)
        self._kpi: tuple[float | None, float | None] = (None, None)
        self._latency: float | None = None
        self._roi: tuple[int, int, int, int] | None = None

    # ------------------------------------------------------------------ requests (any thread)

    def submit(self, kind: str, *args: Any) -> Future[Any]:
        """Queue a command for the loop: ``add`` (box), ``remove`` (id), ``clear``, ``track`` (bool)."""
        future: Future[Any] = Future()
        if self._closed:
            future.set_exception(RequestError(503, "the server is stopping."))
            return future
        try:
            self._commands.put_nowait(Command(kind, args, future))
        except queue.Full:
            future.set_exception(RequestError(503, "too many requests waiting for the camera loop; try again."))
        return future

    def stop(self) -> None:
        """Ask the loop to end after the current frame."""
        self._stop.set()

    # ------------------------------------------------------------------ the loop (one thread)

    def run(self) -> int:
        """Frame after frame until ``stop()`` or the source ends; returns the frames handled."""
        try:
            while not self._stop.is_set():
                self._apply_commands()
                if self.session.prompts:
                    result = self.session.step()
                    if result is None:
                        break
                    frame = result.sensor_frame
                else:
                    result = None
                    frame = self.sensor.capture()
                    if frame is None:
                        break
                self._publish(frame, result, time.monotonic_ns())
        finally:
            self._closed = True
            self._fail_pending()
        return self._seq

    def _take_commands(self) -> Iterator[Command]:
        """The queued commands, each marked running (one cancelled meanwhile is dropped)."""
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            if command.future.set_running_or_notify_cancel():
                yield command

    def _apply_commands(self) -> None:
        for command in self._take_commands():
            try:
                outcome = self._apply(command)
            except RequestError as exc:
                command.future.set_exception(exc)
            except BadInputError as exc:
                command.future.set_exception(RequestError(400, str(exc)))
            else:
                if self.snapshot is not None:  # the state shows the change before the answer, not a frame later
                    self.snapshot = dataclasses.replace(self.snapshot, prompts=self._views(), track=self.session.track)
                command.future.set_result(outcome)

    def _apply(self, command: Command) -> Any:
        session = self.session
        if command.kind == "add":
            (box,) = command.args
            if len(session.prompts) >= self.max_prompts:
                raise RequestError(409, f"too many prompts: at most {self.max_prompts}; remove one first.")
            state = session.add_prompt(box)
            self._submitted[state.id] = command.submitted
            return state.id
        if command.kind == "remove":
            (prompt_id,) = command.args
            try:
                session.remove_prompt(prompt_id)
            except KeyError:
                raise RequestError(404, f"no prompt {prompt_id}.") from None
            self._forget(prompt_id)
            return prompt_id
        if command.kind == "clear":
            ids = [p.id for p in session.prompts]
            for prompt_id in ids:
                session.remove_prompt(prompt_id)
                self._forget(prompt_id)
            return ids
        if command.kind == "track":
            (on,) = command.args
            session.set_track(bool(on))
            return bool(on)
        raise RequestError(400, f"unknown command {command.kind!r}.")

    def _forget(self, prompt_id: int) -> None:
        for d in (self._submitted, self._first_ms, self._latest):
            d.pop(prompt_id, None)

    def _fail_pending(self) -> None:
        for command in self._take_commands():
            command.future.set_exception(RequestError(503, "the server is stopping."))

    def _views(self) -> tuple[PromptView, ...]:
        """The session's prompts as they are now, each with its latest mask (ROIs mapped by the last frame's
        geometry)."""
        views = []
        for p in self.session.prompts:
            latest = self._latest.get(p.id)
            views.append(
                PromptView(
                    id=p.id,
                    box=tuple(float(v) for v in p.box),  # type: ignore[arg-type]
                    roi=p.roi.xywh,
                    roi_output=self._geometry.roi_output_rect(p.roi),
                    track=p.track,
                    lost=p.lost,
                    mask=latest.mask if latest else None,
                    mask_area=latest.mask_area if latest else 0,
                    bbox=latest.bbox if latest else None,
                    mask_frame=latest.frame if latest else None,
                    first_mask_ms=self._first_ms.get(p.id),
                )
            )
        return tuple(views)

    def _publish(self, frame: SensorFrame, result: MaskResult | None, ready_ns: int) -> None:
        now = time.perf_counter()
        self._times.append(now)
        span = self._times[-1] - self._times[0]
        fps = (len(self._times) - 1) / span if span > 0 else None
        if frame.dnn_ms is not None:
            self._kpi = (frame.dnn_ms, frame.dsp_ms)
        if result is not None and frame.outputs is not None:  # a frame without a tensor keeps the last mask
            self._roi = result.roi.xywh
            latency = sensor_to_mask_ms(frame, ready_ns)
            if latency is not None:
                self._latency = latency
            if result.prompt not in self._first_ms and result.prompt in self._submitted:
                self._first_ms[result.prompt] = (now - self._submitted[result.prompt]) * 1e3
            self._latest[result.prompt] = LatestMask(result.frame, result.mask, result.mask_area, result.bbox)
        self._geometry = frame.geometry
        self._seq += 1
        snap = Snapshot(
            seq=self._seq,
            frame=frame.index,
            output_size=frame.geometry.output_size,
            image=None if self.masks_only else frame.image,
            prompts=self._views(),
            fps=fps,
            dnn_ms=self._kpi[0],
            dsp_ms=self._kpi[1],
            latency_ms=self._latency,
            roi=self._roi,
            track=self.session.track,
            jpegs={},
        )
        for view in VIEWS:
            if self.watchers[view] > 0 and (view == "masks" or not self.masks_only):
                snap.jpegs[view] = encode_jpeg(render(snap, view))
        self.snapshot = snap
        for listener in self.listeners:
            listener(snap)


def render(snap: Snapshot, view: str, text: bool = False) -> np.ndarray:
    """``overlay``: the frame with each prompt's mask and ROI; ``masks``: the same on black (no frame pixel).

    ``text``: the rate and KPI line on top (the downloaded frame; the page shows them in its panel).
    """
    w, h = snap.output_size
    if view == "overlay":
        if snap.image is None:
            raise RequestError(403, "masks-only mode: no frame is encoded or served.")
        base = snap.image
        alpha = 0.45
    else:
        base = np.zeros((h, w, 3), np.uint8)
        alpha = MASKS_ALPHA
    prompts: Sequence[PromptView] = snap.prompts
    return draw_overlay(
        base,
        [p.mask for p in prompts],
        [p.roi_output for p in prompts],
        [p.lost for p in prompts],
        status_text(snap.fps, snap.dnn_ms, snap.dsp_ms) if text else (),
        alpha=alpha,
        ids=[p.id for p in prompts],
    )


def encode_jpeg(image: np.ndarray) -> bytes:
    """JPEG bytes of a BGR image."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return buf.tobytes()


def encode_mask_png(mask: np.ndarray) -> bytes:
    """PNG bytes of a mask: 0 / 255, one channel, the stream's size."""
    ok, buf = cv2.imencode(".png", np.where(mask, 255, 0).astype(np.uint8))
    if not ok:
        raise RuntimeError("OpenCV could not encode a PNG")
    return buf.tobytes()
