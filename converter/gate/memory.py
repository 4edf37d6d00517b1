"""SRAM estimate without the tools: INT8 weights + peak live activations + the persistent input.

The schedule model follows what imxconv-pt 3.19.2 does (read from its ``.pbtxt`` per-layer
``RuntimeMemory`` and ``ScheduleId``; validated by ``python -m benchmarks.gate_bench corpus``):

- operations run in the traced (topological) order;
- BatchNorm and ReLU-like activations / sigmoid fold into the op that produces their input;
  a convolution whose only consumer is an add writes straight into the add's output;
  reshapes, dropout, identity and quantizer nodes share their input's buffer;
- each remaining output is one buffer, alive from its producing step to its last consumer;
  feature maps are stored with channels padded to a multiple of ``CHANNEL_ALIGN``;
- at each step the live buffers (the step's inputs, its output, everything still needed later)
  add up; the peak over the schedule is the runtime activation memory;
- the input tensor persists for the whole run (C*H*W bytes + one 4 KiB page);
- weights: INT8 weights in the padded layout plus a per-output-channel overhead (fitted).

The converter's own planner does more (layout transforms, space-to-depth for some strided
convolutions, matmul split per channel): on small models of unusual shape the estimate is off by
10-15 % in either direction (tens of kB); on models near the budget, dominated by large feature maps
and weights, it is within 1 % (benchmarks/results/gate_corpus.json).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from converter.gate.ops import OpNode, TracedModel
from converter.gate.report import MemoryEstimate
from converter.gate.table import load_table
from imx500_sam.facts import SRAM_AVAILABLE_BYTES

CHANNEL_ALIGN = 32  # feature-map channels are padded to this (pbtxt RuntimeMemory: 48ch -> 64ch)
INPUT_PAGE_BYTES = 4096  # MemoryReport "Input Persistence Cost" = C*H*W + 4096 at 96..192 px
RESERVED_BYTES = 1024  # MemoryReport "Reserved Memory"
# Weights (fitted on 5 PicoSAM3 widths, max error 1.5%): a convolution's
# INT8 weights are stored with input channels (per group) and output channels padded to WEIGHT_ALIGN,
# a depthwise one with its channels padded; plus WEIGHT_PER_CHANNEL bytes per output channel
# (bias and requantisation parameters).
WEIGHT_ALIGN = 32
WEIGHT_PER_CHANNEL = 9.5

_FUSE_INTO = {"conv", "linear", "eltwise", "pool", "resize", "concat"}
_ADD_KEYS = {"operator.add", "torch.add", "Tensor.add", "operator.iadd", "Add"}


@dataclass
class _Buffer:
    name: str
    nbytes: int
    start: int
    end: int


def tensor_bytes(shape: tuple[int, ...] | None) -> int:
    """INT8 bytes of one activation tensor as the converter lays it out (batch dropped): feature maps
    have their channels padded to a multiple of CHANNEL_ALIGN (pbtxt RuntimeMemory: 48 -> 64, 80 -> 96)."""
    if not shape:
        return 0
    dims = list(shape[1:]) if len(shape) >= 2 else list(shape)
    if len(dims) == 3:  # C, H, W
        c, h, w = dims
        if h * w > 1:
            c = math.ceil(c / CHANNEL_ALIGN) * CHANNEL_ALIGN
        return c * h * w
    return math.prod(dims)


def _up(x: int, a: int) -> int:
    return math.ceil(x / a) * a


def weight_bytes(nodes: list[OpNode]) -> int:
    """INT8 weights as the converter stores them (padded layout + per-channel parameters)."""
    total = 0.0
    for n in nodes:
        layout = n.attrs.get("weight")
        if layout is not None:
            cout, cin_pg, k, depthwise = layout
            if depthwise:
                total += _up(cout, WEIGHT_ALIGN) * k
            else:
                total += _up(cin_pg, WEIGHT_ALIGN) * _up(cout, WEIGHT_ALIGN) * k
            total += WEIGHT_PER_CHANNEL * cout
        elif n.params:  # other ops with parameters (unknown or unsupported): count them plainly
            total += n.params
    return int(round(total))


def estimate_memory(traced: TracedModel, available: int = SRAM_AVAILABLE_BYTES) -> MemoryEstimate:
    """Estimate the converter's 'Memory Usage' for a traced model (ops looked up or not)."""
    table = load_table()
    nodes = traced.nodes
    for n in nodes:
        if n.entry is None and n.role == "op":
            n.entry = table.onnx(n.key) if n.frontend == "onnx" else table.torch(n.key)
    by_name = {n.name: n for n in nodes}
    kind = {n.name: (n.entry.kind if n.entry else ("const" if n.role != "op" else "other")) for n in nodes}
    consumers: dict[str, list[str]] = {n.name: [] for n in nodes}
    for n in nodes:
        for i in n.inputs:
            if i in consumers:
                consumers[i].append(n.name)
    input_name = next((n.name for n in nodes if n.role == "input"), None)

    # 1. fusion and aliasing: buffer_of[node] = the node whose buffer holds its output
    fused_into: dict[str, str] = {}  # conv -> the add it writes into
    for n in nodes:
        if n.key in _ADD_KEYS:
            for i in n.inputs:
                if kind.get(i) == "conv" and consumers[i] == [n.name] and i not in fused_into:
                    fused_into[i] = n.name
                    break
    buffer_of: dict[str, str] = {}
    steps: list[OpNode] = []  # nodes that run as a step, in order
    for n in nodes:
        k = kind[n.name]
        if n.role == "input":
            buffer_of[n.name] = n.name
            continue
        if n.role == "const" or k == "const" or not n.inputs:
            continue
        src = buffer_of.get(n.inputs[0])
        if k == "alias" and src is not None:
            buffer_of[n.name] = src
            continue
        if k in ("act", "norm") and src is not None and src != input_name:
            fusable = kind.get(n.inputs[0]) in _FUSE_INTO | {"act", "norm"}
            if fusable and len(consumers[n.inputs[0]]) == 1:
                buffer_of[n.name] = src
                continue
        if n.name in fused_into:
            buffer_of[n.name] = fused_into[n.name]
            continue
        buffer_of[n.name] = n.name
        steps.append(n)

    # 2. lifetimes: from the producing step to the last step that reads the buffer
    buffers: dict[str, _Buffer] = {}
    for step, n in enumerate(steps, start=1):
        buffers[n.name] = _Buffer(n.name, tensor_bytes(n.shape), step, step)
        for i in _reads(n, fused_into, by_name):
            b = buffers.get(buffer_of.get(i, ""))
            if b is not None:
                b.end = step
    last = len(steps)
    for n in nodes:
        b = buffers.get(buffer_of.get(n.name, ""))
        if n.is_output and b is not None:
            b.end = last

    # 3. the peak over the schedule (the model input is counted apart: it persists)
    peak, peak_at = 0, None
    for step in range(1, last + 1):
        total = sum(b.nbytes for b in buffers.values() if b.start <= step <= b.end)
        if total > peak:
            peak, peak_at = total, steps[step - 1]
    in_shape = traced.input_shape
    input_bytes = math.prod(in_shape[1:]) + INPUT_PAGE_BYTES if len(in_shape) >= 2 else 0
    return MemoryEstimate(
        weights_bytes=weight_bytes(nodes),
        activations_bytes=peak,
        input_persistence_bytes=input_bytes,
        reserved_bytes=RESERVED_BYTES,
        peak_op=peak_at.key if peak_at else "",
        peak_module_path=peak_at.module_path if peak_at else "",
        available_bytes=available,
    )


def _reads(n: OpNode, fused_into: dict[str, str], by_name: dict[str, OpNode]) -> list[str]:
    """The inputs a step reads: its own, plus those of a convolution fused into it."""
    reads = [i for i in n.inputs if i not in fused_into]
    for conv, add in fused_into.items():
        if add == n.name:
            reads += by_name[conv].inputs
    return reads
