"""Stand-in for ``pykms`` (Raspberry Pi OS only); see ``_dummy``."""

from typing import Any

from _dummy import module_getattr

__getattr__: Any = module_getattr("pykms")
