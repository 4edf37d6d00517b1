"""report.json and report.md of a conversion."""

from __future__ import annotations

import json
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from converter.imxconv import java_version

_PACKAGES = (
    "imx500-sam",
    "torch",
    "model-compression-toolkit",
    "mct-quantizers",
    "imx500-converter",
    "onnx",
    "onnxruntime",
    "numpy",
)


def toolchain_versions() -> dict[str, str | None]:
    """Versions of the packages and Java the conversion used."""
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    jv = java_version()
    out["java"] = str(jv) if jv is not None else None
    out["python"] = platform.python_version()
    return out


def git_describe(path: Path) -> str | None:
    """Short git commit of the toolkit checkout, if any."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() or None


def write_json(report: dict[str, Any], path: Path) -> None:
    """Write report.json."""
    path.write_text(json.dumps(report, indent=2) + "\n")


def render_markdown(report: dict[str, Any]) -> str:
    """A human-readable report.md."""
    m, mem, acc, t = report["model"], report["memory"], report["accuracy"], report["timings_s"]
    lines = [
        f"# IMX500 conversion of `{m['name']}`",
        "",
        f"- Model: {m['params']:,} parameters, input {m['input_size'][0]}x{m['input_size'][1]} RGB, "
        f"checkpoint `{m['checkpoint']}`",
        f"- Quantization: {report['quantization']['method']} with {report['quantization']['calibration_crops']} "
        f"calibration crops from {report['quantization']['calibration_source']}",
        "",
        "## Memory (imxconv-pt)",
        "",
        "| | bytes |",
        "| --- | ---: |",
        f"| weights (model memory) | {mem['weights_bytes']:,} |",
        f"| runtime (activations) | {mem['runtime_bytes']:,} |",
        f"| total usage | {mem['usage_bytes']:,} |",
        f"| available on chip | {mem['available_bytes']:,} |",
        "",
        f"Fits in chip: **{'yes' if mem['fit_in_chip'] else 'no'}** ({mem['utilization']:.0%} used).",
        "",
        "## Accuracy",
        "",
        f"Mean IoU of float vs INT8 masks on {acc['crops']} held-out prompt crops: "
        f"**{acc['float_vs_int8_miou']:.4f}** (largest logit difference {acc['max_abs_logit_diff']:.3f}).",
        "",
        "## Timings (s)",
        "",
        "| stage | seconds |",
        "| --- | ---: |",
        *[f"| {k} | {v:.2f} |" for k, v in t.items()],
        "",
        "## Artifacts",
        "",
        *[f"- {k}: `{v}`" for k, v in report["artifacts"].items() if v],
        "",
    ]
    pkg = report["packaging"]
    if report["artifacts"].get("rpk"):
        lines += ["`network.rpk` was built on this machine with `imx500-package`.", ""]
    else:
        lines += [
            "## Next: package on the Raspberry Pi",
            "",
            "`imx500-package` exists only on Raspberry Pi OS. Copy this folder to the Pi "
            "(e.g. `scp -r` it), then run, from the folder that holds it:",
            "",
            "```bash",
            *pkg["commands"],
            "```",
            "",
        ]
    lines += ["## Toolchain", "", *[f"- {k}: {v}" for k, v in report["toolchain"].items()], ""]
    return "\n".join(lines)
