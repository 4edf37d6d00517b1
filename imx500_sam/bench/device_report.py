"""The device bench's pictures and summary: latency.png, dps_vs_frame_rate.png, power.png, bench_device.md."""

from __future__ import annotations

from pathlib import Path

from imx500_sam.bench import plot
from imx500_sam.bench.device_record import DEFINITIONS, JSON_NAME, DeviceBenchRecord, FrameRow, PhaseSummary
from imx500_sam.bench.record import write_atomic

MD_NAME = "bench_device.md"
LATENCY_PNG, RATE_PNG, POWER_PNG = "latency.png", "dps_vs_frame_rate.png", "power.png"


def finish(record: DeviceBenchRecord, status: str) -> list[str]:
    """Final JSON, plots and markdown summary; returns the files written (a plot that fails is noted)."""
    record.status = status
    written = []
    try:
        written += write_plots(record, record.out)
    except Exception as exc:  # a plot must not lose the numbers
        record.plot_error = f"{type(exc).__name__}: {exc}"
    record.files = [JSON_NAME, MD_NAME, *written]
    record.write_json()
    write_atomic(record.out / MD_NAME, summary_markdown(record))
    return record.files


def write_plots(record: DeviceBenchRecord, out: Path) -> list[str]:
    """latency.png (histogram + per-frame trace), dps_vs_frame_rate.png, power.png (with --power)."""
    written = []
    rows = record.frames
    if rows:
        lat = [r.latency_ms for r in rows if r.latency_ms is not None]
        dnn = [r.dnn_ms for r in rows if r.dnn_ms is not None]
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
            plot.Series("latency", idx, [_nan(r.latency_ms) for r in rows], "line"),
            plot.Series("DNN", idx, [_nan(r.dnn_ms) for r in rows], "line"),
            plot.Series("DSP", idx, [_nan(r.dsp_ms) for r in rows], "line"),
        ]
        missing = [i for i, r in enumerate(rows) if not r.has_tensor]
        if missing:
            trace.append(plot.Series("no tensor", missing, [0.0] * len(missing), "points", (40, 39, 214)))
        bounds = _phase_bounds(rows)
        charts.append(
            plot.plot(trace, "Per-frame trace (" + ", ".join(bounds) + ")", "frame (in bench order)", "milliseconds")
        )
        plot.save_png(out / LATENCY_PNG, plot.stack(charts))
        written.append(LATENCY_PNG)
    phases = [p for p in record.phases if p.fps is not None]
    if phases:
        series = []
        by_mode: dict[str, list[PhaseSummary]] = {}
        for p in phases:
            by_mode.setdefault(p.mode, []).append(p)
        xs_all = []
        for mode, ps in by_mode.items():
            xs = [float(p.frame_rate_set if p.frame_rate_set is not None else p.fps) for p in ps]
            order = sorted(range(len(ps)), key=xs.__getitem__)
            ps, xs = [ps[i] for i in order], [xs[i] for i in order]
            xs_all += xs
            series.append(plot.Series(f"DPS, {mode} ROI", xs, [p.dps for p in ps], "line+points"))
            series.append(plot.Series(f"FPS, {mode} ROI", xs, [p.fps for p in ps], "points"))
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
    power = record.power or {}
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


def _phase_bounds(rows: list[FrameRow]) -> list[str]:
    out, start = [], 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i].phase != rows[start].phase:
            out.append(f"{rows[start].phase} {start}-{i - 1}")
            start = i
    return out


def _cell(s: dict | None, key: str = "median") -> str:
    return "" if not s or s.get(key) is None else f"{s[key]:.2f}"


def summary_markdown(record: DeviceBenchRecord) -> str:
    """A short human summary of a device bench record."""
    head = record.header
    lines = [
        f"# bench device: {record.network_name or record.network}",
        "",
        f"- command: `{head['command']}`",
        f"- date: {head['date']}; machine: {head['machine'].get('board') or head['machine'].get('cpu')}",
        f"- sensor: {record.sensor}; status: **{record.status}**",
        "",
        "| phase | rate set | frames | RPS | FPS | DPS | DNN ms (median) | DSP ms | latency ms (median / p90) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in record.phases:
        lat = p.latency_ms
        lines.append(
            f"| {p.phase} | {p.frame_rate_set if p.frame_rate_set is not None else 'default'} | "
            f"{p.frames} ({p.frames_with_tensor} with tensor) | {p.rps} | {p.fps} | {p.dps} | "
            f"{_cell(p.dnn_ms)} | {_cell(p.dsp_ms)} | {_cell(lat)} / {_cell(lat, 'p90')} |"
        )
    if record.sweep:
        best = record.sweep.highest_rate_every_frame_has_mask
        lines += ["", f"Highest frame rate at which every frame carried a mask: **{best}** fps."]
    power = record.power
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
    lines += ["", "Definitions: " + "; ".join(f"{k}: {v}" for k, v in DEFINITIONS.items()), ""]
    return "\n".join(lines)
