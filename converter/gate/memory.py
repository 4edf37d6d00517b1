"""SRAM estimate without the tools: INT8 weights + peak live activations + the persistent input.

The schedule model follows what imxconv-pt 3.19.2 does (read from its ``.pbtxt`` per-layer
``RuntimeMemory`` and ``ScheduleId``, fitted and validated by benchmarks/gate_memory.py):

- operations run in the traced (topological) order;
- BatchNorm and activations fold into the convolution / linear / add that produces their input;
  a convolution whose only consumer is an add writes straight into the add's output;
  reshapes, dropout, identity and quantizer nodes share their input's buffer;
- each remaining output is one buffer, alive from its producing step to its last consumer;
  feature maps are stored with channels padded to a multiple of ``CHANNEL_ALIGN``;
- at each step the live buffers (the step's inputs, its output, everything still needed later)
  add up; the peak over the schedule is the runtime activation memory;
- the input tensor persists for the whole run (C*H*W bytes + one 4 KiB page);
- weights: INT8 weights plus per-output-channel and per-layer overheads (fitted constants).
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
# Weights (fitted on 5 PicoSAM3 widths, max error 1.5%, benchmarks/gate_memory.py): a convolution's
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
    module_path: str
    op: str


def tensor_bytes(shape: tuple[int, ...] | None) -> int:
    """INT8 bytes of one activation tensor as the converter lays it out (batch dropped)."""
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
    kind = {n.name: (n.entry.kind if n.entry else ("const" if n.role != "op" else "other")) for n in nodes}
    consumers: dict[str, list[str]] = {n.name: [] for n in nodes}
    for n in nodes:
        for i in n.inputs:
            if i in consumers:
                consumers[i].append(n.name)
    # buffer[name] = the buffer a node's output lives in (after fusion and aliasing)
    buffer_of: dict[str, str] = {}
    step_of: dict[str, int] = {}
    fused_into: dict[str, str] = {}  # conv -> add that writes its output
    by_name = {n.name: n for n in nodes}
    for n in nodes:
        if kind[n.name] == "eltwise" and n.key in _ADD_KEYS:
            for i in n.inputs:
                if kind.get(i) == "conv" and consumers[i] == [n.name] and i not in fused_into:
                    fused_into[i] = n.name
                    break
    buffers: dict[str, _Buffer] = {}
    input_name = next((n.name for n in nodes if n.role == "input"), None)
    step = 0
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
            producer = by_name.get(n.inputs[0])
            fusable = producer is not None and kind.get(producer.name) in _FUSE_INTO | {"act", "norm"}
            if fusable and len(consumers[n.inputs[0]]) == 1:
                buffer_of[n.name] = src
                continue
        step += 1
        step_of[n.name] = step
        if n.name in fused_into:
            # written by the add: its inputs are read at the add's step
            buffer_of[n.name] = f"@{fused_into[n.name]}"
            continue
        buffers[n.name] = _Buffer(n.name, tensor_bytes(n.shape), step, step, n.module_path, n.key)
        buffer_of[n.name] = n.name
        if f"@{n.name}" in buffer_of.values():
            pass
    # uses: every consumer extends the life of the buffer its input lives in
    for n in nodes:
        s = step_of.get(n.name)
        if s is None:
            continue
        reads = list(n.inputs)
        for conv, add in fused_into.items():
            if add == n.name:
                reads += by_name[conv].inputs
        for i in reads:
            b = buffer_of.get(i)
            if b and b.startswith("@"):
                b = b[1:]
            if b in buffers:
                buffers[b].end = max(buffers[b].end, s)
    for conv, add in fused_into.items():
        if add in buffers and conv in step_of:
            buffers[add].start = min(buffers[add].start, step_of[conv])
    last = step
    for n in nodes:
        if n.is_output:
            b = buffer_of.get(n.name, "")
            if b in buffers:
                buffers[b].end = last
    peak, peak_at = 0, None
    for s in range(1, last + 1):
        live = [b for name, b in buffers.items() if name != input_name and b.start <= s <= b.end]
        total = sum(b.nbytes for b in live)
        if total > peak:
            peak = total
            peak_at = max((b for b in live if b.start == s), key=lambda b: b.nbytes, default=None) or max(
                live, key=lambda b: b.nbytes
            )
    in_shape = traced.input_shape
    input_bytes = math.prod(in_shape[1:]) + INPUT_PAGE_BYTES if len(in_shape) >= 2 else 0
    return MemoryEstimate(
        weights_bytes=weight_bytes(nodes),
        activations_bytes=peak,
        input_persistence_bytes=input_bytes,
        reserved_bytes=RESERVED_BYTES,
        peak_op=peak_at.op if peak_at else "",
        peak_module_path=peak_at.module_path if peak_at else "",
        available_bytes=available,
    )
