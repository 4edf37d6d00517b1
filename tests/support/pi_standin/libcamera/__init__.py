"""Stand-in for the libcamera Python bindings (Raspberry Pi OS only); see ``_dummy``.

``Size`` and ``Rectangle`` are minimal real value types, enough for picamera2's IMX500 helpers.
"""

from __future__ import annotations

from typing import Any

from _dummy import module_getattr

from . import _libcamera, controls  # noqa: F401


class Size:
    def __init__(self, width: int = 0, height: int = 0) -> None:
        self.width, self.height = int(width), int(height)

    def to_tuple(self) -> tuple[int, int]:
        return (self.width, self.height)


class Rectangle:
    def __init__(self, x: int = 0, y: int = 0, width: int = 0, height: int = 0) -> None:
        self.x, self.y, self.width, self.height = int(x), int(y), int(width), int(height)

    @property
    def size(self) -> Size:
        return Size(self.width, self.height)

    def to_tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.width, self.height)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rectangle) and self.to_tuple() == other.to_tuple()

    def __hash__(self) -> int:
        return hash(self.to_tuple())


__getattr__: Any = module_getattr("libcamera")
