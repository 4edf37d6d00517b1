"""A float ONNX of a PicoSAM network (e.g. the authors' ``PicoSAM3_SAM3_student_best.onnx``) -> the PicoSAM module.

No general ONNX-to-PyTorch converter: the published architecture is recognised from the graph's structure and its
weights are loaded into :class:`~imx500_sam.model.PicoSAM3` / :class:`~imx500_sam.model.PicoSAM2` exactly.

- ``torch.onnx.export`` in eval mode folds every BatchNorm into the convolution before it and renames those
  weights (``onnx::Conv_243``), so names cannot be relied on. The convolutions are matched by structure instead:
  each of the module's convolutions, in execution order, takes the next unused ONNX ``Conv`` (file order, which is
  topological) with the same kernel shape, groups, stride, dilation and padding. The widths come from the graph.
- A folded convolution's bias becomes its BatchNorm's shift (the BatchNorm made an identity); an unfolded
  ``BatchNormalization`` after a ``Conv`` loads as it is.
- The rebuilt module must compute what the graph computes: every other operator of the graph is checked to be
  one the architecture has (ReLU, nearest 2x Resize, Add; PicoSAM3: global average pool, Sigmoid, Mul), and when
  onnxruntime is installed the two outputs are compared on a random input.

The graph takes ImageNet-normalised RGB (normalisation outside, as the authors export it); the module returned
is wrapped in :class:`~imx500_sam.model.SensorInput` like a ``.pt`` checkpoint. Needs ``onnx`` (not onnxruntime).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from imx500_sam.errors import BadInputError, clip_words
from imx500_sam.model.picosam import PicoSAM2, PicoSAM3, PicoSAMConfig

MCT_DOMAIN = "mct_quantizers"
# operators the architecture has besides Conv / BatchNormalization (and the helpers exporters add)
_COMMON_OPS = {"Relu", "Add", "Resize", "Upsample"}
_ECA_OPS = {"GlobalAveragePool", "ReduceMean", "Sigmoid", "Mul"}
_HELPER_OPS = {"Constant", "Identity", "Shape", "Gather", "Cast", "Concat", "Slice", "Unsqueeze", "ConstantOfShape"}
VERIFY_TOLERANCE = 1e-4  # relative to the largest logit


class NotPicoSAMOnnx(BadInputError):
    """An ONNX file that is not a PicoSAM float network (an MCTQ export, another network): exit 2 as any bad input;
    ``imx500-sam check`` catches it to check the graph as it is."""


@dataclass(frozen=True)
class _OnnxConv:
    """One ``Conv`` node: its weights, bias, attributes, and the BatchNormalization after it (if any)."""

    name: str
    weight: np.ndarray
    bias: np.ndarray | None
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[int, int]
    groups: int
    bn: dict[str, np.ndarray] | None  # scale, B, mean, var (+ epsilon as a 0-d array)

    @property
    def signature(self) -> tuple:
        return (tuple(self.weight.shape), self.stride, self.dilation, self.padding, self.groups)


def _signature(conv: nn.Conv2d) -> tuple:
    pad = conv.padding if isinstance(conv.padding, tuple) else (0, 0)
    return (tuple(conv.weight.shape), tuple(conv.stride), tuple(conv.dilation), tuple(pad), conv.groups)


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _values(graph: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and "value" in (a := _attrs(node)):
            values[node.output[0]] = numpy_helper.to_array(a["value"])
        elif node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    return values


def _convs(graph: Any, values: dict[str, np.ndarray], where: Path) -> list[_OnnxConv]:
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    out = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        a = _attrs(node)
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise BadInputError(f"{where}: Conv {node.name} uses auto_pad: not an export of a PicoSAM network.")
        if node.input[1] not in values:
            raise BadInputError(f"{where}: Conv {node.name} has weights computed at run time: not a PicoSAM export.")
        weight = values[node.input[1]].astype(np.float32)
        bias = values[node.input[2]].astype(np.float32) if len(node.input) > 2 and node.input[2] else None
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
            raise BadInputError(f"{where}: Conv {node.name} pads {pads} unevenly: not a PicoSAM network.")
        bn = None
        users = consumers.get(node.output[0], [])
        if len(users) == 1 and users[0].op_type == "BatchNormalization":
            b = users[0]
            try:
                names = ("scale", "B", "mean", "var")
                bn = {k: values[n].astype(np.float32) for k, n in zip(names, b.input[1:5], strict=True)}
            except KeyError as exc:
                raise BadInputError(f"{where}: BatchNormalization {b.name} has non-constant parameters.") from exc
            bn["epsilon"] = np.float32(_attrs(b).get("epsilon", 1e-5))
        out.append(
            _OnnxConv(
                node.name or node.output[0],
                weight,
                bias,
                tuple(int(v) for v in a.get("strides", [1, 1])),
                tuple(int(v) for v in a.get("dilations", [1, 1])),
                (int(pads[0]), int(pads[1])),
                int(a.get("group", 1)),
                bn,
            )
        )
    return out


def _candidate(convs: list[_OnnxConv]) -> tuple[str, type[nn.Module], PicoSAMConfig]:
    """(layout name, class, widths) the graph's convolutions point to (positions in execution order)."""
    dilated = [c for c in convs if c.dilation != (1, 1)]
    if len(convs) == 31 and len(dilated) == 1:
        name, cls, dec = "picosam3", PicoSAM3, (17, 20, 23, 26)
    elif len(convs) == 27 and not dilated:
        name, cls, dec = "picosam2", PicoSAM2, (15, 18, 21, 24)
    else:
        raise BadInputError(
            f"{len(convs)} convolutions ({len(dilated)} dilated): PicoSAM3 has 31 (one dilated), PicoSAM2 27 (none)."
        )
    down = [c for c in convs if c.stride == (2, 2)]
    if len(down) != 4:
        raise BadInputError(f"{len(down)} stride-2 convolutions: PicoSAM has 4.")
    try:
        cfg = PicoSAMConfig(
            encoder=tuple(int(c.weight.shape[0]) for c in down),
            bottleneck=int(convs[13].weight.shape[0]),
            decoder=tuple(int(convs[i].weight.shape[0]) for i in dec),
            input_size=96,
        )
    except ValueError as exc:
        raise BadInputError(str(exc)) from exc
    return name, cls, cfg


def _module_convs(net: nn.Module, size: int) -> list[tuple[nn.Conv2d, nn.BatchNorm2d | None]]:
    """The network's convolutions in execution order, each with the BatchNorm that follows it (if any)."""
    bn_after: dict[int, nn.BatchNorm2d] = {}
    for seq in net.modules():
        if isinstance(seq, nn.Sequential):
            mods = list(seq)
            for a, b in itertools.pairwise(mods):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    bn_after[id(a)] = b
    order: list[nn.Conv2d] = []
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    hooks = [m.register_forward_hook(lambda mod, _i, _o: order.append(mod)) for m in convs]
    try:
        with torch.inference_mode():
            net(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
    return [(c, bn_after.get(id(c))) for c in order]


def _load(net: nn.Module, convs: list[_OnnxConv], size: int) -> None:
    """Copy the graph's weights into ``net`` (matched by structure); BadInputError naming the first misfit."""
    unused = list(range(len(convs)))
    with torch.no_grad():
        for k, (conv, bn) in enumerate(_module_convs(net, size)):
            sig = _signature(conv)
            pick = next((i for i in unused if convs[i].signature == sig), None)
            if pick is None:
                raise BadInputError(
                    f"no Conv in the graph fits convolution {k} of the architecture "
                    f"(weight {list(sig[0])}, stride {sig[1]}, dilation {sig[2]}, padding {sig[3]}, groups {sig[4]})."
                )
            unused.remove(pick)
            src = convs[pick]
            conv.weight.copy_(torch.from_numpy(src.weight))
            if bn is None:
                if conv.bias is None and src.bias is not None and src.bias.any():
                    raise BadInputError(f"Conv {src.name} has a bias where the architecture has none.")
                if conv.bias is not None:
                    conv.bias.copy_(torch.from_numpy(src.bias) if src.bias is not None else torch.zeros_like(conv.bias))
                continue
            if src.bn is not None:  # BatchNorm exported as it is
                bn.weight.copy_(torch.from_numpy(src.bn["scale"]))
                bn.bias.copy_(torch.from_numpy(src.bn["B"]))
                bn.running_mean.copy_(torch.from_numpy(src.bn["mean"]))
                bn.running_var.copy_(torch.from_numpy(src.bn["var"]))
                bn.eps = float(src.bn["epsilon"])
                shift = src.bias
                if shift is not None and shift.any():  # a conv bias before the BN: fold it into the BN's mean
                    bn.running_mean.sub_(torch.from_numpy(shift))
            else:  # folded into the conv: the BN becomes an identity carrying the conv's bias
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(src.bias) if src.bias is not None else torch.zeros_like(bn.bias))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)  # sqrt(var + eps) == 1: exact, and kept when re-saved
            bn.num_batches_tracked.zero_()


def _check_ops(graph: Any, layout: str) -> None:
    allowed = {"Conv", "BatchNormalization"} | _COMMON_OPS | _HELPER_OPS | (_ECA_OPS if layout == "picosam3" else set())
    extra = sorted({n.op_type for n in graph.node} - allowed)
    if extra:
        raise BadInputError(f"operator(s) {', '.join(extra)} that {layout} does not have.")
    counts = Counter(n.op_type for n in graph.node)
    ups = counts["Resize"] + counts["Upsample"]
    if ups != 4 or counts["Add"] != 4:
        raise BadInputError(f"{ups} upsampling and {counts['Add']} Add operators: PicoSAM has 4 of each.")
    for node in graph.node:
        mode = _attrs(node).get("mode", b"nearest")
        if node.op_type in ("Resize", "Upsample") and mode not in (b"nearest", "nearest"):
            raise BadInputError(f"Resize {node.name} is not nearest-neighbour: PicoSAM upsamples nearest.")


def _verify(path: Path, net: nn.Module, size: int) -> float | None:
    """Max |ONNX - module| / max |ONNX| on a random normalised input (None: onnxruntime missing or cannot run it)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    except Exception:  # onnxruntime cannot run the file: the structural match stands alone
        return None
    with torch.inference_mode():
        got = net(torch.from_numpy(x)).numpy()
    if got.shape != ref.shape:
        return float("inf")
    return float(np.abs(got - ref).max() / max(float(np.abs(ref).max()), 1e-12))


@dataclass(frozen=True)
class OnnxNetwork:
    """A float ONNX recognised as a PicoSAM network: the bare network (normalised input) and its layout."""

    net: nn.Module
    layout: str
    config: PicoSAMConfig
    verified_rel_diff: float | None  # against onnxruntime on the file (None: onnxruntime not installed)
    batchnorm_folded: bool


def read_onnx_network(path: str | Path) -> OnnxNetwork:
    """Recognise a PicoSAM2/PicoSAM3 float ONNX and load its weights; NotPicoSAMOnnx (one line) naming why not
    (BadInputError: no such file, not ONNX)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: no such file.", hint="Give the path of a PicoSAM .pt or float .onnx file.")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others
        raise BadInputError(f"{path}: not an ONNX file ({clip_words(str(exc), 120)}).") from exc
    graph = model.graph
    if any(n.domain == MCT_DOMAIN for n in graph.node):
        raise NotPicoSAMOnnx(
            f"{path}: an MCTQ ONNX (quantized by MCT), not a float network.",
            hint="`imx500-sam convert` takes it as it is; `eval --int8` takes the convert output.",
        )
    inits = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    shape = inputs[0].type.tensor_type.shape.dim if inputs else []
    dims = [d.dim_value if d.HasField("dim_value") else None for d in shape]
    size = dims[2] if len(dims) == 4 and dims[2] else 96
    try:
        if len(inputs) != 1 or len(graph.output) != 1:
            raise BadInputError(f"{len(inputs)} inputs and {len(graph.output)} outputs: PicoSAM has one of each.")
        if len(dims) != 4 or dims[1] != 3 or (dims[2] and dims[3] and dims[2] != dims[3]):
            raise BadInputError(f"input shape {dims}: PicoSAM takes N x 3 x S x S.")
        values = _values(graph)
        convs = _convs(graph, values, path)
        layout, cls, cfg = _candidate(convs)
        _check_ops(graph, layout)
        cfg = PicoSAMConfig(cfg.encoder, cfg.bottleneck, cfg.decoder, int(size))
        net = cls(cfg).eval()
        _load(net, convs, int(size))
    except BadInputError as exc:
        raise NotPicoSAMOnnx(
            f"{path}: a float ONNX, but not a PicoSAM2/PicoSAM3 network: {exc.message}",
            hint="Give the authors' float ONNX export (or the .pt state_dict), or an MCTQ ONNX to `convert`.",
        ) from exc
    diff = _verify(path, net, int(size))
    if diff is not None and not diff <= VERIFY_TOLERANCE:
        raise NotPicoSAMOnnx(
            f"{path}: a float ONNX, but not a PicoSAM2/PicoSAM3 network: its convolutions fit {layout}, but its "
            f"output differs from the rebuilt network's by {diff:.2g} of the largest logit.",
            hint="Give the .pt state_dict of the network instead.",
        )
    folded = all(c.bn is None for c in convs)
    return OnnxNetwork(net, layout, cfg, diff, folded)
