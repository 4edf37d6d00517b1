"""Where a model comes from: a PicoSAM checkpoint (default: the bundled PicoSAM3), or ``py:package.module:factory``.

``py:`` imports and runs the user's own code to build an ``nn.Module``: an explicit opt-in, never
implied by a file name. A checkpoint is loaded with ``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imx500_sam.defaults import DEFAULT_CHECKPOINT
from imx500_sam.errors import BadInputError

if TYPE_CHECKING:
    import torch

PY_PREFIX = "py:"


@dataclass(frozen=True)
class SourceModel:
    """A float model ready for checking or conversion."""

    module: torch.nn.Module
    name: str
    input_size: tuple[int, int]  # (H, W)
    origin: str  # checkpoint path or py: spec
    architecture: str  # PicoSAM3 / PicoSAM2, or the factory's class name
    layout: str  # the checkpoint's state_dict layout (imx500_sam.model.LAYOUTS), or "py"
    file_format: str = "py"  # state_dict | float-onnx | py
    file_info: dict[str, Any] = field(default_factory=dict)  # a wrapper's metadata (LibreYOLO) or the ONNX read
    warnings: tuple[str, ...] = ()
    prompt_crop: str | None = None  # the crop convention the model was trained with (imx500_sam.prompt)


def load_factory(spec: str) -> torch.nn.Module:
    """Build a module from ``py:package.module:factory`` (imports user code; cwd is on sys.path)."""
    target = spec[len(PY_PREFIX) :]
    mod_name, _, attr = target.partition(":")
    if not mod_name or not attr:
        raise BadInputError(f"{spec}: expected py:package.module:factory.", hint="e.g. py:mymodels.unet:build")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise BadInputError(f"{spec}: cannot import {mod_name} ({exc}).", hint="Check PYTHONPATH.") from exc
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise BadInputError(f"{spec}: {mod_name} has no callable {attr}.")
    import torch

    built = factory()
    if not isinstance(built, torch.nn.Module):
        raise BadInputError(f"{spec}: {attr}() returned {type(built).__name__}, not a torch.nn.Module.")
    return built.eval()


def load_model(spec: str | Path | None, input_size: int | tuple[int, int] | None = None) -> SourceModel:
    """Load a model from a checkpoint (.pt or float .onnx; default: the bundled PicoSAM3) or a ``py:`` factory."""
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    if spec is not None and str(spec).startswith(PY_PREFIX):
        module = load_factory(str(spec))
        size = input_size or _declared_size(module) or (96, 96)
        name = str(spec)[len(PY_PREFIX) :].replace(":", ".").rsplit(".", 1)[-1]
        return SourceModel(module, name, size, str(spec), type(module).__name__, "py")
    from imx500_sam.model import read_checkpoint

    path = Path(spec) if spec is not None else DEFAULT_CHECKPOINT
    from imx500_sam.model.checkpoint import prompt_crop_of

    ckpt = read_checkpoint(path)
    s = ckpt.config.input_size
    return SourceModel(
        ckpt.module,
        path.stem,
        input_size or (s, s),
        str(path.absolute()),
        ckpt.layout.architecture,
        ckpt.layout.name,
        ckpt.file_format,
        dict(ckpt.file_info),
        ckpt.warnings,
        prompt_crop_of(ckpt),
    )


def _declared_size(module: torch.nn.Module) -> tuple[int, int] | None:
    size = getattr(module, "input_size", None)
    if isinstance(size, int):
        return (size, size)
    if isinstance(size, (tuple, list)) and len(size) == 2:
        return (int(size[0]), int(size[1]))
    return None
