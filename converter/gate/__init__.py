"""The IMX500 operator and SRAM gate: a verdict in seconds, before MCT and imxconv-pt run.

Library API (the convert pipeline calls ``check_module`` first)::

    from converter.gate import check_module
    report = check_module(model, input_size=(96, 96))   # GateReport
    report.raise_for_verdict()   # BadInputError / UnsupportedOperatorError / OverBudgetError

``check_model(spec)`` resolves a MODEL argument of ``imx500-sam check`` (checkpoint, ONNX,
``py:package.module:factory``). Light to import: torch / onnx load when a check runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from converter.gate.report import ConverterMemory, Finding, GateReport, MemoryEstimate, SourceLoc
from imx500_sam.procs import DEFAULT_TOOL_TIMEOUT_S

__all__ = [
    "ConverterMemory",
    "Finding",
    "GateReport",
    "MemoryEstimate",
    "SourceLoc",
    "check_model",
    "check_module",
    "check_onnx",
]


def _finish(traced: Any, label: str, size: tuple[int, int], t0: float, extra: list[Finding]) -> GateReport:
    from converter.gate.memory import estimate_memory
    from converter.gate.ops import check_ops

    findings = extra + check_ops(traced)
    memory = estimate_memory(traced) if traced.nodes else None
    report = GateReport(
        model=label,
        input_size=size,
        op_count=sum(1 for n in traced.nodes if n.role == "op"),
        findings=findings,
        memory=memory,
    )
    report.seconds = time.perf_counter() - t0
    return report


def check_module(module: Any, input_size: tuple[int, int] = (96, 96), name: str | None = None) -> GateReport:
    """Trace an nn.Module (torch.fx, as MCT does) at 1x3xHxW; check operators, input limits and SRAM."""
    from converter.gate.load import input_limit_findings
    from converter.gate.trace_torch import trace_module

    t0 = time.perf_counter()
    h, w = input_size
    shape = (1, 3, int(h), int(w))
    label = name or type(module).__name__
    limits = input_limit_findings(shape)
    traced = trace_module(module, shape, name=label)
    return _finish(traced, label, (h, w), t0, limits)


def check_onnx(path: str | Path, input_size: tuple[int, int] | None = None) -> GateReport:
    """Check a float (or MCTQ) ONNX file: op types against the converter's table, input limits, SRAM."""
    from converter.gate.load import input_limit_findings
    from converter.gate.trace_onnx import trace_onnx

    t0 = time.perf_counter()
    traced = trace_onnx(Path(path), input_size)
    shape = traced.input_shape
    limits = input_limit_findings(shape)
    size = (shape[2], shape[3]) if len(shape) == 4 else (0, 0)
    if input_size is not None and len(shape) == 4 and tuple(input_size) != size:
        limits.append(
            Finding(
                "input",
                "input",
                "",
                None,
                f"--input-size {input_size[0]},{input_size[1]} differs from the ONNX model's fixed input {size}",
                "re-export the ONNX model at that size, or drop --input-size",
            )
        )
    return _finish(traced, str(path), size, t0, limits)


def check_model(
    spec: str | Path | None,
    input_size: tuple[int, int] | None = None,
    full: bool = False,
    work_dir: Path | None = None,
    tool_timeout_s: float = DEFAULT_TOOL_TIMEOUT_S,
) -> GateReport:
    """Resolve MODEL (checkpoint / ONNX / py:module:factory) and check it; ``full`` adds imxconv-pt's figure."""
    from converter.gate.load import choose_input_size, resolve_model

    resolved = resolve_model(spec)
    if resolved.onnx_path is not None:
        report = check_onnx(resolved.onnx_path, input_size)
    else:
        size = choose_input_size(input_size, resolved.default_size)
        report = check_module(resolved.module, size, name=resolved.label)
    report.file = resolved.file
    if full and not report.input_errors and not report.unsupported:
        from converter.gate.full import converter_memory

        t0 = time.perf_counter() - report.seconds
        report.converter = converter_memory(resolved, report.input_size, work_dir=work_dir, timeout_s=tool_timeout_s)
        report.seconds = time.perf_counter() - t0
    return report
