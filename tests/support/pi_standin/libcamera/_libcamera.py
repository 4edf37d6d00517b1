"""Stand-in for ``libcamera._libcamera``."""

from typing import Any

from _dummy import module_getattr

__getattr__: Any = module_getattr("libcamera._libcamera")
