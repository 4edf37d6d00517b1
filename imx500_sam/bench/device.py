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
(the camera streaming without a network) and the run. What was measured is written as it goes
(``bench_device.json`` after every phase and every ``CHECKPOINT`` frames) and in a ``finally``, so an error
or an interrupt keeps it, with ``status`` saying how the run ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imx500_sam.bench import plot
from imx500_sam.bench.power import PowerSampler
from imx500_sam.bench.record import ending, header, stats, write_atomic, write_json
from imx500_sam.errors import BadInputError
from imx500_sam.runtime.geometry import Box
from imx500_sam.runtime.sensor import Sensor, sensor_to_mask_ms

ROI_MODES = ("fixed", "cycle", "both")
SWEEP_RATES = (5.0, 7.5, 10.0, 12.5, 15.0, 20.0, 25.0, 30.0)  # Sony's library sweeps FrameRate 5..30
CHECKPOINT = 200  # frames between JSON rewrites (a rewrite delays the next frame by its write time)
JSON_NAME, MD_NAME = "bench_device.json", "bench_device.md"
LATENCY_PNG, RATE_PNG, POWER_PNG = "latency.png", "dps_vs_frame_rate.png", "power.png"


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


class DeviceBenchRecord:
    """The bench's results, written to ``out`` as they come (atomic JSON) and summarised at the end."""

    def __init__(self, out: Path, options: DeviceBenchOptions, command: str | None = None) -> None:
        self.out = Path(out)
        self.data: dict[str, Any] = header("bench_device", command)
        self.data.update(
            status="running",
            sensor="IMX500 (picamera2)" if options.rpk else "emulated IMX500 (host)",
            network=str(options.rpk or options.emulate),
            options={
                "frames": options.frames,
                "frame_rate": options.frame_rate,
                "sweep": list(options.sweep_rates) if options.sweep else None,
                "warmup": options.warmup,
                "roi": options.roi,
                "power": options.power,
                "power_rate_hz": options.power_rate_hz if options.power else None,
                "idle_s": options.idle_s if options.power else None,
            },
            definitions={
                "dnn_ms / dsp_ms": "CnnKpiInfo per frame (picamera2 IMX500.get_kpi_info): the sensor's own timing",
                "latency_ms": "mask ready on the CPU (time.monotonic_ns) minus the frame's SensorTimestamp "
                "(start of exposure): exposure + readout + DNN + transfer + host decode/paste",
                "rps": "sensor frames (libcamera requests) per second, frames dropped while an ROI settles included",
                "fps": "frames received by the bench per second",
                "dps": "frames carrying an output tensor per second",
                "rates": "per second of sensor time (SensorTimestamp span of the phase); received_per_wall_s beside",
            },
            phases=[],
            sweep=None,
            power=None,
            frames=[],
        )
        self._since_write = 0

    def add_frame(self, row: dict[str, Any]) -> None:
        self.data["frames"].append(row)
        self._since_write += 1
        if self._since_write >= CHECKPOINT:
            self.write_json()

    def write_json(self) -> None:
        self._since_write = 0
        write_json(self.out / JSON_NAME, self.data)

    def finish(self, status: str) -> list[str]:
        """Final JSON, plots and markdown summary; returns the files written (plots that fail are noted)."""
        self.data["status"] = status
        written = []
        try:
            written += write_plots(self.data, self.out)
        except Exception as exc:  # a plot must not lose the numbers
            self.data["plot_error"] = f"{type(exc).__name__}: {exc}"
        self.write_json()
        write_atomic(self.out / MD_NAME, summary_markdown(self.data))
        return [JSON_NAME, MD_NAME, *written]


def _frame_row(phase: str, rate: float | None, result: Any, ready_ns: int, requests: int) -> dict[str, Any]:
    f = result.sensor_frame
    has = f.outputs is not None
    latency = sensor_to_mask_ms(f, ready_ns)
    return {
        "phase": phase,
        "rate": rate,
        "frame": f.index,
        "timestamp_ns": int(f.timestamp_ns),
        "has_tensor": has,
        "dnn_ms": None if f.dnn_ms is None else round(f.dnn_ms, 3),
        "dsp_ms": None if f.dsp_ms is None else round(f.dsp_ms, 3),
        "latency_ms": None if latency is None else round(latency, 3),
        "host_ms": round(result.host_ms, 3),
        "prompt": result.prompt,
        "roi": list(result.roi.xywh),
        "requests": requests,
    }


def phase_summary(name: str, rate: float | None, rows: list[dict[str, Any]], wall_s: float, requests: int) -> dict:
    """RPS / FPS / DPS and the timing statistics of one phase."""
    n = len(rows)
    with_tensor = [r for r in rows if r["has_tensor"]]
    ts = np.array([r["timestamp_ns"] for r in rows], np.int64)
    periods = np.diff(ts) / 1e6 if ts.size > 1 else np.zeros(0)
    latencies = [r["latency_ms"] for r in with_tensor if r["latency_ms"] is not None]
    # rates over the sensor's own time (n frames span n frame periods): a backlog of queued frames at the
    # start of a phase does not inflate them; the wall time is kept beside
    span = (ts[-1] - ts[0]) / 1e9 * n / (n - 1) if n > 1 and ts[0] > 0 and ts[-1] > ts[0] else wall_s
    return {
        "phase": name,
        "frame_rate_set": rate,
        "frames": n,
        "frames_with_tensor": len(with_tensor),
        "every_frame_has_mask": n > 0 and len(with_tensor) == n,
        "requests": requests,
        "wall_s": round(wall_s, 3),
        "sensor_span_s": round(span, 3),
        "rps": round(requests / span, 3) if span > 0 else None,
        "fps": round(n / span, 3) if span > 0 else None,
        "dps": round(len(with_tensor) / span, 3) if span > 0 else None,
        "received_per_wall_s": round(n / wall_s, 3) if wall_s > 0 else None,
        "frame_period_ms": stats(list(periods)),
        "dnn_ms": stats([r["dnn_ms"] for r in with_tensor]),
        "dsp_ms": stats([r["dsp_ms"] for r in with_tensor]),
        "latency_ms": stats(latencies),
        "negative_latencies": sum(1 for v in latencies if v < 0),  # would mean the clocks differ
        "host_ms": stats([r["host_ms"] for r in rows]),
    }


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
    name: str,
    frames: int,
    rate: float | None,
    warmup: int,
) -> dict[str, Any]:
    """``frames`` frames of a prompt session on ``boxes`` (one ROI per frame, in turn); records each frame."""
    from imx500_sam.runtime.session import PromptSession

    session = PromptSession(sensor, boxes)
    for _ in range(warmup):  # the frame rate / ROI settle, the network warms up
        if session.step() is None:
            raise BadInputError("the frame source ended during warm-up.", hint="Give a longer source or fewer frames.")
    rows: list[dict[str, Any]] = []
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
            row = _frame_row(name, rate, result, ready, sensor.requests - req0)
            rows.append(row)
            record.add_frame(row)
    finally:
        summary = phase_summary(name, rate, rows, time.perf_counter() - t0, sensor.requests - req0)
        record.data["phases"].append(summary)
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
    out = Path(options.out)
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {out}: exists and is not a folder.")


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
    Path(options.out).mkdir(parents=True, exist_ok=True)
    record = DeviceBenchRecord(options.out, options, command)
    record.write_json()
    sensor: Sensor | None = None
    status = "error"
    try:
        if options.power:
            sampler = sampler or PowerSampler(rate_hz=options.power_rate_hz)
            sampler.probe()  # no PMIC (a Pi 4, not a Pi): one line now, before anything else runs
            sampler.start()
            rate = _baseline_rate(options)
            record.data["idle_frame_rate"] = rate
            log(f"idle baseline: camera streaming without a network at {rate:g} fps for {options.idle_s:g} s")
            sampler.phase = "idle"
            record.data["idle_frames"] = idle(options, rate)
            sampler.phase = "loading"
        rates: list[float | None] = list(options.sweep_rates) if options.sweep else [options.frame_rate]
        log("loading the network" + (" (a first upload to the camera can take minutes)" if options.rpk else ""))
        sensor = opener(options, rates[0])
        check_network(sensor)
        record.data["network_name"] = sensor.network_name
        record.data["input_size"] = list(sensor.input_size)
        size = _peek_size(sensor)
        fixed, cycle = default_boxes(size)
        if options.boxes:
            fixed = [options.boxes[0]]
            cycle = list(options.boxes) if len(options.boxes) > 1 else cycle
        record.data["prompts"] = {"fixed": [list(b) for b in fixed], "cycle": [list(b) for b in cycle]}
        if sampler is not None:
            sampler.phase = "run"
        if options.sweep:
            boxes = cycle if options.roi != "fixed" else fixed
            name = "cycle" if options.roi != "fixed" else "fixed"
            for rate in options.sweep_rates:
                sensor.set_frame_rate(rate)
                log(f"sweep: {rate:g} fps")
                measure_phase(record, sensor, boxes, f"{name}@{rate:g}", options.frames, rate, options.warmup)
            record.data["sweep"] = sweep_summary(record.data["phases"])
        else:
            modes = ("fixed", "cycle") if options.roi == "both" else (options.roi,)
            for mode in modes:
                log(f"{mode} ROI: {options.frames} frames")
                measure_phase(
                    record, sensor, fixed if mode == "fixed" else cycle, mode, options.frames, rates[0], options.warmup
                )
        status = "complete"
    except BaseException as exc:
        status = ending(exc)
        raise
    finally:
        if sensor is not None:
            try:
                sensor.close()
            except Exception as exc:  # closing must not hide the run's own outcome
                record.data["close_error"] = str(exc)
        if sampler is not None:
            sampler.stop()
            record.data["power"] = {**sampler.summary(), "samples": [s.__dict__ for s in sampler.samples]}
        record.data["files"] = record.finish(status)
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


def _peek_size(sensor: Sensor) -> tuple[int, int]:
    peek = getattr(sensor, "peek_geometry", None)
    return (peek() if callable(peek) else sensor.geometry).output_size


def sweep_summary(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """Per rate: FPS / DPS; the highest rate at which every frame carried a mask."""
    rows = [
        {k: p[k] for k in ("frame_rate_set", "fps", "dps", "rps", "frames", "frames_with_tensor")}
        | {
            "dnn_ms_median": (p["dnn_ms"] or {}).get("median"),
            "latency_ms_median": (p["latency_ms"] or {}).get("median"),
        }
        for p in phases
        if p["frame_rate_set"] is not None
    ]
    ok = [r["frame_rate_set"] for r in rows if r["frames"] and r["frames_with_tensor"] == r["frames"]]
    return {"rates": rows, "highest_rate_every_frame_has_mask": max(ok) if ok else None}


def write_plots(data: dict[str, Any], out: Path) -> list[str]:
    """latency.png (histogram + per-frame trace), dps_vs_frame_rate.png, power.png (with --power)."""
    written = []
    rows = data.get("frames") or []
    if rows:
        lat = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
        dnn = [r["dnn_ms"] for r in rows if r["dnn_ms"] is not None]
        charts = []
        series = []
        for label, values in (("sensor-to-mask latency", lat), ("DNN (CnnKpiInfo)", dnn)):
            xs, ys = plot.histogram(values, 40)
            if xs:
                series.append(plot.Series(label, xs, ys, "steps"))
        if series:
            charts.append(plot.plot(series, "Per-frame time: histogram", "milliseconds", "frames"))
        idx = list(range(len(rows)))
        trace = [
            plot.Series("latency", idx, [_nan(r["latency_ms"]) for r in rows], "line"),
            plot.Series("DNN", idx, [_nan(r["dnn_ms"]) for r in rows], "line"),
            plot.Series("DSP", idx, [_nan(r["dsp_ms"]) for r in rows], "line"),
        ]
        missing = [i for i, r in enumerate(rows) if not r["has_tensor"]]
        if missing:
            trace.append(plot.Series("no tensor", missing, [0.0] * len(missing), "points", (40, 39, 214)))
        bounds = _phase_bounds(rows)
        charts.append(
            plot.plot(trace, "Per-frame trace (" + ", ".join(bounds) + ")", "frame (in bench order)", "milliseconds")
        )
        plot.save_png(out / LATENCY_PNG, plot.stack(charts))
        written.append(LATENCY_PNG)
    phases = [p for p in data.get("phases") or [] if p.get("fps") is not None]
    if phases:
        series = []
        by_mode: dict[str, list[dict[str, Any]]] = {}
        for p in phases:
            by_mode.setdefault(p["phase"].split("@")[0], []).append(p)
        xs_all = []
        for mode, ps in by_mode.items():
            ps = sorted(ps, key=lambda p: p["frame_rate_set"] if p["frame_rate_set"] is not None else p["fps"])
            xs = [float(p["frame_rate_set"] if p["frame_rate_set"] is not None else p["fps"]) for p in ps]
            xs_all += xs
            series.append(plot.Series(f"DPS, {mode} ROI", xs, [p["dps"] for p in ps], "line+points"))
            series.append(plot.Series(f"FPS, {mode} ROI", xs, [p["fps"] for p in ps], "points"))
        lo, hi = min(xs_all), max(xs_all)
        xlim = (0.0, hi * 1.2) if hi - lo < 1 else None
        series.append(plot.Series("frame rate set", [0.0, hi * 1.2], [0.0, hi * 1.2], "line", (170, 170, 170)))
        chart = plot.plot(
            series,
            "DPS (frames with a tensor) vs frame rate",
            "frame rate set (fps; achieved FPS when none set)",
            "frames per second",
            xlim=xlim,
        )
        plot.save_png(out / RATE_PNG, chart)
        written.append(RATE_PNG)
    power = data.get("power") or {}
    samples = power.get("samples") or []
    if samples:
        series = []
        for phase in ("idle", "loading", "run"):
            pts = [s for s in samples if s["phase"] == phase]
            if pts:
                series.append(plot.Series(phase, [s["t_s"] for s in pts], [s["watts"] for s in pts], "line+points"))
        hl = []
        for phase in ("idle", "run"):
            m = (power.get("phases") or {}).get(phase, {}).get("mean_w")
            if m is not None:
                hl.append((m, f"{phase} mean {m:.3f} W"))
        chart = plot.plot(
            series, "PMIC-visible power over time (Pi 5)", "seconds", "watts", hlines=hl, note="no 5 V input current"
        )
        plot.save_png(out / POWER_PNG, chart)
        written.append(POWER_PNG)
    return written


def _nan(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def _phase_bounds(rows: list[dict[str, Any]]) -> list[str]:
    out, start = [], 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i]["phase"] != rows[start]["phase"]:
            out.append(f"{rows[start]['phase']} {start}-{i - 1}")
            start = i
    return out


def _cell(s: dict | None, key: str = "median") -> str:
    return "" if not s or s.get(key) is None else f"{s[key]:.2f}"


def summary_markdown(data: dict[str, Any]) -> str:
    """A short human summary of a device bench record."""
    lines = [
        f"# bench device: {data.get('network_name') or data.get('network')}",
        "",
        f"- command: `{data['command']}`",
        f"- date: {data['date']}; machine: {data['machine'].get('board') or data['machine'].get('cpu')}",
        f"- sensor: {data['sensor']}; status: **{data['status']}**",
        "",
        "| phase | rate set | frames | RPS | FPS | DPS | DNN ms (median) | DSP ms | latency ms (median / p90) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in data.get("phases") or []:
        lat = p.get("latency_ms")
        lines.append(
            f"| {p['phase']} | {p['frame_rate_set'] if p['frame_rate_set'] is not None else 'default'} | "
            f"{p['frames']} ({p['frames_with_tensor']} with tensor) | {p['rps']} | {p['fps']} | {p['dps']} | "
            f"{_cell(p.get('dnn_ms'))} | {_cell(p.get('dsp_ms'))} | {_cell(lat)} / {_cell(lat, 'p90')} |"
        )
    sweep = data.get("sweep")
    if sweep:
        best = sweep.get("highest_rate_every_frame_has_mask")
        lines += ["", f"Highest frame rate at which every frame carried a mask: **{best}** fps."]
    power = data.get("power")
    if power:
        ph = power.get("phases", {})
        lines += [
            "",
            "## Power (Pi 5 PMIC)",
            "",
            f"- idle (camera streaming, no network): {ph.get('idle', {}).get('mean_w')} W; "
            f"run: {ph.get('run', {}).get('mean_w')} W; run - idle: **{power.get('run_minus_idle_w')} W**",
            f"- method: {power['method']}",
            f"- limits: {power['limits']}",
        ]
        if power.get("error"):
            lines.append(f"- sampling error: {power['error']}")
    lines += ["", "Definitions: " + "; ".join(f"{k}: {v}" for k, v in data["definitions"].items()), ""]
    return "\n".join(lines)
