"""Permissive placeholders for the Raspberry Pi-only modules ``libcamera`` and ``pykms``.

Any attribute of a placeholder is another placeholder class, so picamera2's import-time
references (``libcamera.controls.draft``, ``pykms.PixelFormat``, monkey-patched ``__repr__`` ...)
resolve. Nothing here talks to a camera: code that needs real libcamera objects fails loudly.
"""

from __future__ import annotations

from typing import Any


class _Meta(type):
    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        child = make(f"{cls.__name__}.{name}")
        setattr(cls, name, child)
        return child


class _Base:
    """Instances take any arguments and compare by them (``Transform(hflip=1)`` as a dict key)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._key = (type(self).__name__, args, tuple(sorted(kwargs.items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Base) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)


def make(name: str) -> type:
    """A placeholder class named ``name`` whose unknown attributes are placeholders too."""
    return _Meta(name, (_Base,), {})


def module_getattr(prefix: str) -> Any:
    """A module-level ``__getattr__`` creating (and caching) placeholders on first use."""
    cache: dict[str, type] = {}

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in cache:
            cache[name] = make(f"{prefix}.{name}")
        return cache[name]

    return __getattr__
