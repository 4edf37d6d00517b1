"""``imx500-sam convert`` end to end, as a sequence of typed stages.

load (ModelInput) -> check (GateReport) -> calibration + held-out crops (Calibration) -> MCT PTQ/GPTQ,
MCTQ ONNX and the host network derived from it (Quantized) -> accuracy against MCT's network (dict)
-> imxconv-pt (ImxconvResult) -> imx500-package on a Pi (Packaged) -> report.json / report.md.
An MCTQ ONNX input (already quantized by MCT) skips calibration and PTQ. The records the stages hand on are in
``converter.stage_records``; report.json is assembled from them in ``converter.convert_report``.

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

from converter.artifacts import ImxconvResult
from converter.convert_report import build_report, write_reports
from converter.model_source import PY_PREFIX
from converter.stage_records import Calibration, InputConvention, ModelInput, Packaged, Quantized
from imx500_sam.convert_output import (
    CONVERTER_LOG,
    INTRINSICS_JSON,
    MCTQ_ONNX,
    PACKER_OUT,
    ConvertOutputDir,
)
from imx500_sam.defaults import DEFAULT_CHECKPOINT
from imx500_sam.errors import BadInputError, ImxSamError
from imx500_sam.outputs import refuse_existing
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
from imx500_sam.prompt import CLAMPED, SHIFTED, crop_option

FAILED_LOG_PREFIX = "FAILED-"
MCT_LOG = "mct.log"
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
    prompt_crop: str | None = None  # the model's crop convention (imx500_sam.prompt); None: from the model file
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
    if not _only_failure_logs(out):
        refuse_existing(out, option="-o OUT", overwrite=overwrite)


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


def run_convert(opts: ConvertOptions) -> ConvertResult:
    """Convert a PicoSAM3 checkpoint for the IMX500; see the module docstring."""
    stem = str(opts.model).split(":")[-1] if opts.model is not None else DEFAULT_CHECKPOINT.stem
    out = Path(opts.out) if opts.out is not None else default_out(Path(stem).stem)
    out = out.absolute()
    _check_out(out, opts.overwrite)
    if opts.calib_count < 8:
        raise BadInputError(f"--calib-count {opts.calib_count}: need at least 8 calibration crops.")

    mctq = _mctq_path(opts.model)  # an MCTQ ONNX skips calibration and PTQ (read once, here)
    progress = StageProgress(total=(7 if opts.skip_check else 8) - (1 if mctq is not None else 0), quiet=opts.quiet)
    t_start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_work_dirs(out.parent, ".*.tmp-*"):
        progress.info(f"Removed {stale} (left by an imx500-sam run that was killed)")
    box = make_work_dir(out.parent, f".{out.name}.tmp-")  # owner-marked; what becomes OUT is inside it
    work = box / "out"
    published = False
    try:
        (work / "logs").mkdir(parents=True)
        report = _convert_into(work, out, opts, mctq, progress)
        report["timings_s"]["total"] = time.perf_counter() - t_start
        write_reports(work, out, report)
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
    from converter.report import summary_lines

    for line in summary_lines(report, out):
        progress.info(line)
    return ConvertResult(output=ConvertOutputDir.load(out), report=report)


def _input_stage(model: ModelInput, quantized: Quantized) -> InputConvention:
    """The input convention: a signed input quantizer means normalised input (the authors' MCTQ files, quantized
    with ImageNet normalisation outside): the sensor's preprocessor makes it, or BadInputError (exit 2)."""
    from imx500_sam.preprocessor import (
        AUTHORS_INPUT,
        IMAGENET_MEAN,
        IMAGENET_STD,
        SENSOR_INPUT,
        InputPreprocessor,
    )

    q = quantized.artifacts.input_quant
    if q is None or not q.signed:
        return InputConvention(SENSOR_INPUT, q.scale if q else None, False, None)
    where = str(model.mctq_onnx or model.name)
    if q.num_bits != 8 or q.zero_point != 0:
        raise BadInputError(
            f"{where}: its input quantizer ({q.num_bits}-bit, zero point {q.zero_point}) is not the sensor's "
            "8-bit input.",
            hint="Convert the float network instead (the .pt or float .onnx).",
        )
    pre, err = InputPreprocessor.for_normalised_input(q.scale, IMAGENET_MEAN, IMAGENET_STD, 255.0, True, where)
    return InputConvention(AUTHORS_INPUT, q.scale, True, pre, err)


def _convert_into(
    work: Path, out: Path, opts: ConvertOptions, mctq: Path | None, progress: StageProgress
) -> dict[str, Any]:
    # Fail fast on a missing toolchain, before the slow stages.
    from converter.imxconv import find_imxconv

    find_imxconv()
    model = _load_stage(opts, mctq, progress)
    gate = None if opts.skip_check else _check_stage(model, progress)
    calib = _calibration_stage(model, opts, progress)
    quantized = _quantize_stage(model, calib, opts, work, progress)
    inp = _input_stage(model, quantized)
    accuracy = _accuracy_stage(model, calib, quantized, inp, progress)
    conv = _imxconv_stage(quantized, work, progress, opts.tool_timeout_s)
    packaged = _package_stage(work, opts, progress, inp)
    return build_report(out, opts, model, gate, calib, quantized, inp, accuracy, conv, packaged, progress)


def _mctq_path(spec: Path | str | None) -> Path | None:
    """The path when MODEL is an MCTQ ONNX (quantized by MCT already); None otherwise.

    A float ONNX is loaded as a checkpoint (``imx500_sam.model.onnx_import``: a PicoSAM network, else exit 2).
    """
    if spec is None or str(spec).startswith(PY_PREFIX) or Path(spec).suffix.lower() != ".onnx":
        return None
    from converter.mctq import is_mctq

    path = Path(spec)
    return path if is_mctq(path) else None


def _load_stage(opts: ConvertOptions, mctq: Path | None, progress: StageProgress) -> ModelInput:
    """The float model (checkpoint, float ONNX, ``py:``), or the MCTQ ONNX ``mctq`` as it is."""
    with progress.stage("Loading model", "load"):
        if mctq is not None:
            from converter.mctq import read_input_size

            size = read_input_size(mctq)
            for flag, used in (("--gptq", opts.gptq), ("--calib", opts.calib_dir is not None)):
                if used:
                    raise BadInputError(f"{flag}: {mctq} is already quantized by MCT (MCTQ ONNX); drop {flag}.")
            if opts.input_size is not None and _hw(opts.input_size) != size:
                raise BadInputError(f"--input-size {opts.input_size}: the MCTQ ONNX has a fixed input {size}.")
            # an MCTQ file says nothing of its training: the authors quantize their own networks (their crop)
            crop = crop_option(opts.prompt_crop) or CLAMPED
            return ModelInput(name=mctq.stem, input_size=size, mctq_onnx=mctq.absolute(), prompt_crop=crop)
        import torch

        from converter.model_source import load_model

        torch.manual_seed(opts.seed)
        source = load_model(opts.model, opts.input_size)
        crop = crop_option(opts.prompt_crop) or source.prompt_crop or SHIFTED
        return ModelInput(name=source.name, input_size=tuple(source.input_size), source=source, prompt_crop=crop)


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
    from converter.calibration import accuracy_photos, load_photos, prompt_crops, to_batch
    from imx500_sam.data.roles import Role, check_records, model_training_images

    size = model.input_size
    with progress.stage("Making calibration and accuracy crops", "calibration"):
        held = accuracy_photos()
        if model.mctq_onnx is not None:  # no PTQ; the slow reference (mct_quantizers' ops) gets a few crops
            crops, calib_photos = np.empty((0, 3, *size), np.float32), []
            accuracy = to_batch(prompt_crops(held, MCTQ_REFERENCE_CROPS, size, opts.seed + 1, model.prompt_crop))
        else:
            calib_photos = load_photos(opts.calib_dir)
            crops = to_batch(prompt_crops(calib_photos, opts.calib_count, size, opts.seed, model.prompt_crop))
            n_accuracy = max(32, opts.calib_count // 3)
            accuracy = to_batch(prompt_crops(held, n_accuracy, size, opts.seed + 1, model.prompt_crop))
        if model.source is not None:  # the model's own training images (its sidecar) neither calibrate nor score
            trained = model_training_images(model.source.origin)
            check_records(Role.CALIBRATE, [p.record for p in calib_photos], Role.TRAIN, trained)
            check_records(Role.EVALUATE, [p.record for p in held], Role.TRAIN, trained)
    return Calibration(crops, accuracy, tuple(p.record for p in calib_photos), tuple(p.record for p in held))


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


def _accuracy_stage(
    model: ModelInput, calib: Calibration, quantized: Quantized, inp: InputConvention, progress: StageProgress
) -> dict:
    """float vs INT8 (the reference: MCT's network) and the host network's agreement with it.

    With a normalised input (``inp.preprocessor``) both networks get the sensor preprocessor's integers (what the
    camera feeds), and ``preprocessor`` says how far that is from the exact normalisation: the input integers that
    differ, and MCT's masks on the preprocessor's input against its masks on the exactly normalised crops."""
    from converter.accuracy import batched, float_vs_int8, mctq_logits, pixel_agreement, torch_logits
    from imx500_sam.int8 import QdqNetwork
    from imx500_sam.preprocessor import network_input, normalised_input, pixels_of

    with progress.stage("Comparing float, MCT INT8 and the host network", "accuracy"):
        crops_in = calib.accuracy_crops
        result: dict[str, Any] = {"float_vs_int8_miou": None, "crops": len(calib.accuracy_crops)}
        exact = None
        if inp.preprocessor is not None:
            px = pixels_of(calib.accuracy_crops)
            crops_in = network_input(inp.preprocessor, px, float(inp.scale))
            exact = normalised_input(px)  # the authors' normalisation, as _input_stage set the preprocessor for
            result["preprocessor"] = inp.preprocessor.deviation(px, exact, float(inp.scale))
        host = batched(QdqNetwork(quantized.artifacts.qdq_onnx), crops_in)
        if quantized.module is not None and model.source is not None:
            reference = torch_logits(quantized.module, crops_in)
            agreement = float_vs_int8(torch_logits(model.source.module, calib.accuracy_crops), reference)
            result.update(float_vs_int8_miou=agreement.miou, max_abs_logit_diff=agreement.max_abs_logit_diff)
            ref_name = "MCT's quantized torch module"
        else:
            reference = mctq_logits(quantized.artifacts.mctq_onnx, crops_in)
            ref_name = "mct_quantizers' onnxruntime ops on the MCTQ ONNX"
            if exact is not None:
                on_exact = mctq_logits(quantized.artifacts.mctq_onnx, exact)
                result["preprocessor"]["mask_agreement_vs_exact_normalisation"] = float(
                    np.mean((reference > 0) == (on_exact > 0))
                )
        result["emulator_agreement"] = pixel_agreement(host, reference, ref_name).to_dict()
        result["note"] = (
            "on prompt crops of the evaluate photos (report.json's data.accuracy; never calibration or training): "
            "float_vs_int8_miou is the mean IoU of the float "
            "model's masks and MCT's quantized network's (the INT8 reference; null without a float model); "
            "emulator_agreement is the host network (emulator, eval --int8) against that reference, both fed "
            "what the sensor feeds (preprocessor: how far that is from the exact normalisation)"
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


def _package_stage(work: Path, opts: ConvertOptions, progress: StageProgress, inp: InputConvention) -> Packaged:
    from firmware_packaging.packager import package, packager_available, picosam3_intrinsics

    intrinsics = picosam3_intrinsics()
    (work / INTRINSICS_JSON).write_text(json.dumps(intrinsics, indent=2) + "\n")
    pre = inp.preprocessor
    network_info = pre.network_info() if pre is not None and not pre.is_identity() else None
    with progress.stage("Packaging to network.rpk", "package"):
        rpk = None
        available = packager_available()
        if available:
            rpk = package(
                work / PACKER_OUT,
                work,
                color=opts.color_format,
                intrinsics=intrinsics,
                timeout_s=opts.tool_timeout_s,
                network_info=network_info,
            )
        else:
            progress.info("  imx500-package is not here (it runs only on a Raspberry Pi): see report.md")
    return Packaged(rpk, available, intrinsics, network_info)
