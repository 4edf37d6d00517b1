"""Default paths and settings (light: no torch)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_CHECKPOINT = PACKAGE_DIR / "model" / "weights" / "picosam3_default.pt"
DEFAULT_INPUT_SIZE = 96


def cache_dir() -> Path:
    """User cache directory for fetched data, teachers and photos ($IMX500_SAM_CACHE overrides)."""
    env = os.environ.get("IMX500_SAM_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "imx500-sam"
