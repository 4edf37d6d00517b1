"""The ONNX front end of the gate: read an ONNX graph into the ``OpNode`` list (constant subgraphs folded, as the
converter's simplifier does). Needs only ``onnx``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from converter.gate.ops import OpNode, TracedModel, short_path, weight_layout
from converter.gate.report import SourceLoc
from imx500_sam.errors import BadInputError

_FOLD_ROOTS = {"Constant", "Shape", "Range", "ConstantOfShape"}


def trace_onnx(path: Path, input_size: tuple[int, int] | None = None) -> TracedModel:
    """Read an ONNX file into the op list; constant subgraphs fold (as the converter's simplifier does)."""
    import onnx
    from onnx import numpy_helper, shape_inference

    from converter.mctq import load_onnx

    model = load_onnx(path)
    graph = model.graph
    init = {t.name: tuple(int(d) for d in t.dims) for t in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in init]
    if len(real_inputs) != 1:
        raise BadInputError(f"{path}: the IMX500 takes one input tensor, this model has {len(real_inputs)}.")
    inp = real_inputs[0]
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
    if len(dims) == 4 and input_size is not None:
        for axis, value in ((2, input_size[0]), (3, input_size[1])):
            if dims[axis] is None:
                inp.type.tensor_type.shape.dim[axis].dim_value = value
                dims[axis] = value
    if len(dims) == 4 and dims[0] is None:
        inp.type.tensor_type.shape.dim[0].dim_value = 1
        dims[0] = 1
    if any(d is None for d in dims):
        raise BadInputError(f"{path}: input '{inp.name}' has an unknown size {dims}.", hint="Pass --input-size H,W.")
    try:
        inferred = shape_inference.infer_shapes(_for_shape_inference(model))
    except Exception:
        inferred = model
    shapes: dict[str, tuple[int, ...]] = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
        d = vi.type.tensor_type.shape.dim
        if d and all(x.HasField("dim_value") for x in d):
            shapes[vi.name] = tuple(int(x.dim_value) for x in d)
    const: dict[str, tuple[int, ...]] = dict(init)
    producer: dict[str, str] = {inp.name: inp.name}
    nodes = [OpNode(name=inp.name, key="input", inputs=[], shape=tuple(dims), role="input", frontend="onnx")]
    outputs = {o.name for o in graph.output}
    src = SourceLoc(short_path(str(path)), 0)
    for i, n in enumerate(graph.node):
        data_inputs = [x for x in n.input if x]
        if n.op_type in _FOLD_ROOTS or all(x in const for x in data_inputs):
            for o in n.output:
                const[o] = shapes.get(o, const.get(data_inputs[0], ()) if data_inputs else ())
            continue
        name = n.name or f"{n.op_type}_{i}"
        parts = [p for p in name.split("/") if p]
        attrs: dict[str, Any] = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if isinstance(attrs.get("mode"), bytes):
            attrs["mode"] = attrs["mode"].decode()
        if n.op_type == "Pow":
            attrs["constant_exponent"] = len(n.input) > 1 and n.input[1] in const
        if n.op_type == "Resize" and attrs.get("mode") == "linear":
            attrs["mode"] = "bilinear"
        params = out_ch = 0
        if n.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul") and len(n.input) > 1 and n.input[1] in const:
            wshape = const[n.input[1]] or _initializer_shape(graph, n.input[1], numpy_helper)
            if wshape:
                params = 1
                for d in wshape:
                    params *= d
                groups = int(attrs.get("group", 1))
                if n.op_type == "Gemm" and not attrs.get("transB", 0):
                    wshape = (wshape[1], wshape[0])
                attrs["weight"] = weight_layout(n.op_type, tuple(wshape), groups)
                out_ch = attrs["weight"][0]
        node = OpNode(
            name=name,
            key=n.op_type,
            inputs=[producer[x] for x in data_inputs if x in producer],
            shape=shapes.get(n.output[0]) if n.output else None,
            module_path=_onnx_module_path(parts),
            source=src,
            params=params,
            out_channels=out_ch,
            frontend="onnx",
            is_output=any(o in outputs for o in n.output),
            attrs=attrs,
        )
        if node.inputs:
            first = next(x for x in nodes if x.name == node.inputs[0])
            node.attrs["input_shape"] = first.shape
        for o in n.output:
            producer[o] = name
        nodes.append(node)
    return TracedModel(name=str(path), nodes=nodes, input_shape=tuple(dims))


def _onnx_module_path(parts: list[str]) -> str:
    """'/enc_blocks.0/enc_blocks.0.3/Conv' -> 'enc_blocks.0.3'; MCT's '/x_bn/layer/Conv' -> 'x_bn'."""
    scopes = [p for p in parts[:-1] if p != "layer"]
    return scopes[-1] if scopes else ""


def _for_shape_inference(model: Any) -> Any:
    """A copy where MCT's quantizer nodes (custom domain, shape-preserving) are Identity, so ONNX
    shape inference runs through an MCTQ export too."""
    import copy

    if not any(n.domain == "mct_quantizers" for n in model.graph.node):
        return model
    clone = copy.deepcopy(model)
    for n in clone.graph.node:
        if n.domain == "mct_quantizers":
            first = n.input[0]
            del n.input[:]
            n.input.append(first)
            del n.attribute[:]
            n.op_type, n.domain = "Identity", ""
    return clone


def _initializer_shape(graph: Any, name: str, numpy_helper: Any) -> tuple[int, ...] | None:
    for t in graph.initializer:
        if t.name == name:
            return tuple(numpy_helper.to_array(t).shape)
    return None
