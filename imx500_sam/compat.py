"""The two toolchain work-arounds, in one place (see shared/notes/toolchain.md).

1. torchvision on a CPU-only torch. MCT imports edge-mdt-cl, which needs torchvision. PyPI's
   Linux torchvision wheel is a CUDA build; beside a CPU-only torch its C++ ops cannot load,
   and torchvision then dies registering fake kernels for them
   (``RuntimeError: operator torchvision::nms does not exist``). ``import_torchvision`` makes
   ``torch.library.register_fake`` skip the ``torchvision::`` namespace while torchvision is
   imported: pure-Python torchvision works; its C++ ops (nms, roi_align) do not, and neither
   PicoSAM3 nor MCT's PyTorch path needs them. With a CUDA torch nothing is patched.
2. ONNX export. torch >= 2.9 exports through dynamo by default, which needs onnxscript, and
   MCT 2.5.1 does not choose; ``legacy_onnx_export`` makes ``torch.onnx.export`` default to
   ``dynamo=False`` while MCT exports.

Importing this module is free; nothing happens until a function is called.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any


def import_torchvision() -> ModuleType:
    """Import torchvision, tolerating a CUDA torchvision wheel beside a CPU-only torch."""
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    import torch

    original = torch.library.register_fake

    def register_fake(op: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(op, str) and op.startswith("torchvision::"):
            if args:  # called as register_fake(op, fn)
                return args[0]
            return lambda fn: fn  # used as a decorator
        return original(op, *args, **kwargs)

    torch.library.register_fake = register_fake
    try:
        import torchvision
    finally:
        torch.library.register_fake = original
    return torchvision


@functools.cache
def import_mct() -> ModuleType:
    """Import model_compression_toolkit after the torchvision fix (cached)."""
    import_torchvision()
    import model_compression_toolkit as mct

    return mct


@contextlib.contextmanager
def legacy_onnx_export() -> Iterator[None]:
    """Within the block, ``torch.onnx.export`` uses the TorchScript exporter (dynamo=False)."""
    import torch

    original = torch.onnx.export

    @functools.wraps(original)
    def export(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("dynamo", False)
        return original(*args, **kwargs)

    torch.onnx.export = export
    try:
        yield
    finally:
        torch.onnx.export = original
