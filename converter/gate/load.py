"""Resolve the MODEL argument of ``imx500-sam check`` and enforce the documented input limits."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converter.gate.report import Finding
from converter.model_source import PY_PREFIX, load_model
from imx500_sam.defaults import DEFAULT_CHECKPOINT, DEFAULT_INPUT_SIZE
from imx500_sam.errors import BadInputError
from imx500_sam.facts import cite, fact


@dataclass
class ResolvedModel:
    """A model to check: an nn.Module (checkpoint or factory) or an ONNX file."""

    label: str  # what the user named
    module: Any | None = None  # torch.nn.Module
    onnx_path: Path | None = None
    file: str | None = None  # the file annotations point at when no source line is known
    default_size: int | tuple[int, int] | None = None


def parse_input_size(text: str | None) -> tuple[int, int] | None:
    """'96' -> (96, 96); '128,96' or '128x96' -> (128, 96); None -> None. BadInputError otherwise."""
    if text is None or str(text).strip() == "":
        return None
    parts = str(text).replace("x", ",").split(",")
    try:
        vals = [int(p) for p in parts if p.strip()]
    except ValueError:
        vals = []
    if len(vals) not in (1, 2) or any(v <= 0 for v in vals):
        raise BadInputError(f"--input-size {text!r}: expected H or H,W in pixels, e.g. 96 or 128,96.")
    return (vals[0], vals[-1])


def resolve_model(spec: str | os.PathLike[str] | None) -> ResolvedModel:
    """A PicoSAM3 checkpoint (default: the bundled one), a float ONNX file, or ``py:package.module:factory``.

    ``py:`` imports and runs the user's code (an explicit opt-in); checkpoints are loaded with
    ``torch.load(weights_only=True)`` and never run code. Same loader as ``imx500-sam convert``.
    """
    text = os.fspath(spec) if spec is not None else None
    if text is not None and not text.startswith(PY_PREFIX):
        path = Path(text)
        if not path.is_file():
            raise BadInputError(
                f"{path}: no such file.",
                hint="Give a PicoSAM3 .pt checkpoint, a float .onnx file, or py:package.module:factory.",
            )
    from imx500_sam.model.onnx_import import NotPicoSAMOnnx

    try:
        source = load_model(text)  # a float ONNX of a PicoSAM network loads as a checkpoint (one read of the file)
    except NotPicoSAMOnnx:  # an MCTQ export or another network: the ONNX gate checks its graph
        return ResolvedModel(label=str(text), onnx_path=Path(str(text)), file=text)
    file = None
    if text is not None and text.startswith(PY_PREFIX):
        mod = sys.modules.get(text[len(PY_PREFIX) :].partition(":")[0])
        file = getattr(mod, "__file__", None)
    else:
        file = text or str(DEFAULT_CHECKPOINT)
    if file:
        rel = os.path.relpath(file)
        file = file if rel.startswith("..") else rel
    return ResolvedModel(
        label=text or str(DEFAULT_CHECKPOINT), module=source.module, file=file, default_size=tuple(source.input_size)
    )


def choose_input_size(requested: tuple[int, int] | None, default: int | tuple[int, int] | None) -> tuple[int, int]:
    """The input size to check: the requested one, else the model's own, else the toolkit default."""
    if requested is not None:
        return requested
    if isinstance(default, int):
        return (default, default)
    if isinstance(default, tuple):
        return default
    return (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE)


def input_limit_findings(shape: tuple[int, ...] | None, layout_hint: str = "") -> list[Finding]:
    """Check an input shape (N, C, H, W) against the IMX500 input limits in imx500.json."""
    lo, hi = fact("input_size_min"), fact("input_size_max")
    channels, layout = fact("input_channels"), fact("input_layout")
    out: list[Finding] = []

    def bad(reason: str, fix: str, source: str) -> None:
        out.append(Finding("input", "input", "", None, f"{reason} [{cite(source)}]", fix, cite(source)))

    if shape is None or len(shape) != 4:
        bad(
            f"the input must be 4-D {layout.value} (N, C, H, W), got {shape}",
            "a single NCHW image input",
            layout.source,
        )
        return out
    _, c, h, w = shape
    if c != channels.value:
        if shape[3] == channels.value:
            bad(
                f"the input looks NHWC {tuple(shape)}; the IMX500 feeds {layout.value}",
                "permute to NCHW in the model",
                layout.source,
            )
        else:
            bad(
                f"the input has {c} channels; the IMX500 feeds {channels.value} (RGB)",
                "a 3-channel RGB input",
                channels.source,
            )
    for name, v in (("height", h), ("width", w)):
        if v < lo.value or v > hi.value:
            bad(
                f"input {name} {v} is outside {lo.value}..{hi.value} px",
                f"an input size within {lo.value}..{hi.value}",
                f"{lo.source}; {hi.source}",
            )
    return out
