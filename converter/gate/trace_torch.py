"""The torch front end of the gate: trace an nn.Module with torch.fx into the ``OpNode`` list, with output shapes
and the user's file:line of every op. torch is imported inside the functions (the gate package stays light)."""

from __future__ import annotations

import builtins
import contextlib
import io
import math
import operator
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Any

from converter.gate.ops import OpNode, TracedModel, short_path, weight_layout
from converter.gate.report import Finding, SourceLoc
from converter.gate.table import OperatorTable, load_table
from imx500_sam.errors import BadInputError, clip_words


def _torch_dir() -> str:
    import torch

    return os.path.dirname(torch.__file__) + os.sep


_GATE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_frame(torch_dir: str) -> SourceLoc | None:
    """The innermost calling frame outside torch and this package: the user's source line."""
    frame = sys._getframe(1)
    while frame is not None:
        file = frame.f_code.co_filename
        if not file.startswith(torch_dir) and not file.startswith(_GATE_DIR) and not file.startswith("<"):
            return SourceLoc(short_path(file), frame.f_lineno)
        frame = frame.f_back
    return None


def _source_tracer_class() -> type:
    from torch import fx

    class SourceTracer(fx.Tracer):
        """fx.Tracer that records the user's file:line of every node (cheaper than record_stack_traces,
        which imports torch._inductor)."""

        def __init__(self, torch_dir: str) -> None:
            super().__init__()
            self._torch_dir = torch_dir

        def create_node(self, *args: Any, **kwargs: Any) -> Any:
            node = super().create_node(*args, **kwargs)
            node.meta["user_source"] = _user_frame(self._torch_dir)
            return node

    return SourceTracer


def _make_tracer(torch_dir: str) -> Any:
    return _source_tracer_class()(torch_dir)


@dataclass(frozen=True)
class _TorchKeys:
    by_id: dict[int, str]


def _torch_keys(table: OperatorTable) -> _TorchKeys:
    """Resolve every function key of the table to the Python object fx records."""
    import torch
    import torch.nn.functional as F

    roots = {"F": F, "torch": torch, "operator": operator, "builtins": builtins}
    by_id: dict[int, str] = {}
    for key in table.by_torch:
        head, _, rest = key.partition(".")
        if head in ("nn", "Tensor") or head not in roots:
            continue
        obj: Any = roots[head]
        try:
            for part in rest.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        by_id.setdefault(id(obj), key)
    return _TorchKeys(by_id)


def _function_key(fn: Any, keys: _TorchKeys) -> str:
    if id(fn) in keys.by_id:
        return keys.by_id[id(fn)]
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__name__", repr(fn))
    for prefix, short in (("torch.nn.functional", "F"), ("_operator", "operator"), ("torch._C._nn", "F")):
        if module == prefix:
            module = short
    return f"{module}.{name}" if module else name


def _module_key(mod: Any, table: OperatorTable) -> str:
    for cls in type(mod).__mro__:
        if cls.__module__.startswith("torch.nn.modules"):
            key = f"nn.{cls.__name__}"
            if table.torch(key) is not None:
                return key
    cls = type(mod)
    if cls.__module__.startswith("torch.nn.modules"):
        return f"nn.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _exception_source(exc: BaseException, torch_dir: str) -> SourceLoc | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(torch_dir)]
    frames = [f for f in frames if "/converter/gate/" not in f.filename.replace(os.sep, "/")]
    if not frames:
        return None
    return SourceLoc(short_path(frames[-1].filename), frames[-1].lineno or 0)


def trace_module(module: Any, input_shape: tuple[int, ...], name: str = "model") -> TracedModel:
    """Trace an nn.Module with torch.fx (as MCT does) and propagate shapes with a zero input."""
    import torch
    from torch import fx

    table = load_table()
    torch_dir = _torch_dir()
    module = module.eval()
    tracer = _make_tracer(torch_dir)
    try:
        graph = tracer.trace(module)
    except Exception as exc:  # any tracing failure: MCT would fail the same way
        first = clip_words(str(exc), 200)
        finding = Finding(
            status="untraceable",
            op=type(exc).__name__,
            module_path="",
            source=_exception_source(exc, torch_dir),
            reason=f"torch.fx cannot trace the model, so MCT cannot quantize it ({first})",
            replacement="remove data-dependent Python control flow and tensor-to-Python conversions from forward()",
        )
        return TracedModel(name=name, nodes=[], input_shape=input_shape, findings=[finding])
    gm = fx.GraphModule(module, graph)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # ShapeProp prints the failing node's traceback
            _propagate_shapes(gm, input_shape)
    except Exception as exc:
        raise _does_not_run(gm, name, input_shape, exc) from exc
    keys = _torch_keys(table)
    nodes: list[OpNode] = []
    const_names: set[str] = set()
    by_name: dict[str, OpNode] = {}
    for n in gm.graph.nodes:
        meta = n.meta.get("tensor_meta")
        shape = _meta_shape(meta)
        stack = n.meta.get("nn_module_stack") or {}
        module_path = next(reversed(stack.values()))[0] if stack else ""
        source = n.meta.get("user_source")
        if n.op == "output":
            for arg in n.all_input_nodes:
                if arg.name in by_name:
                    by_name[arg.name].is_output = True
            continue
        if n.op == "placeholder":
            node = OpNode(name=n.name, key="input", inputs=[], shape=shape, role="input")
        elif n.op == "get_attr":
            const_names.add(n.name)
            node = OpNode(name=n.name, key="const", inputs=[], shape=shape, role="const", module_path=module_path)
        else:
            inputs = [a.name for a in n.all_input_nodes if a.name not in const_names]
            attrs: dict[str, Any] = {}
            params = out_ch = 0
            if n.op == "call_module":
                mod = gm.get_submodule(n.target)
                key = _module_key(mod, table)
                module_path = str(n.target)
                weight = getattr(mod, "weight", None)
                if isinstance(weight, torch.Tensor) and weight.dim() >= 2:
                    params = int(weight.numel())
                    out_ch = int(getattr(mod, "out_channels", 0) or getattr(mod, "out_features", 0) or weight.shape[0])
                    attrs["weight"] = weight_layout(key, tuple(weight.shape), int(getattr(mod, "groups", 1)))
                elif not isinstance(weight, torch.Tensor):
                    params = sum(int(p.numel()) for p in mod.parameters())
                attrs["mode"] = getattr(mod, "mode", None)
                attrs["output_size"] = getattr(mod, "output_size", None)
            elif n.op == "call_function":
                key = _function_key(n.target, keys)
                attrs["mode"] = n.kwargs.get("mode", "nearest") if "interpolate" in key or "upsample" in key else None
                attrs["output_size"] = n.kwargs.get("output_size", n.args[1] if len(n.args) > 1 else None)
                if key in ("F.conv2d", "F.linear", "F.conv_transpose2d") and len(n.args) > 1:
                    w = n.args[1]
                    if hasattr(w, "name") and w.name in const_names:
                        wt = _fetch_attr(gm, str(w.target)) if w.op == "get_attr" else None
                        if isinstance(wt, torch.Tensor) and wt.dim() >= 2:
                            params, out_ch = int(wt.numel()), int(wt.shape[0])
                            groups = n.kwargs.get("groups", n.args[6] if len(n.args) > 6 else 1)
                            attrs["weight"] = weight_layout(key, tuple(wt.shape), int(groups))
            else:  # call_method
                key = f"Tensor.{n.target}"
            if key.endswith("pow") or key.endswith("square"):
                exponent = n.args[1] if len(n.args) > 1 else n.kwargs.get("exponent", 2)
                attrs["constant_exponent"] = not _is_activation(exponent, const_names)
            in_shapes = [by_name[i].shape for i in inputs if i in by_name]
            attrs["input_shape"] = in_shapes[0] if in_shapes else None
            node = OpNode(
                name=n.name,
                key=key,
                inputs=inputs,
                shape=shape,
                module_path=module_path,
                source=source,
                params=params,
                out_channels=out_ch,
                attrs=attrs,
            )
        nodes.append(node)
        by_name[node.name] = node
    return TracedModel(name=name, nodes=nodes, input_shape=input_shape)


REAL_SHAPEPROP_MAX_PIXELS = 256 * 256


SIZE_MULTIPLES = (2, 4, 8, 16, 32, 64)  # strides tried when a model does not run on the size asked for


def _runs_at(gm: Any, shape: tuple[int, ...]) -> bool:
    import torch

    try:
        with torch.inference_mode(), contextlib.redirect_stderr(io.StringIO()):
            gm(torch.zeros(shape))
        return True
    except Exception:
        return False


def _does_not_run(gm: Any, name: str, input_shape: tuple[int, ...], exc: BaseException) -> BadInputError:
    """The error for a model that fails on ``input_shape``: when it runs on sizes rounded up to a multiple of 2^k
    (a U-Net's down-samplings must meet its skip connections), it says which multiple and the nearest sizes."""
    size = "x".join(map(str, input_shape[2:]))
    h, w = input_shape[2], input_shape[3]
    if len(input_shape) == 4:
        for m in SIZE_MULTIPLES:
            up = (-(-h // m) * m, -(-w // m) * m)
            if up != (h, w) and _runs_at(gm, (1, input_shape[1], *up)):
                down = (max(m, h // m * m), max(m, w // m * m))
                near = [f"{a}" if a == b else f"{a},{b}" for a, b in dict.fromkeys([down, up])]
                return BadInputError(
                    f"{name}: input {size} does not fit the model: its height and width must each be a multiple of "
                    f"{m}.",
                    hint=f"Try --input-size {' or '.join(near)}.",
                )
    root = exc.__cause__ or exc  # ShapeProp wraps the failing operation's own error
    return BadInputError(
        f"{name}: the model does not run on a {'x'.join(map(str, input_shape))} input ({clip_words(str(root), 200)}).",
        hint="Check --input-size and that the model takes 3-channel NCHW RGB.",
    )


def _propagate_shapes(gm: Any, input_shape: tuple[int, ...]) -> None:
    """ShapeProp, cheapest first: an empty batch (no arithmetic at all), then fake tensors for large inputs
    (FakeTensorMode imports torch._dynamo, about 2 s), then a real batch of one. Shapes keep batch 1."""
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    empty = (0, *input_shape[1:])
    try:  # ShapeProp prints the traceback of a failing node: keep it quiet, a fallback follows
        with torch.inference_mode(), contextlib.redirect_stderr(io.StringIO()):
            ShapeProp(gm).propagate(torch.zeros(empty))
        if _all_batch_zero(gm):
            return
    except Exception:
        pass
    if math.prod(input_shape[2:]) > REAL_SHAPEPROP_MAX_PIXELS:
        try:
            from torch._subclasses.fake_tensor import FakeTensorMode

            mode = FakeTensorMode(allow_non_fake_inputs=True)
            ShapeProp(gm, fake_mode=mode).propagate(mode.from_tensor(torch.zeros(input_shape)))
            return
        except Exception:
            pass
    with torch.inference_mode():
        ShapeProp(gm).propagate(torch.zeros(input_shape))


def _all_batch_zero(gm: Any) -> bool:
    """True when every tensor of an empty-batch ShapeProp kept the batch axis first (so batch 1 is exact)."""
    for n in gm.graph.nodes:
        meta = n.meta.get("tensor_meta")
        if meta is None or n.op == "output":
            continue
        metas = meta if isinstance(meta, (tuple, list)) else [meta]
        for m in metas:
            shape = getattr(m, "shape", None)
            if shape is None:
                continue
            if len(shape) == 0 or shape[0] != 0:
                return False
    return True


def _fetch_attr(gm: Any, target: str) -> Any:
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part, None)
    return obj


def _is_activation(arg: Any, const_names: set[str]) -> bool:
    return hasattr(arg, "op") and getattr(arg, "name", None) not in const_names


def _meta_shape(meta: Any) -> tuple[int, ...] | None:
    if meta is None:
        return None
    if hasattr(meta, "shape"):
        dims = tuple(int(d) for d in meta.shape)
        return (1, *dims[1:]) if dims and dims[0] == 0 else dims  # an empty-batch ShapeProp
    if isinstance(meta, (tuple, list)) and meta:
        return _meta_shape(meta[0])
    if isinstance(meta, dict) and meta:
        return _meta_shape(next(iter(meta.values())))
    return None
