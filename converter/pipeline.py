"""``imx500-sam convert`` end to end, as a sequence of typed stages.

checkpoint -> calibration crops -> MCT PTQ/GPTQ -> MCTQ + QDQ ONNX -> float-vs-INT8 check ->
imxconv-pt -> memory report -> (imx500-package on a Pi) -> report.json / report.md.

All work happens in a temporary directory beside OUT, renamed to OUT at the end: a failure or an
interrupt leaves no partial output. When a tool fails, only its log is kept (``OUT/FAILED-<tool>.log``).
The work directory is marked as this run's (imx500_sam.procs): one left by a killed run is removed by the next.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imx500_sam.convert_output import (
    CONVERTER_LOG,
    INTRINSICS_JSON,
    PACKER_OUT,
    REPORT_JSON,
    REPORT_MD,
    ConvertOutputDir,
)
from imx500_sam.defaults import DEFAULT_CHECKPOINT
from imx500_sam.errors import BadInputError, ImxSamError
from imx500_sam.procs import (
    DEFAULT_TOOL_TIMEOUT_S,
    STOP_EXCEPTIONS,
    make_work_dir,
    note_stop,
    release_work_dir,
    remove_stale_work_dirs,
)
from imx500_sam.progress import StageProgress

FAILED_LOG_PREFIX = "FAILED-"
MCT_LOG = "mct.log"


@dataclass(frozen=True)
class ConvertOptions:
    """What the user asked for (CLI flags)."""

    model: Path | str | None = None  # checkpoint path, py:module:factory, or None (bundled default)
    out: Path | None = None
    input_size: int | tuple[int, int] | None = None
    calib_dir: Path | None = None
    calib_count: int = 96
    gptq: bool = False
    overwrite: bool = False
    quiet: bool = False
    seed: int = 0
    color_format: str = "RGB"
    skip_check: bool = False  # skip the operator/SRAM gate and let MCT / imxconv-pt decide
    tool_timeout_s: float = DEFAULT_TOOL_TIMEOUT_S  # per external tool (imxconv-pt, imx500-package)


@dataclass(frozen=True)
class ConvertResult:
    """A finished conversion: the parsed output directory and its report."""

    output: ConvertOutputDir
    report: dict[str, Any]


def default_out(stem: str) -> Path:
    """``./<model-stem>_imx500``."""
    return Path.cwd() / f"{stem}_imx500"


def _only_failure_logs(path: Path) -> bool:
    return path.is_dir() and all(p.name.startswith(FAILED_LOG_PREFIX) for p in path.iterdir())


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise BadInputError(f"{out}: exists and is not a directory.", hint="Choose another -o OUT.")
    if out.exists() and not overwrite and not _only_failure_logs(out):
        raise BadInputError(f"{out}: already exists.", hint="Pass --overwrite to replace it, or choose another -o OUT.")


def _keep_failure_logs(work: Path, out: Path) -> list[Path]:
    """Copy the logs of a failed run to OUT (never over a previous good output)."""
    logs = [p for p in (work / "logs").glob("*.log") if p.stat().st_size > 0]
    if not logs:
        return []
    if out.exists() and not _only_failure_logs(out):
        dest_dir, prefix = out.parent, f"{out.name}.{FAILED_LOG_PREFIX}"
    else:
        out.mkdir(parents=True, exist_ok=True)
        for old in out.iterdir():
            old.unlink()
        dest_dir, prefix = out, FAILED_LOG_PREFIX
    kept = []
    for log in logs:
        dest = dest_dir / f"{prefix}{log.name}"
        shutil.copyfile(log, dest)
        kept.append(dest)
    return kept


def _publish(work: Path, out: Path) -> None:
    """Atomically replace OUT with the finished work directory."""
    trash = None
    if out.exists():
        trash = out.with_name(f".{out.name}.old-{time.time_ns()}")
        out.rename(trash)
    work.rename(out)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def run_convert(opts: ConvertOptions) -> ConvertResult:
    """Convert a PicoSAM3 checkpoint for the IMX500; see the module docstring."""
    stem = str(opts.model).split(":")[-1] if opts.model is not None else DEFAULT_CHECKPOINT.stem
    out = Path(opts.out) if opts.out is not None else default_out(Path(stem).stem)
    out = out.absolute()
    _check_out(out, opts.overwrite)
    if opts.calib_count < 8:
        raise BadInputError(f"--calib-count {opts.calib_count}: need at least 8 calibration crops.")

    progress = StageProgress(total=7 if opts.skip_check else 8, quiet=opts.quiet)
    t_start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_work_dirs(out.parent, ".*.tmp-*"):
        progress.info(f"Removed {stale} (left by an imx500-sam run that was killed)")
    work = make_work_dir(out.parent, f".{out.name}.tmp-")
    (work / "logs").mkdir()
    try:
        report = _convert_into(work, out, opts, progress)
        report["timings_s"]["total"] = time.perf_counter() - t_start
        _write_reports(work, out, report)
        release_work_dir(work)
        _publish(work, out)
    except ImxSamError as exc:
        kept = _keep_failure_logs(work, out)
        if kept and "log:" in exc.message:
            exc.message = exc.message.replace(str(work / "logs" / CONVERTER_LOG), str(kept[-1]))
            exc.args = (f"{exc.message} {exc.hint}".strip() if exc.hint else exc.message,)
        raise
    except STOP_EXCEPTIONS:
        note_stop(f"{out} not written" if not out.exists() else f"{out} left as it was")
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress.info(f"Wrote {out} (total {report['timings_s']['total']:.1f} s)")
    return ConvertResult(output=ConvertOutputDir.load(out), report=report)


def _convert_into(work: Path, out: Path, opts: ConvertOptions, progress: StageProgress) -> dict[str, Any]:
    # Fail fast on a missing toolchain, before the slow stages.
    from converter.imxconv import find_imxconv, run_imxconv

    find_imxconv()

    with progress.stage("Loading model", "load"):
        import torch

        from converter.model_source import load_model
        from imx500_sam.model import count_parameters

        torch.manual_seed(opts.seed)
        source = load_model(opts.model, opts.input_size)
        model = source.module
        height, width = source.input_size

    gate = None
    if not opts.skip_check:
        with progress.stage("Checking operators and SRAM (imx500-sam check)", "check"):
            from converter.gate import check_module

            gate = check_module(model, (height, width), name=source.name)
            gate.raise_for_verdict()

    with progress.stage("Making calibration crops", "calibration"):
        from converter.calibration import load_photos, prompt_crops, representative_dataset, to_batch

        photos = load_photos(opts.calib_dir)
        calib = to_batch(prompt_crops(photos, opts.calib_count, (height, width), seed=opts.seed))
        held_out = to_batch(prompt_crops(photos, max(32, opts.calib_count // 3), (height, width), seed=opts.seed + 1))
        data = representative_dataset(calib)

    from converter.quantize import export, quantize

    mct_log = io.StringIO()
    try:
        with contextlib.redirect_stderr(mct_log), contextlib.redirect_stdout(mct_log):
            with progress.stage(f"Quantizing to INT8 with MCT ({'GPTQ' if opts.gptq else 'PTQ'})", "ptq"):
                quantized = quantize(model, data, gptq=opts.gptq)
            with progress.stage("Exporting MCTQ and QDQ ONNX", "export"):
                artifacts = export(quantized, work, representative_dataset(calib[:1]))  # tracing needs one sample
    finally:
        (work / "logs" / MCT_LOG).write_text(mct_log.getvalue())

    with progress.stage("Comparing float and INT8 masks", "accuracy"):
        from converter.accuracy import float_vs_int8
        from imx500_sam.int8 import QdqNetwork

        agreement = float_vs_int8(model, QdqNetwork(artifacts.qdq_onnx), held_out)

    with progress.stage("Converting with imxconv-pt (Sony converter)", "convert"):
        conv = run_imxconv(
            artifacts.mctq_onnx, work / "imxconv", work / "logs" / CONVERTER_LOG, timeout_s=opts.tool_timeout_s
        )
    for src in [conv.packer_out, conv.memory_report.path, conv.dnn_params.path]:
        shutil.move(str(src), work / src.name)
    for extra in (work / "imxconv").iterdir():  # per-layer .pbtxt: keep for inspection
        shutil.move(str(extra), work / extra.name)
    (work / "imxconv").rmdir()

    from firmware_packaging.packager import package, packager_available, pi_commands, picosam3_intrinsics

    intrinsics = picosam3_intrinsics()
    (work / INTRINSICS_JSON).write_text(json.dumps(intrinsics, indent=2) + "\n")

    with progress.stage("Packaging to network.rpk", "package"):
        rpk = None
        available = packager_available()
        if available:
            rpk = package(
                work / PACKER_OUT, work, color=opts.color_format, intrinsics=intrinsics, timeout_s=opts.tool_timeout_s
            )
        else:
            progress.info("  imx500-package is not here (it runs only on a Raspberry Pi): see report.md")

    mem = conv.memory_report
    from converter.report import git_describe, toolchain_versions

    def final(p: Path | None) -> str | None:
        return str(out / p.name) if p is not None else None

    return {
        "model": {
            "name": source.name,
            "checkpoint": source.origin,
            "architecture": source.architecture,
            "layout": source.layout,
            "params": count_parameters(model),
            "input_size": [height, width],
        },
        "quantization": {
            "method": "MCT GPTQ" if opts.gptq else "MCT PTQ",
            "target": "imx500 (MCT target platform capabilities)",
            "calibration_crops": int(len(calib)),
            "calibration_source": str(opts.calib_dir) if opts.calib_dir else "bundled photos (skimage, sklearn)",
            "calibration_photos": len(photos),
            "seed": opts.seed,
        },
        "memory": {
            "fit_in_chip": mem.fit_in_chip,
            "usage_bytes": mem.usage_bytes,
            "available_bytes": mem.available_bytes,
            "weights_bytes": mem.weights_bytes,
            "runtime_bytes": mem.runtime_bytes,
            "reserved_bytes": mem.reserved_bytes,
            "utilization": mem.utilization,
            "input_persistent": mem.input_persistent,
        },
        "accuracy": {
            "float_vs_int8_miou": agreement.miou,
            "crops": agreement.crops,
            "max_abs_logit_diff": agreement.max_abs_logit_diff,
            "note": "IoU of float vs INT8 (QDQ ONNX, onnxruntime) masks on held-out prompt crops",
        },
        "check": gate.to_dict() if gate is not None else None,
        "timings_s": dict(progress.timings),
        "artifacts": {
            "packer_out": final(work / PACKER_OUT),
            "mctq_onnx": final(artifacts.mctq_onnx),
            "qdq_onnx": final(artifacts.qdq_onnx),
            "memory_report": final(work / mem.path.name),
            "dnn_params": final(work / conv.dnn_params.path.name),
            "intrinsics": final(work / INTRINSICS_JSON),
            "rpk": final(rpk) if rpk else None,
        },
        "packaging": {
            "packager_available": available,
            # run inside the output folder once it is copied to the Pi
            "commands": [] if rpk else [f"cd {out.name}", *pi_commands(PACKER_OUT, ".", opts.color_format, intrinsics)],
        },
        "toolchain": {**toolchain_versions(), "imx500-sam-git": git_describe(Path(__file__).parent)},
    }


def _write_reports(work: Path, out: Path, report: dict[str, Any]) -> None:
    from converter.report import render_markdown, write_json

    write_json(report, work / REPORT_JSON)
    (work / REPORT_MD).write_text(render_markdown(report))
