"""``imx500-sam bench device``: how fast the network runs on the sensor, and what it costs in power.

On any ``Sensor`` (the AI Camera through picamera2, or the emulated IMX500: the same code path), per frame:
DNN and DSP ms (``CnnKpiInfo``, picamera2's ``get_kpi_info``), whether the frame carries an output tensor,
and the sensor-to-mask latency (``time.monotonic_ns()`` when the mask is ready on the CPU minus the frame's
``SensorTimestamp``: both CLOCK_MONOTONIC, V4L2's buffer clock; the timestamp marks the start of the
frame's exposure). Per phase: RPS (sensor frames / s, the ones dropped while an ROI settles included),
FPS (frames the bench received / s) and DPS (frames with an output tensor / s).

Phases: ``fixed`` (one prompt, the ROI stays put) and ``cycle`` (several prompts in turn: the ROI changes
every frame, as the runtime does with several objects). ``--sweep`` steps the frame rate and finds the
highest rate at which every frame carries a mask. ``--power`` samples the Pi 5 PMIC over an idle baseline
(the camera streaming without a network) and the run. What was measured (``device_record``) is written as
it goes (``bench_device.json`` after every phase and every ``CHECKPOINT_FRAMES`` frames) and in a
``finally``, so an error or an interrupt keeps it, with ``status`` saying how the run ended; pictures and
summary: ``device_report``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imx500_sam.bench.device_record import (
    JSON_NAME,
    DeviceBenchRecord,
    FrameRow,
    PhaseSummary,
    SweepSummary,
    phase_label,
)
from imx500_sam.bench.device_report import finish
from imx500_sam.bench.power import PowerSampler
from imx500_sam.bench.record import recorded_run
from imx500_sam.errors import BadInputError
from imx500_sam.outputs import clear_dir, refuse_existing
from imx500_sam.prompt import SHIFTED
from imx500_sam.runtime.geometry import Box
from imx500_sam.runtime.sensor import Sensor

ROI_MODES = ("fixed", "cycle", "both")
SWEEP_RATES = (5.0, 7.5, 10.0, 12.5, 15.0, 20.0, 25.0, 30.0)  # Sony's library sweeps FrameRate 5..30


@dataclass
class DeviceBenchOptions:
    """What ``imx500-sam bench device`` takes: the AI Camera (``rpk``) or the emulator (``emulate`` + ``source``)."""

    out: Path
    rpk: Path | None = None
    emulate: Path | None = None
    source: str | None = None
    frames: int = 100
    frame_rate: float | None = None
    sweep: bool = False
    sweep_rates: Sequence[float] = SWEEP_RATES
    warmup: int = 5
    roi: str = "both"
    boxes: list[Box] = field(default_factory=list)
    power: bool = False
    power_rate_hz: float = 4.0
    idle_s: float = 10.0
    output_size: tuple[int, int] = (640, 480)
    overwrite: bool = False  # empty an existing ``out`` (one this command wrote) first


def default_boxes(size: tuple[int, int]) -> tuple[list[Box], list[Box]]:
    """Prompt boxes when none are given: one centred box (fixed) and four boxes of different sizes (cycle)."""
    w, h = size
    fixed = [(w * 0.35, h * 0.3, w * 0.3, h * 0.4)]
    cycle = [
        (w * 0.1, h * 0.1, w * 0.3, h * 0.35),
        (w * 0.55, h * 0.15, w * 0.2, h * 0.25),
        (w * 0.3, h * 0.45, w * 0.45, h * 0.45),
        (w * 0.05, h * 0.6, w * 0.15, h * 0.3),
    ]
    return fixed, cycle


def check_network(sensor: Sensor) -> None:
    """A PicoSAM3 network takes a square crop (the ROI is square)."""
    w, h = sensor.input_size
    if w != h:
        raise BadInputError(
            f"network input {w}x{h}: a prompt network takes a square crop (the inference ROI is square).",
            hint="Benchmark a PicoSAM3 .rpk (imx500-sam convert + package).",
        )


def check_outputs(sensor: Sensor, outputs: list[np.ndarray]) -> None:
    """The first output is one mask at the input's resolution (a segmentation network's logits)."""
    first = np.asarray(outputs[0]).squeeze()
    if first.ndim != 2:
        raise BadInputError(
            f"{sensor.network_name}: output tensor {tuple(np.shape(outputs[0]))} is not one mask (H x W).",
            hint="Benchmark a PicoSAM3 .rpk: one mask-logit output.",
        )


def measure_phase(
    record: DeviceBenchRecord,
    sensor: Sensor,
    boxes: list[Box],
    mode: str,
    frames: int,
    rate: float | None,
    warmup: int,
    sweep: bool = False,
    convention: str = SHIFTED,
) -> PhaseSummary:
    """``frames`` frames of a prompt session on ``boxes`` (one ROI per frame, in turn); records each frame.

    ``convention``: how a box becomes its ROI (``PromptSession``), the model's as in ``run``."""
    from imx500_sam.runtime.session import PromptSession

    session = PromptSession(sensor, boxes, convention=convention)
    for _ in range(warmup):  # the frame rate / ROI settle, the network warms up
        if session.step() is None:
            raise BadInputError("the frame source ended during warm-up.", hint="Give a longer source or fewer frames.")
    name = phase_label(mode, rate, sweep)
    rows: list[FrameRow] = []
    req0, t0 = sensor.requests, time.perf_counter()
    checked = False
    try:
        for _ in range(frames):
            result = session.step()
            ready = time.monotonic_ns()
            if result is None:
                break
            if not checked and result.sensor_frame.outputs:
                check_outputs(sensor, result.sensor_frame.outputs)
                checked = True
            row = FrameRow.from_result(name, rate, result, ready, sensor.requests - req0)
            rows.append(row)
            record.add_frame(row)
    finally:
        summary = PhaseSummary.of(name, mode, rate, rows, time.perf_counter() - t0, sensor.requests - req0)
        record.phases.append(summary)
        record.write_json()
    return summary


SensorOpener = Callable[[DeviceBenchOptions, float | None], Sensor]


def open_sensor(options: DeviceBenchOptions, frame_rate: float | None) -> Sensor:
    """The AI Camera (``rpk``) or the emulated IMX500 (``emulate`` + ``source``), at ``frame_rate``."""
    if options.rpk is not None:
        from imx500_sam.runtime.picamera import IMX500Sensor

        return IMX500Sensor(options.rpk, output_size=options.output_size, frame_rate=frame_rate)
    from imx500_sam.runtime.emulator import EmulatedIMX500
    from imx500_sam.runtime.sources import FrameSource

    assert options.emulate is not None and options.source is not None
    return EmulatedIMX500(options.emulate, FrameSource(options.source, repeat=True), frame_rate=frame_rate)


def idle_stream(options: DeviceBenchOptions, rate: float) -> int:
    """The idle baseline: the camera streaming with no network for ``idle_s``; returns the frames seen."""
    if options.rpk is not None:
        from imx500_sam.runtime.picamera import stream_without_network

        return stream_without_network(options.idle_s, rate, options.output_size)
    from imx500_sam.runtime.sources import FrameSource

    source = FrameSource(options.source or "", repeat=True)  # the emulated camera: frames, no network
    try:
        frames, period, end = 0, 1.0 / rate, time.monotonic() + options.idle_s
        for _ in source:
            frames += 1
            if time.monotonic() >= end:
                break
            time.sleep(period)
        return frames
    finally:
        source.close()


def validate(options: DeviceBenchOptions) -> None:
    """One-line errors for bad options, before anything runs."""
    if (options.rpk is None) == (options.emulate is None):
        raise BadInputError("give exactly one of --rpk network.rpk (AI Camera) or --emulate CONVERT_DIR (emulator).")
    if options.rpk is not None and not Path(options.rpk).is_file():
        raise BadInputError(f"{options.rpk}: no such .rpk file.", hint="Make one with imx500-sam package on the Pi.")
    if options.emulate is not None and options.source is None:
        raise BadInputError("--emulate needs --source PATH (image, folder or video) for the emulated camera.")
    if options.rpk is not None and options.source is not None:
        raise BadInputError("--source is for the emulator; with --rpk the AI Camera delivers the frames.")
    if options.frames < 1 or options.warmup < 0:
        raise BadInputError("--frames must be at least 1 and --warmup at least 0.")
    if options.roi not in ROI_MODES:
        raise BadInputError(f"--roi {options.roi!r}: give one of {', '.join(ROI_MODES)}.")
    if options.frame_rate is not None and options.sweep:
        raise BadInputError("give --frame-rate R or --sweep, not both.")
    rates = (
        [options.frame_rate] if options.frame_rate is not None else list(options.sweep_rates if options.sweep else [])
    )
    if any(r is None or not 0 < r <= 240 for r in rates):
        raise BadInputError(f"frame rates {rates}: give rates above 0 and at most 240 frames per second.")
    if options.idle_s <= 0:
        raise BadInputError("--idle-seconds must be positive.")
    refuse_existing(Path(options.out), option="--out DIR", overwrite=options.overwrite)


def run_device_bench(
    options: DeviceBenchOptions,
    opener: SensorOpener = open_sensor,
    idle: Callable[[DeviceBenchOptions, float], int] = idle_stream,
    sampler: PowerSampler | None = None,
    command: str | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> DeviceBenchRecord:
    """Run the device bench; results land in ``options.out`` whatever happens (``status`` says how it ended)."""
    validate(options)
    clear_dir(Path(options.out), JSON_NAME)
    record = DeviceBenchRecord.start(options.out, options, command)
    record.write_json()
    sensor: Sensor | None = None

    def _finish(status: str) -> None:
        if sensor is not None:
            try:
                sensor.close()
            except Exception as exc:  # closing must not hide the run's own outcome
                record.close_error = str(exc)
        if sampler is not None:
            sampler.stop()
            record.power = {**sampler.summary(), "samples": [s.__dict__ for s in sampler.samples]}
        finish(record, status)

    with recorded_run(_finish):
        if options.power:
            sampler = sampler or PowerSampler(rate_hz=options.power_rate_hz)
            sampler.probe()  # no PMIC (a Pi 4, not a Pi): one line now, before anything else runs
            sampler.start()
            rate = _baseline_rate(options)
            record.idle_frame_rate = rate
            log(f"idle baseline: camera streaming without a network at {rate:g} fps for {options.idle_s:g} s")
            sampler.phase = "idle"
            record.idle_frames = idle(options, rate)
            sampler.phase = "loading"
        rates: list[float | None] = list(options.sweep_rates) if options.sweep else [options.frame_rate]
        log("loading the network" + (" (a first upload to the camera can take minutes)" if options.rpk else ""))
        sensor = opener(options, rates[0])
        check_network(sensor)
        record.network_name = sensor.network_name
        record.input_size = list(sensor.input_size)
        record.prompt_crop = convention = _crop_convention(options, sensor)
        size = sensor.peek_geometry().output_size
        fixed, cycle = default_boxes(size)
        if options.boxes:
            fixed = [options.boxes[0]]
            cycle = list(options.boxes) if len(options.boxes) > 1 else cycle
        record.prompts = {"fixed": [list(b) for b in fixed], "cycle": [list(b) for b in cycle]}
        if sampler is not None:
            sampler.phase = "run"
        if options.sweep:
            boxes = cycle if options.roi != "fixed" else fixed
            mode = "cycle" if options.roi != "fixed" else "fixed"
            for rate in options.sweep_rates:
                sensor.set_frame_rate(rate)
                log(f"sweep: {rate:g} fps")
                measure_phase(
                    record, sensor, boxes, mode, options.frames, rate, options.warmup, sweep=True, convention=convention
                )
            record.sweep = SweepSummary.of(record.phases)
        else:
            modes = ("fixed", "cycle") if options.roi == "both" else (options.roi,)
            for mode in modes:
                log(f"{mode} ROI: {options.frames} frames")
                boxes = fixed if mode == "fixed" else cycle
                measure_phase(
                    record, sensor, boxes, mode, options.frames, rates[0], options.warmup, convention=convention
                )
    return record


def _baseline_rate(options: DeviceBenchOptions) -> float:
    """The idle stream's frame rate: the run's (--frame-rate, the sweep's first, else the network's own)."""
    if options.frame_rate is not None:
        return float(options.frame_rate)
    if options.sweep:
        return float(options.sweep_rates[0])
    if options.rpk is not None:  # picamera2 runs a network at its intrinsics' inference_rate (default 30)
        from firmware_packaging.rpk import read_rpk

        intrinsics = read_rpk(options.rpk).intrinsics or {}
        return float(intrinsics.get("inference_rate", 30.0))
    return 30.0


def _crop_convention(options: DeviceBenchOptions, sensor: Sensor) -> str:
    """The model's training crop, found as ``run`` finds it (the convert output's report.json, or the one beside
    the .rpk; else shifted)."""
    from imx500_sam.runtime.runner import RunOptions, crop_convention

    return crop_convention(RunOptions(rpk=options.rpk, emulate=options.emulate), sensor)
