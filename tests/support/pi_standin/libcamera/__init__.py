"""Stand-in for the libcamera Python bindings (Raspberry Pi OS only); see ``_dummy``.

``Size``, ``Point`` and ``Rectangle`` are minimal real value types, enough for picamera2's IMX500
helpers; the geometry methods follow libcamera's C++ (src/libcamera/geometry.cpp: integer arithmetic,
``scaledBy`` truncates, ``boundedTo`` clamps to an empty rectangle).
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


class Point:
    def __init__(self, x: int = 0, y: int = 0) -> None:
        self.x, self.y = int(x), int(y)

    def __neg__(self) -> Point:
        return Point(-self.x, -self.y)

    def to_tuple(self) -> tuple[int, int]:
        return (self.x, self.y)


class Rectangle:
    def __init__(self, x: int = 0, y: int = 0, width: int = 0, height: int = 0) -> None:
        self.x, self.y, self.width, self.height = int(x), int(y), int(width), int(height)

    @property
    def size(self) -> Size:
        return Size(self.width, self.height)

    def to_tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.width, self.height)

    @property
    def topLeft(self) -> Point:  # libcamera's name
        return Point(self.x, self.y)

    def bounded_to(self, bound: Rectangle) -> Rectangle:
        x0, y0 = max(self.x, bound.x), max(self.y, bound.y)
        x1 = min(self.x + self.width, bound.x + bound.width)
        y1 = min(self.y + self.height, bound.y + bound.height)
        return Rectangle(x0, y0, max(x1 - x0, 0), max(y1 - y0, 0))

    def scaled_by(self, numerator: Size, denominator: Size) -> Rectangle:
        def scale(v: int, n: int, d: int) -> int:
            q = abs(v) * n // d  # C++ integer division truncates toward zero
            return q if v >= 0 else -q

        return Rectangle(
            scale(self.x, numerator.width, denominator.width),
            scale(self.y, numerator.height, denominator.height),
            scale(self.width, numerator.width, denominator.width),
            scale(self.height, numerator.height, denominator.height),
        )

    def translated_by(self, point: Point) -> Rectangle:
        return Rectangle(self.x + point.x, self.y + point.y, self.width, self.height)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rectangle) and self.to_tuple() == other.to_tuple()

    def __hash__(self) -> int:
        return hash(self.to_tuple())


__getattr__: Any = module_getattr("libcamera")
