"""The repository's ``benchmarks/`` suites for ``imx500-sam bench host`` (a source checkout; not installed)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from imx500_sam.errors import ToolchainMissingError

REPO = Path(__file__).resolve().parents[2]


def import_benchmarks(name: str) -> ModuleType:
    """``benchmarks.<name>`` from the checkout this package lives in."""
    try:
        return importlib.import_module(f"benchmarks.{name}")
    except ModuleNotFoundError as exc:
        if exc.name not in ("benchmarks", f"benchmarks.{name}"):
            raise
    if not (REPO / "benchmarks" / f"{name}.py").is_file():
        raise ToolchainMissingError(
            "bench host runs the repository's benchmarks/ suites, which are not installed with the package.",
            hint="Run it from a source checkout (git clone; make setup).",
        )
    sys.path.insert(0, str(REPO))
    return importlib.import_module(f"benchmarks.{name}")
