"""Helpers shared by benchmark scripts: machine description and result writing."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """Where a benchmark ran (one definition: ``imx500_sam.bench.record.machine_info``)."""
    from imx500_sam.bench.record import machine_info

    return machine_info()


def toolkit_commit() -> str:
    """The commit the measured code is at (one definition: ``imx500_sam.bench.record.toolkit_commit``)."""
    from imx500_sam.bench.record import toolkit_commit as commit

    return commit()


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write benchmarks/results/<name>.json with the command line, the commit, the machine and the date."""
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "commit": toolkit_commit(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        **data,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def model_arguments(ap: argparse.ArgumentParser) -> None:
    """``--model`` and ``--convert-dir``: the float checkpoint measured and the convert output of its INT8 network."""
    ap.add_argument("--model", type=Path, default=None, help="PicoSAM3 checkpoint (default: the bundled one)")
    ap.add_argument("--convert-dir", type=Path, default=None, help="convert output of that model (INT8)")


def convert_provenance(convert_dir: Path | None) -> dict[str, Any] | None:
    """Which convert an INT8 figure is of: its folder, calibration images (report.json ``data``) and own accuracy;
    None without a convert output."""
    from imx500_sam.convert_output import ConvertOutputDir

    if convert_dir is None:
        return None
    conv = ConvertOutputDir.load(convert_dir).report
    return {"dir": str(convert_dir), "data": conv.get("data"), "accuracy": conv.get("accuracy")}
