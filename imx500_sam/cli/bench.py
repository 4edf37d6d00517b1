"""``imx500-sam bench device`` (the AI Camera, or the emulator) and ``imx500-sam bench host`` (this machine)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from imx500_sam.cli.app import app

bench_app = typer.Typer(
    help="Benchmarks: on the AI Camera (device) or on this machine (host); JSON, PNG plots and a summary.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(bench_app, name="bench")


def _log(text: str) -> None:
    print(f"imx500-sam bench: {text}", file=sys.stderr, flush=True)


def _rates(text: str | None) -> list[float] | None:
    from imx500_sam.errors import BadInputError

    if not text:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise BadInputError(f"--sweep-rates {text!r}: give comma-separated frame rates, e.g. 5,10,15,20,30.") from exc


@bench_app.command("device")
def device(
    rpk: Path = typer.Option(None, "--rpk", help="network.rpk: benchmark on the Raspberry Pi AI Camera."),
    emulate: Path = typer.Option(None, "--emulate", help="A convert output folder: benchmark the emulated IMX500."),
    source: str = typer.Option(None, "--source", help="Emulator frames: image, folder or video file."),
    frames: int = typer.Option(100, "--frames", help="Frames measured per phase (per rate with --sweep)."),
    frame_rate: float = typer.Option(None, "--frame-rate", help="Sensor frame rate (default: the network's)."),
    sweep: bool = typer.Option(False, "--sweep", help="Step the frame rate; find the highest with a mask every frame."),
    sweep_rates: str = typer.Option(None, "--sweep-rates", help="Rates for --sweep (default 5,7.5,...,30)."),
    roi: str = typer.Option("both", "--roi", help="fixed (one ROI), cycle (ROI changes every frame) or both."),
    box: list[str] = typer.Option(None, "--box", help="Prompt box x,y,w,h (repeat; default: built-in boxes)."),
    warmup: int = typer.Option(5, "--warmup", help="Frames dropped before each phase."),
    power: bool = typer.Option(False, "--power", help="Pi 5: sample the PMIC over an idle baseline and the run."),
    power_rate: float = typer.Option(4.0, "--power-rate", help="PMIC samples per second (a few Hz)."),
    idle_seconds: float = typer.Option(10.0, "--idle-seconds", help="Idle baseline length with --power."),
    out: Path = typer.Option(None, "--out", help="Output folder (default: bench-device-<date>); must not exist."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Empty an existing --out folder first."),
) -> None:
    """DNN / DSP ms, sensor-to-mask latency, RPS / FPS / DPS per frame; frame-rate sweep; power (Pi 5)."""
    import time

    from imx500_sam.bench.device import SWEEP_RATES, DeviceBenchOptions, run_device_bench
    from imx500_sam.runtime.runner import parse_box

    options = DeviceBenchOptions(
        out=out or Path(time.strftime("bench-device-%Y%m%d-%H%M%S")),
        rpk=rpk,
        emulate=emulate,
        source=source,
        frames=frames,
        frame_rate=frame_rate,
        sweep=sweep,
        sweep_rates=_rates(sweep_rates) or SWEEP_RATES,
        warmup=warmup,
        roi=roi,
        boxes=[parse_box(b) for b in box or []],
        power=power,
        power_rate_hz=power_rate,
        idle_s=idle_seconds,
        overwrite=overwrite,
    )
    record = run_device_bench(options, log=_log)
    for p in record.phases:
        dnn = (p.dnn_ms or {}).get("median")
        lat = (p.latency_ms or {}).get("median")
        _log(f"{p.phase}: FPS {p.fps}, DPS {p.dps}, RPS {p.rps}, DNN {dnn} ms, latency {lat} ms (medians)")
    if record.sweep:
        _log(f"highest rate with a mask on every frame: {record.sweep.highest_rate_every_frame_has_mask}")
    if record.power:
        _log(f"power run - idle: {record.power.get('run_minus_idle_w')} W (PMIC-visible rails)")
    _log(f"wrote {options.out}/ ({', '.join(record.files)})")


@bench_app.command("host")
def host(
    emulate: Path = typer.Option(
        None, "--emulate", help="A convert output folder (default: convert the bundled model)."
    ),
    out: Path = typer.Option(None, "--out", help="Output folder (default: bench-host-<date>); must not exist."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Empty an existing --out folder first."),
    skip: list[str] = typer.Option(
        None, "--skip", help="Leave out a part: convert, throughput, check, accuracy, teacher (repeat)."
    ),
    quick: bool = typer.Option(False, "--quick", help="CI size: skip check and teacher, fewer frames."),
    frames: int = typer.Option(None, "--frames", help="Emulator frames per mode (default 240; 60 with --quick)."),
) -> None:
    """Emulator throughput and stages, convert stage timings, check vs --memory-report, float/INT8/teacher mIoU."""
    from imx500_sam.cli._benchmarks import import_benchmarks

    host_bench = import_benchmarks("host")
    record = host_bench.run_host_bench(
        convert_dir=emulate, out=out, skip=list(skip or []), quick=quick, frames=frames, log=_log, overwrite=overwrite
    )
    _log(f"ran: {', '.join(record['ran'])}; skipped: {', '.join(record['skipped']) or 'nothing'}")
    _log(f"wrote {record['out']}/ ({', '.join(record['files'])})")
