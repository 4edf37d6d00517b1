"""``imx500-sam convert`` end to end, as a sequence of typed stages.

load (ModelInput) -> check (GateReport) -> calibration + held-out crops (Calibration) -> MCT PTQ/GPTQ,
MCTQ ONNX and the host network derived from it (Quantized) -> accuracy against MCT's network (dict)
-> imxconv-pt (ImxconvResult) -> imx500-package on a Pi (Packaged) -> report.json / report.md.
An MCTQ ONNX input (already quantized by MCT) skips calibration and PTQ.

All work happens in a temporary directory beside OUT, made OUT at the end in one step (``procs.publish_dir``):
a failure or an interrupt leaves no partial output and a previous OUT as it was. When a tool fails, only its log
is kept (``OUT/FAILED-<tool>.log``). The work directory is marked as this run's (imx500_sam.procs): one left by a
killed run is removed by the next (a previous OUT caught in the middle of a two-step publish is put back first).
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

import numpy as np

from converter.artifacts import ImxconvResult, QuantizedArtifacts
from converter.model_source import PY_PREFIX, SourceModel
from imx500_sam.convert_output import (
    CONVERTER_LOG,
    INTRINSICS_JSON,
    MCTQ_ONNX,
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
    publish_dir,
    remove_stale_work_dirs,
    remove_work_dir,
)
from imx500_sam.progress import StageProgress

FAILED_LOG_PREFIX = "FAILED-"
MCT_LOG = "mct.log"
DEFAULT_CALIBRATION_SOURCE = "photo catalogue: camera scenes bundled in scikit-image / scikit-learn"
MCTQ_REFERENCE_CROPS = 4  # mct_quantizers' onnxruntime ops run about 1 crop/s


@dataclass(frozen=True)
class ConvertOptions:
    """What the user asked for (CLI flags)."""

    model: Path | str | None = None  # checkpoint, MCTQ .onnx, py:module:factory, or None (bundled default)
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


def _keep_failure_logs(work: Path, out: Path, message: str = "") -> list[tuple[Path, Path]]:
    """Copy the logs of a failed run to OUT (never over a previous good output); (log, where it is kept).

    Logs with something in them, and any log the error message names (even empty: the message points there).
    """
    logs = [p for p in sorted((work / "logs").glob("*.log")) if p.stat().st_size > 0 or str(p) in message]
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
        kept.append((log, dest))
    return kept


def _is_onnx(spec: Path | str | None) -> bool:
    return spec is not None and str(spec).lower().endswith(".onnx") and not str(spec).startswith(PY_PREFIX)


def run_convert(opts: ConvertOptions) -> ConvertResult:
    """Convert a PicoSAM3 checkpoint for the IMX500; see the module docstring."""
    stem = str(opts.model).split(":")[-1] if opts.model is not None else DEFAULT_CHECKPOINT.stem
    out = Path(opts.out) if opts.out is not None else default_out(Path(stem).stem)
    out = out.absolute()
    _check_out(out, opts.overwrite)
    if opts.calib_count < 8:
        raise BadInputError(f"--calib-count {opts.calib_count}: need at least 8 calibration crops.")

    progress = StageProgress(total=(7 if opts.skip_check else 8) - (1 if _is_onnx(opts.model) else 0), quiet=opts.quiet)
    t_start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_work_dirs(out.parent, ".*.tmp-*"):
        progress.info(f"Removed {stale} (left by an imx500-sam run that was killed)")
    box = make_work_dir(out.parent, f".{out.name}.tmp-")  # owner-marked; what becomes OUT is inside it
    work = box / "out"
    published = False
    try:
        (work / "logs").mkdir(parents=True)
        report = _convert_into(work, out, opts, progress)
        report["timings_s"]["total"] = time.perf_counter() - t_start
        _write_reports(work, out, report)
        published = True  # from here on OUT is replaced in one step, a stop waits for it (procs.publish_dir)
        publish_dir(work, out)
    except ImxSamError as exc:
        kept = _keep_failure_logs(work, out, exc.message)
        if kept and "log:" in exc.message:  # the message names the log where it is kept
            for src, dest in kept:
                exc.message = exc.message.replace(str(src), str(dest))
            exc.args = (f"{exc.message} {exc.hint}".strip() if exc.hint else exc.message,)
        raise
    except STOP_EXCEPTIONS:
        if published and not work.exists():
            note_stop(f"{out} written just before the stop")
        else:
            note_stop(f"{out} not written" if not out.exists() else f"{out} left as it was")
        raise
    finally:
        remove_work_dir(box)
    progress.info(f"Wrote {out} (total {report['timings_s']['total']:.1f} s)")
    return ConvertResult(output=ConvertOutputDir.load(out), report=report)


@dataclass(frozen=True)
class ModelInput:
    """Stage 1: what is converted. A float model to quantize, or an MCTQ ONNX quantized already."""

    name: str
    input_size: tuple[int, int]  # (H, W)
    source: SourceModel | None = None  # float model (checkpoint or py: factory)
    mctq_onnx: Path | None = None  # already quantized by MCT: no second PTQ


@dataclass(frozen=True)
class Calibration:
    """Stage 3: calibration crops, and held-out crops from photos calibration never saw."""

    crops: np.ndarray  # float32 (N, 3, H, W) model input
    held_out: np.ndarray
    photos: int
    held_out_sources: tuple[str, ...]


@dataclass(frozen=True)
class Quantized:
    """Stages 4-5: the MCTQ ONNX imxconv-pt compiles, the host network derived from it, MCT's module."""

    artifacts: QuantizedArtifacts
    method: str
    module: Any | None  # MCT's quantized torch module (None for an MCTQ input)


@dataclass(frozen=True)
class Packaged:
    """Stage 8: network.rpk when imx500-package is here, else the commands to run on the Pi."""

    rpk: Path | None
    packager_available: bool
    intrinsics: dict[str, Any]


def _convert_into(work: Path, out: Path, opts: ConvertOptions, progress: StageProgress) -> dict[str, Any]:
    # Fail fast on a missing toolchain, before the slow stages.
    from converter.imxconv import find_imxconv

    find_imxconv()
    model = _load_stage(opts, progress)
    gate = None if opts.skip_check else _check_stage(model, progress)
    calib = _calibration_stage(model, opts, progress)
    quantized = _quantize_stage(model, calib, opts, work, progress)
    accuracy = _accuracy_stage(model, calib, quantized, progress)
    conv = _imxconv_stage(quantized, work, progress, opts.tool_timeout_s)
    packaged = _package_stage(work, opts, progress)
    return _report(out, opts, model, gate, calib, quantized, accuracy, conv, packaged, progress)


def _mctq_path(spec: Path | str | None) -> Path | None:
    """The path when MODEL is an ONNX file (an MCTQ export); BadInputError for a float ONNX."""
    if spec is None or str(spec).startswith(PY_PREFIX) or Path(spec).suffix.lower() != ".onnx":
        return None
    from converter.mctq import is_mctq

    path = Path(spec)
    if not is_mctq(path):
        raise BadInputError(
            f"{path}: a float ONNX file: convert quantizes PyTorch models with MCT, or takes an MCTQ ONNX "
            "that MCT already quantized.",
            hint="Pass the PyTorch checkpoint (or py:module:factory), or export with MCT's MCTQ format.",
        )
    return path


def _load_stage(opts: ConvertOptions, progress: StageProgress) -> ModelInput:
    with progress.stage("Loading model", "load"):
        mctq = _mctq_path(opts.model)
        if mctq is not None:
            from converter.mctq import read_input_size

            size = read_input_size(mctq)
            for flag, used in (("--gptq", opts.gptq), ("--calib", opts.calib_dir is not None)):
                if used:
                    raise BadInputError(f"{flag}: {mctq} is already quantized by MCT (MCTQ ONNX); drop {flag}.")
            if opts.input_size is not None and _hw(opts.input_size) != size:
                raise BadInputError(f"--input-size {opts.input_size}: the MCTQ ONNX has a fixed input {size}.")
            return ModelInput(name=mctq.stem, input_size=size, mctq_onnx=mctq.absolute())
        import torch

        from converter.model_source import load_model

        torch.manual_seed(opts.seed)
        source = load_model(opts.model, opts.input_size)
        return ModelInput(name=source.name, input_size=tuple(source.input_size), source=source)


def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _check_stage(model: ModelInput, progress: StageProgress) -> Any:
    with progress.stage("Checking operators and SRAM (imx500-sam check)", "check"):
        if model.mctq_onnx is not None:
            from converter.gate import check_onnx

            gate = check_onnx(model.mctq_onnx)
        else:
            from converter.gate import check_module

            assert model.source is not None
            gate = check_module(model.source.module, model.input_size, name=model.name)
        gate.raise_for_verdict()
        return gate


def _calibration_stage(model: ModelInput, opts: ConvertOptions, progress: StageProgress) -> Calibration:
    from converter.calibration import held_out_photos, load_photos, prompt_crops, to_batch

    size = model.input_size
    with progress.stage("Making calibration and held-out crops", "calibration"):
        held = held_out_photos()
        if model.mctq_onnx is not None:  # no PTQ; the slow reference (mct_quantizers' ops) gets a few crops
            crops, photos = np.empty((0, 3, *size), np.float32), 0
            held_out = to_batch(prompt_crops(held, MCTQ_REFERENCE_CROPS, size, seed=opts.seed + 1))
        else:
            calib_photos = load_photos(opts.calib_dir)
            photos = len(calib_photos)
            crops = to_batch(prompt_crops(calib_photos, opts.calib_count, size, seed=opts.seed))
            held_out = to_batch(prompt_crops(held, max(32, opts.calib_count // 3), size, seed=opts.seed + 1))
    return Calibration(crops, held_out, photos, tuple(p.source for p in held))


def _quantize_stage(
    model: ModelInput, calib: Calibration, opts: ConvertOptions, work: Path, progress: StageProgress
) -> Quantized:
    from converter.quantize import export, host_artifacts, quantize

    if model.mctq_onnx is not None:
        with progress.stage("Deriving the host network from the MCTQ ONNX (already quantized: no PTQ)", "export"):
            mctq = work / MCTQ_ONNX
            shutil.copyfile(model.mctq_onnx, mctq)
            return Quantized(host_artifacts(mctq, work), "none: already quantized by MCT (MCTQ ONNX input)", None)
    from converter.calibration import representative_dataset

    assert model.source is not None
    method = "MCT GPTQ" if opts.gptq else "MCT PTQ"
    mct_log = io.StringIO()
    try:
        with contextlib.redirect_stderr(mct_log), contextlib.redirect_stdout(mct_log):
            with progress.stage(f"Quantizing to INT8 with MCT ({'GPTQ' if opts.gptq else 'PTQ'})", "ptq"):
                module = quantize(model.source.module, representative_dataset(calib.crops), gptq=opts.gptq)
            with progress.stage("Exporting the MCTQ ONNX and deriving the host network", "export"):
                # tracing needs one sample
                artifacts = export(module, work, representative_dataset(calib.crops[:1]))
    finally:
        (work / "logs" / MCT_LOG).write_text(mct_log.getvalue())
    return Quantized(artifacts, method, module)


def _accuracy_stage(model: ModelInput, calib: Calibration, quantized: Quantized, progress: StageProgress) -> dict:
    """float vs INT8 (the reference: MCT's network) and the host network's agreement with it."""
    from converter.accuracy import batched, float_vs_int8, mctq_logits, pixel_agreement, torch_logits
    from imx500_sam.int8 import QdqNetwork

    with progress.stage("Comparing float, MCT INT8 and the host network", "accuracy"):
        host = batched(QdqNetwork(quantized.artifacts.qdq_onnx), calib.held_out)
        result: dict[str, Any] = {"float_vs_int8_miou": None, "crops": len(calib.held_out)}
        if quantized.module is not None and model.source is not None:
            reference = torch_logits(quantized.module, calib.held_out)
            agreement = float_vs_int8(torch_logits(model.source.module, calib.held_out), reference)
            result.update(float_vs_int8_miou=agreement.miou, max_abs_logit_diff=agreement.max_abs_logit_diff)
            ref_name = "MCT's quantized torch module"
        else:
            reference = mctq_logits(quantized.artifacts.mctq_onnx, calib.held_out)
            ref_name = "mct_quantizers' onnxruntime ops on the MCTQ ONNX"
        result["emulator_agreement"] = pixel_agreement(host, reference, ref_name).to_dict()
        result["held_out_photos"] = list(calib.held_out_sources)
        result["note"] = (
            "on prompt crops of photos calibration never saw: float_vs_int8_miou is the mean IoU of the float "
            "model's masks and MCT's quantized network's (the INT8 reference; null without a float model); "
            "emulator_agreement is the host network (emulator, eval --int8) against that reference"
        )
    return result


def _imxconv_stage(quantized: Quantized, work: Path, progress: StageProgress, timeout_s: float) -> ImxconvResult:
    from converter.imxconv import run_imxconv

    with progress.stage("Converting with imxconv-pt (Sony converter)", "convert"):
        conv = run_imxconv(
            quantized.artifacts.mctq_onnx, work / "imxconv", work / "logs" / CONVERTER_LOG, timeout_s=timeout_s
        )
    for src in [conv.packer_out, conv.memory_report.path, conv.dnn_params.path]:
        shutil.move(str(src), work / src.name)
    for extra in (work / "imxconv").iterdir():  # per-layer .pbtxt: keep for inspection
        shutil.move(str(extra), work / extra.name)
    (work / "imxconv").rmdir()
    return conv


def _package_stage(work: Path, opts: ConvertOptions, progress: StageProgress) -> Packaged:
    from firmware_packaging.packager import package, packager_available, picosam3_intrinsics

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
    return Packaged(rpk, available, intrinsics)


def _model_section(source: SourceModel) -> dict[str, Any]:
    """The report's "model" section, from SourceModel's fields."""
    from imx500_sam.model import count_parameters

    return {
        "name": source.name,
        "checkpoint": source.origin,
        "architecture": source.architecture,
        "layout": source.layout,
        "params": count_parameters(source.module),
        "input_size": list(source.input_size),
    }


def _mctq_model_section(model: ModelInput) -> dict[str, Any]:
    """The "model" section for an MCTQ ONNX input (parameters counted from its initializers)."""
    from converter.mctq import count_parameters

    assert model.mctq_onnx is not None
    return {
        "name": model.name,
        "checkpoint": str(model.mctq_onnx),
        "architecture": "MCTQ ONNX (quantized by MCT)",
        "layout": "mctq-onnx",
        "params": count_parameters(model.mctq_onnx),
        "input_size": list(model.input_size),
    }


def _report(
    out: Path,
    opts: ConvertOptions,
    model: ModelInput,
    gate: Any,
    calib: Calibration,
    quantized: Quantized,
    accuracy: dict[str, Any],
    conv: ImxconvResult,
    packaged: Packaged,
    progress: StageProgress,
) -> dict[str, Any]:
    from converter.report import git_describe, toolchain_versions
    from firmware_packaging.packager import pi_commands

    work_files = quantized.artifacts
    mem = conv.memory_report

    def final(p: Path | None) -> str | None:
        return str(out / p.name) if p is not None else None

    already = model.mctq_onnx is not None
    return {
        "model": _model_section(model.source) if model.source is not None else _mctq_model_section(model),
        "quantization": {
            "method": quantized.method,
            "already_quantized": already,
            "target": "imx500 (MCT target platform capabilities)",
            "calibration_crops": int(len(calib.crops)),
            "calibration_source": None if already else str(opts.calib_dir or DEFAULT_CALIBRATION_SOURCE),
            "calibration_photos": calib.photos,
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
        "accuracy": accuracy,
        "check": gate.to_dict() if gate is not None else None,
        "timings_s": dict(progress.timings),
        "artifacts": {
            "packer_out": final(conv.packer_out),
            "mctq_onnx": final(work_files.mctq_onnx),
            "qdq_onnx": final(work_files.qdq_onnx),
            "memory_report": final(mem.path),
            "dnn_params": final(conv.dnn_params.path),
            "intrinsics": final(Path(INTRINSICS_JSON)),
            "rpk": final(packaged.rpk) if packaged.rpk else None,
        },
        "packaging": {
            "packager_available": packaged.packager_available,
            # run inside the output folder once it is copied to the Pi
            "commands": []
            if packaged.rpk
            else [f"cd {out.name}", *pi_commands(PACKER_OUT, ".", opts.color_format, packaged.intrinsics)],
        },
        "toolchain": {**toolchain_versions(), "imx500-sam-git": git_describe(Path(__file__).parent)},
    }


def _write_reports(work: Path, out: Path, report: dict[str, Any]) -> None:
    from converter.report import render_markdown, write_json

    write_json(report, work / REPORT_JSON)
    (work / REPORT_MD).write_text(render_markdown(report))
