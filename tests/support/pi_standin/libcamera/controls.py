"""Stand-in for ``libcamera.controls``."""

from typing import Any

from _dummy import module_getattr

__getattr__: Any = module_getattr("libcamera.controls")
