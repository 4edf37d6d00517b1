"""The traced op list (``OpNode``, ``TracedModel``) and the operator check that looks every op up in the table.

Two front ends produce the same ``OpNode`` list, in execution (topological) order, with output shapes:
:mod:`converter.gate.trace_torch` (torch.fx, for nn.Modules) and :mod:`converter.gate.trace_onnx` (the ONNX
graph). The operator check here looks each op up in the table; the SRAM estimate (:mod:`converter.gate.memory`)
walks the same list. Neither torch nor onnx is imported here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from converter.gate.report import Finding, SourceLoc
from converter.gate.table import OpEntry, OperatorTable, load_table
from imx500_sam.facts import cite


@dataclass
class OpNode:
    """One operation of the traced model."""

    name: str
    key: str  # table key: "nn.Conv2d", "F.relu", "torch.cat", "Tensor.view", "operator.add" or ONNX op type
    inputs: list[str]  # producer OpNode names (activations only)
    shape: tuple[int, ...] | None  # first output's shape
    module_path: str = ""
    source: SourceLoc | None = None
    params: int = 0  # weight elements (conv / linear)
    out_channels: int = 0
    frontend: str = "torch"  # "torch" | "onnx"
    role: str = "op"  # "op" | "input" | "const"
    is_output: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)
    entry: OpEntry | None = None  # filled by lookup


@dataclass
class TracedModel:
    """The op list of one model and its input shape."""

    name: str
    nodes: list[OpNode]
    input_shape: tuple[int, ...]
    findings: list[Finding] = field(default_factory=list)  # tracing problems


def short_path(path: str) -> str:
    """Path relative to the working directory when inside it (for annotations)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def weight_layout(key: str, shape: tuple[int, ...], groups: int = 1) -> tuple[int, int, int, bool]:
    """(out channels, in channels per group, kernel elements, depthwise) of a conv / linear weight."""
    k = 1
    for d in shape[2:]:
        k *= int(d)
    if "Transpose" in key or "transpose" in key:  # (Cin, Cout/groups, kh, kw)
        cout, cin_pg = int(shape[1]) * groups, int(shape[0]) // max(groups, 1)
    elif key in ("MatMul",):  # ONNX MatMul weight (in, out)
        cout, cin_pg = int(shape[-1]), int(shape[0])
    else:
        cout, cin_pg = int(shape[0]), int(shape[1]) if len(shape) > 1 else 1
    return (cout, cin_pg, k, groups > 1 and cin_pg == 1)


def _condition_holds(entry: OpEntry, node: OpNode) -> tuple[bool, str]:
    """Evaluate a conditional entry's named condition on one node."""
    cond = entry.condition
    if cond == "constant_exponent":
        return bool(node.attrs.get("constant_exponent", True)), "the exponent is an activation (pow of two tensors)"
    if cond == "resize_mode":
        mode = node.attrs.get("mode") or "nearest"
        return mode in ("nearest", "bilinear"), f"resize mode '{mode}' (only nearest and bilinear convert)"
    if cond == "pool_divides_input":
        size = node.attrs.get("output_size")
        shape = node.attrs.get("input_shape")
        sizes = [size] * 2 if isinstance(size, int) else list(size or [])
        if not sizes or all(s == 1 for s in sizes if s is not None):
            return True, ""
        if shape and len(shape) == 4:
            ok = all(s is None or (d % s == 0) for s, d in zip(sizes, shape[2:], strict=False))
            return ok, f"adaptive pool to {size} does not divide the input {shape[2:]}"
        return False, f"adaptive pool to {size} on an input of unknown size"
    return False, f"unknown condition {cond!r}"


_ADD_TO_TABLE = (
    "a supported operator (see imx500_sam/facts/operators.json); if it converts, add it there with its source"
)


def _finding(node: OpNode, op: str, reason: str, entry: OpEntry | None = None) -> Finding:
    """An op the IMX500 cannot run ("unsupported", from its table entry) or the table does not know ("unknown")."""
    return Finding(
        status="unknown" if entry is None else "unsupported",
        op=op,
        module_path=node.module_path,
        source=node.source,
        reason=reason,
        replacement=_ADD_TO_TABLE if entry is None else entry.replacement,
        table_source=None if entry is None else entry.source,
    )


def check_ops(traced: TracedModel, table: OperatorTable | None = None) -> list[Finding]:
    """Look every op up; return one Finding per unsupported, failed-conditional or unknown op."""
    table = table or load_table()
    findings = list(traced.findings)
    for node in traced.nodes:
        if node.role != "op":
            continue
        entry = table.onnx(node.key) if node.frontend == "onnx" else table.torch(node.key)
        node.entry = entry
        op = f"onnx:{node.key}" if node.frontend == "onnx" else node.key
        if entry is None:
            findings.append(_finding(node, op, "not in the IMX500 operator table, so the gate cannot vouch for it"))
        elif entry.status == "unsupported":
            findings.append(_finding(node, op, f"not supported on the IMX500 ({cite(entry.source)})", entry))
        elif entry.status == "conditional":
            ok, why = _condition_holds(entry, node)
            if not ok:
                condition = table.conditions.get(entry.condition or "", "")
                reason = f"{why}; supported only when {condition} ({cite(entry.source)})"
                findings.append(_finding(node, op, reason, entry))
    return findings
