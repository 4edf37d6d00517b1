"""picamera2's own IMX500 code on a non-Pi host, for tests.

``import picamera2`` needs the ``libcamera`` and ``pykms`` modules, which only Raspberry Pi OS
ships. ``import_imx500_module`` puts the minimal stand-ins from ``pi_standin/`` on sys.path (only
when the real modules are absent) and imports ``picamera2.devices.imx500.imx500``, so tests run
picamera2's real parsing and decoding code (pip package picamera2 0.3.38, needs libarchive-c).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

STANDIN_DIR = Path(__file__).resolve().parent / "pi_standin"


def import_imx500_module() -> ModuleType:
    """Return ``picamera2.devices.imx500.imx500`` (stand-in libcamera/pykms when the real ones are missing)."""
    missing = importlib.util.find_spec("libcamera") is None or importlib.util.find_spec("pykms") is None
    if missing and str(STANDIN_DIR) not in sys.path:
        sys.path.insert(0, str(STANDIN_DIR))
    return importlib.import_module("picamera2.devices.imx500.imx500")


def picamera2_read_rpk(path: Path) -> dict[str, Any]:
    """Parse an .rpk with picamera2's ``IMX500.__ni_from_network`` (no camera); return ``IMX500.config``.

    The result has ``network_info`` (parsed network_info.txt), ``input_tensor`` (width, height,
    input_format, norm values) and ``intrinsics`` (a picamera2 ``NetworkIntrinsics``) when present.
    """
    mod = import_imx500_module()
    imx = mod.IMX500.__new__(mod.IMX500)  # skip __init__: it opens the camera's v4l2 subdevice
    imx.device_fd = None
    imx._IMX500__cfg = {"network_file": str(path), "input_tensor": {}}
    imx._IMX500__ni_from_network(str(path))
    return imx.config


def picamera2_intrinsics_schema() -> dict[str, Any]:
    """The JSON schema picamera2's ``NetworkIntrinsics`` validates against."""
    mod = import_imx500_module()
    return mod.NetworkIntrinsics()._NetworkIntrinsics__schema
