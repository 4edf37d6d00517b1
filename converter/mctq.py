"""The MCTQ ONNX (what ``imxconv-pt`` compiles) and the host network derived from it.

An MCTQ ONNX is MCT's export with its quantizers as custom ops in the ``mct_quantizers`` domain.
onnxruntime runs it only with mct_quantizers' Python kernels (about one crop per second), so the
host-side INT8 network (emulator, ``eval --int8``, the report's accuracy) is derived from the same
graph by a rewrite that keeps every number:

- a weight quantizer becomes its quantized weights: for an 8-bit symmetric / power-of-two
  quantizer, the integers (int8, rounded as mct_quantizers' kernels for the file round them) and per-channel
  scales in a ``DequantizeLinear`` (``q * scale`` in float32, as MCT computes it); otherwise the
  dequantized float32 values;
- an activation quantizer becomes ``QuantizeLinear`` -> ``DequantizeLinear`` with the same scale,
  zero point and range (``Clip`` first when the range is narrower than the 8-bit type), rounding
  half to even as MCT does; a quantizer that is not 8-bit becomes the explicit arithmetic
  ``Mul(Round(Clip(x) / scale), scale)``.

Run the result with :class:`imx500_sam.int8.QdqNetwork`, which keeps onnxruntime from re-quantizing
it (see there). Needs ``onnx`` and ``numpy`` only (no torch, no MCT).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imx500_sam.errors import BadInputError, clip_words

MCTQ_DOMAIN = "mct_quantizers"
ACTIVATION_OPS = ("ActivationPOTQuantizer", "ActivationSymmetricQuantizer", "ActivationUniformQuantizer")
WEIGHT_OPS = ("WeightsPOTQuantizer", "WeightsSymmetricQuantizer", "WeightsUniformQuantizer")


@dataclass(frozen=True)
class ActivationQuant:
    """One activation quantizer: y = clip(round(x / scale) + zero_point, qmin, qmax) - zero_point) * scale."""

    scale: float
    zero_point: int
    qmin: int
    qmax: int
    num_bits: int

    @property
    def signed(self) -> bool:
        """Whether the integer grid has negative values."""
        return self.qmin < 0


@dataclass
class HostNetwork:
    """What the rewrite did: the MCTQ file, the derived file, and what it replaced."""

    mctq_onnx: Path
    path: Path
    input_name: str
    input_shape: tuple[Any, ...]
    input_quant: ActivationQuant | None  # the quantizer right after the input (the sensor's pixel grid)
    replaced: Counter[str] = field(default_factory=Counter)
    int8_weights: int = 0
    float_weights: int = 0


def is_mctq(model_or_path: Any) -> bool:
    """True when an ONNX model (or file) contains MCT quantizer nodes (an MCTQ export)."""
    model = load_onnx(model_or_path) if isinstance(model_or_path, (str, Path)) else model_or_path
    return any(n.domain == MCTQ_DOMAIN for n in model.graph.node)


def load_onnx(path: str | Path) -> Any:
    """An ONNX model from a file; BadInputError when missing or not ONNX."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"{p}: no such ONNX file.", hint="Give the path of a .onnx file.")
    try:
        return onnx.load(str(p))
    except Exception as exc:  # onnx raises DecodeError and others
        raise BadInputError(f"{p}: not an ONNX file ({clip_words(str(exc), 120)}).", hint="Give a .onnx file.") from exc


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _channel_shape(ndim: int, axis: int) -> tuple[int, ...]:
    shape = [1] * ndim
    shape[axis] = -1
    return tuple(shape)


def _adjust_range_to_include_zero(lo: np.ndarray, hi: np.ndarray, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """mct_quantizers.common.quant_utils.adjust_range_to_include_zero, same arithmetic."""
    scale = (hi - lo) / (2**n_bits - 1)
    lo_adj = scale * np.round(lo / scale)
    hi_adj = hi - lo + lo_adj
    min_positive = lo > 0
    max_negative = hi < 0
    mid = np.logical_and(np.logical_not(min_positive), np.logical_not(max_negative))
    lo_adj = lo_adj * mid + max_negative * lo
    hi_adj = hi_adj * mid + min_positive * hi
    return np.minimum(lo_adj, 0), np.maximum(hi_adj, 0)


def activation_quant(op: str, attrs: dict[str, Any]) -> ActivationQuant:
    """The integer grid of an activation quantizer node (mct_quantizers' formulas)."""
    bits = int(attrs["num_bits"])
    if op in ("ActivationPOTQuantizer", "ActivationSymmetricQuantizer"):
        threshold = np.float32(attrs["threshold"])
        if attrs.get("signed", 0):
            return ActivationQuant(float(threshold / 2 ** (bits - 1)), 0, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1, bits)
        return ActivationQuant(float(threshold / 2**bits), 0, 0, 2**bits - 1, bits)
    if op == "ActivationUniformQuantizer":
        lo, hi = _adjust_range_to_include_zero(np.float32(attrs["min_range"]), np.float32(attrs["max_range"]), bits)
        scale = float((hi - lo) / (2**bits - 1))
        zp = int(np.round(-lo / scale))
        return ActivationQuant(scale, zp, 0, 2**bits - 1, bits)
    raise BadInputError(f"MCTQ activation quantizer {op} is not supported by the host-network rewrite.")


def quantized_weights(
    op: str, weight: np.ndarray, params: list[np.ndarray], attrs: dict[str, Any], rounding: str = "mct_quantizers"
) -> np.ndarray:
    """The float32 weights an MCT weight quantizer node stands for: ``q * scale`` in float32.

    Symmetric / power-of-two: the integer ``q`` is ``w / scale`` rounded half to even, computed as
    ``rounding`` says. The three ways differ only for a weight within a float32 rounding of a .5 tie
    (3 of the default model's 1.37M weights), and each such weight moves about 0.3% of mask pixels:
    - ``mct_quantizers`` (default): ``w / scale`` in float32, what mct_quantizers' onnxruntime kernel computes:
      the arithmetic of the MCTQ file itself, the file ``imxconv-pt`` compiles;
    - ``torch``: ``w * (1 / scale)`` in float32, what MCT's quantized torch module computes
      (``torch.fake_quantize_per_channel_affine``). On PTQ-hostile (random-weight) networks the torch module
      and mct_quantizers' ops on its own export disagree on up to 3% of mask pixels
      (``benchmarks/results/int8_random.json``): the host network follows the file;
    - ``exact``: the quotient in float64 (the correctly rounded integer).
    Uniform: mct_quantizers' float32 arithmetic.
    """
    bits = int(attrs["num_bits"])
    axis = int(attrs.get("channel_axis", 0))
    per_channel = bool(attrs.get("per_channel", 0))
    shape = _channel_shape(weight.ndim, axis) if per_channel else ()
    if op in ("WeightsPOTQuantizer", "WeightsSymmetricQuantizer"):
        threshold = np.reshape(params[0].astype(np.float32), shape)
        scale = threshold / np.float32(2 ** (bits - 1))  # exact: a power-of-two divisor
        w = weight.astype(np.float32)
        if rounding == "torch":
            quotient = w * (np.float32(1.0) / scale)
        elif rounding == "mct_quantizers":  # clip in the real domain first, as mct_quantizers does
            quotient = np.clip(w, -threshold, threshold - scale) / scale
        elif rounding == "exact":
            quotient = w.astype(np.float64) / scale.astype(np.float64)
        else:
            raise ValueError(f"rounding {rounding!r}: torch, mct_quantizers or exact")
        q = np.clip(np.round(quotient), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        return (q.astype(np.float32) * scale).astype(np.float32)
    if op == "WeightsUniformQuantizer":
        a, b = _adjust_range_to_include_zero(params[0].astype(np.float32), params[1].astype(np.float32), bits)
        scale = np.reshape((b - a) / (2**bits - 1), shape)
        lo, hi = np.reshape(a, shape), np.reshape(b, shape)
        clipped = np.where(weight < lo, lo, weight)
        return (np.round(np.where(weight > hi, hi, clipped) / scale) * scale).astype(np.float32)
    raise BadInputError(f"MCTQ weight quantizer {op} is not supported by the host-network rewrite.")


def _int8_form(
    op: str, weight: np.ndarray, params: list[np.ndarray], attrs: dict[str, Any], expected: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(int8 values, per-channel float32 scale, axis) whose DequantizeLinear equals ``expected`` bit for bit."""
    if op not in ("WeightsPOTQuantizer", "WeightsSymmetricQuantizer") or int(attrs["num_bits"]) > 8:
        return None
    axis = int(attrs.get("channel_axis", 0)) if attrs.get("per_channel", 0) else 0
    threshold = params[0].astype(np.float32).reshape(-1)
    scale = (threshold / np.float32(2 ** (int(attrs["num_bits"]) - 1))).astype(np.float32)
    if scale.size == 1:
        scale = np.repeat(scale, weight.shape[axis])
    if scale.size != weight.shape[axis] or np.any(scale <= 0):
        return None
    shape = _channel_shape(weight.ndim, axis)
    q = np.round(expected / scale.reshape(shape))
    if q.min() < -128 or q.max() > 127:
        return None
    q8 = q.astype(np.int8)
    if not np.array_equal(q8.astype(np.float32) * scale.reshape(shape), expected):
        return None
    return q8, scale, axis


def derive_host_network(mctq_path: str | Path, out_path: str | Path, rounding: str = "mct_quantizers") -> HostNetwork:
    """Rewrite an MCTQ ONNX into a standard ONNX (QuantizeLinear/DequantizeLinear) at ``out_path``.

    ``rounding``: how weight integers are rounded (``quantized_weights``; default: as mct_quantizers' ops do).
    """
    import onnx
    from onnx import helper, numpy_helper

    src = Path(mctq_path)
    model = load_onnx(src)
    if not is_mctq(model):
        raise BadInputError(
            f"{src}: no mct_quantizers nodes: not an MCTQ export.",
            hint="Export with mct.exporter.pytorch_export_model(..., quantization_format=QuantizationFormat.MCTQ).",
        )
    graph = model.graph
    values: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            a = _attrs(node)
            if "value" in a:
                values[node.output[0]] = numpy_helper.to_array(a["value"])

    new_nodes: list[Any] = []
    new_inits: list[Any] = []
    info = HostNetwork(src, Path(out_path), "", (), None)
    graph_input = graph.input[0].name
    unknown = sorted({n.op_type for n in graph.node if n.domain == MCTQ_DOMAIN} - set(ACTIVATION_OPS + WEIGHT_OPS))
    if unknown:
        raise BadInputError(
            f"{src}: MCT quantizer op(s) {', '.join(unknown)} have no host-network rewrite "
            "(symmetric, power-of-two and uniform quantizers do).",
            hint="Quantize with MCT's default IMX500 target platform.",
        )

    for node in graph.node:
        if node.domain != MCTQ_DOMAIN:
            new_nodes.append(node)
            continue
        attrs = _attrs(node)
        info.replaced[node.op_type] += 1
        out = node.output[0]
        if node.op_type in WEIGHT_OPS:
            try:
                weight = values[node.input[0]].astype(np.float32)
                params = [values[i] for i in node.input[1:]]
            except KeyError as exc:
                raise BadInputError(f"{src}: weight quantizer {node.name} does not quantize a constant.") from exc
            expected = quantized_weights(node.op_type, weight, params, attrs, rounding)
            int8 = _int8_form(node.op_type, weight, params, attrs, expected)
            if int8 is None:
                new_inits.append(numpy_helper.from_array(expected, out))  # the node's output, now a constant
                info.float_weights += 1
                continue
            q8, scale, axis = int8
            new_inits += [
                numpy_helper.from_array(q8, f"{out}__int8"),
                numpy_helper.from_array(scale, f"{out}__scale"),
                numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), f"{out}__zp"),
            ]
            new_nodes.append(
                helper.make_node(
                    "DequantizeLinear", [f"{out}__int8", f"{out}__scale", f"{out}__zp"], [out],
                    name=f"{node.name}__dq", axis=axis,
                )
            )  # fmt: skip
            info.int8_weights += 1
            continue
        quant = activation_quant(node.op_type, attrs)
        if node.input[0] == graph_input:
            info.input_quant = quant
        new_nodes += _activation_nodes(node, quant, new_inits)

    used = {i for n in new_nodes for i in n.input}
    kept = [t for t in graph.initializer if t.name in used and t.name not in {i.name for i in new_inits}]
    del graph.node[:]
    graph.node.extend(new_nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    del model.opset_import[:]
    model.opset_import.extend([helper.make_opsetid("", _opset(model, 20))])
    model.producer_name = "imx500-sam (derived from an MCTQ ONNX)"
    _drop_unused_constants(graph)
    onnx.checker.check_model(model)
    info.input_name = graph.input[0].name
    info.input_shape = tuple(
        d.dim_value if d.HasField("dim_value") else d.dim_param for d in graph.input[0].type.tensor_type.shape.dim
    )
    dest = Path(out_path)
    tmp = dest.with_name(f".{dest.name}.tmp")
    onnx.save(model, str(tmp))
    tmp.replace(dest)
    return info


def _opset(model: Any, minimum: int) -> int:
    return max([minimum] + [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")])


def _activation_nodes(node: Any, q: ActivationQuant, inits: list[Any]) -> list[Any]:
    """QuantizeLinear -> DequantizeLinear (8-bit) or the explicit arithmetic for other widths."""
    from onnx import helper, numpy_helper

    x, out, name = node.input[0], node.output[0], node.name or node.output[0]
    nodes = []
    scale = numpy_helper.from_array(np.array(q.scale, np.float32), f"{out}__scale")
    inits.append(scale)
    if q.num_bits == 8:
        dtype = np.int8 if q.signed else np.uint8
        inits.append(numpy_helper.from_array(np.array(q.zero_point, dtype), f"{out}__zp"))
        zp = f"{out}__zp"
        nodes.append(helper.make_node("QuantizeLinear", [x, scale.name, zp], [f"{out}__q"], name=f"{name}__q"))
        nodes.append(helper.make_node("DequantizeLinear", [f"{out}__q", scale.name, zp], [out], name=f"{name}__dq"))
        return nodes
    lo = np.float32((q.qmin - q.zero_point) * q.scale)
    hi = np.float32((q.qmax - q.zero_point) * q.scale)
    inits += [numpy_helper.from_array(lo, f"{out}__lo"), numpy_helper.from_array(hi, f"{out}__hi")]
    # clip in the real domain, then round (half to even) on the grid: mct_quantizers' order
    nodes += [
        helper.make_node("Clip", [x, f"{out}__lo", f"{out}__hi"], [f"{out}__c"], name=f"{name}__clip"),
        helper.make_node("Div", [f"{out}__c", scale.name], [f"{out}__d"], name=f"{name}__div"),
        helper.make_node("Round", [f"{out}__d"], [f"{out}__r"], name=f"{name}__round"),
        helper.make_node("Mul", [f"{out}__r", scale.name], [out], name=f"{name}__mul"),
    ]
    return nodes


def _drop_unused_constants(graph: Any) -> None:
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    keep = [n for n in graph.node if not (n.op_type == "Constant" and n.output[0] not in used)]
    if len(keep) != len(graph.node):
        del graph.node[:]
        graph.node.extend(keep)


def read_input_size(path: str | Path) -> tuple[int, int]:
    """(H, W) of an ONNX model's fixed 1x3xHxW (or Nx3xHxW) input; BadInputError otherwise."""
    model = load_onnx(path)
    dims = [d.dim_value if d.HasField("dim_value") else None for d in model.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[1] != 3 or not dims[2] or not dims[3]:
        raise BadInputError(f"{path}: input shape {dims}: expected N x 3 x H x W with a fixed H and W.")
    return (int(dims[2]), int(dims[3]))


def count_parameters(path: str | Path) -> int:
    """Parameters of an MCTQ ONNX: the elements of its weight and bias initializers (BatchNorm folded in)."""
    model = load_onnx(path)
    return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer))
