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


def _quantization_line(q: dict[str, Any]) -> str:
    if q.get("already_quantized"):
        return f"- Quantization: {q['method']}: no second PTQ, the MCTQ ONNX went straight to the gate and imxconv-pt"
    return (
        f"- Quantization: {q['method']} with {q['calibration_crops']} calibration crops from {q['calibration_source']}"
    )


def _accuracy_lines(acc: dict[str, Any], data: dict[str, Any]) -> list[str]:
    held = ", ".join(r["name"] for r in data.get("accuracy", [])) or "evaluate photos"
    lines = [f"On {acc['crops']} prompt crops of the evaluate photos, never calibration or training ({held}):", ""]
    if acc.get("float_vs_int8_miou") is not None:
        lines.append(
            f"- float vs INT8 (MCT's quantized network): mean IoU **{acc['float_vs_int8_miou']:.4f}** "
            f"(largest logit difference {acc['max_abs_logit_diff']:.3f})"
        )
    else:
        lines.append("- float vs INT8: not measured (no float model: the input was already quantized)")
    em = acc.get("emulator_agreement")
    if em:
        lines.append(
            f"- host network (emulator, `eval --int8`) vs {em['reference']}: **{em['pixels']:.2%}** of mask pixels "
            f"agree on {em['crops']} crops (largest logit difference {em['max_abs_logit_diff']:.3f})"
        )
    return lines


def _model_lines(m: dict[str, Any]) -> list[str]:
    """What the file was (format, a wrapper's metadata, warnings) and the prompt crop the runtime uses."""
    lines = [f"- File: {m.get('file_format', 'state_dict')}, layout {m['layout']} ({m['architecture']})"]
    if m.get("file_info"):
        lines.append("- File metadata: " + ", ".join(f"{k}={v}" for k, v in m["file_info"].items()))
    lines += [f"- Warning: {w}" for w in m.get("warnings") or []]
    if m.get("prompt_crop"):
        lines.append(
            f"- Prompt crop: `{m['prompt_crop']}` (imx500_sam.prompt; `run`, the emulator and `eval --int8` crop so)"
        )
    return lines


def _input_lines(inp: dict[str, Any] | None) -> list[str]:
    """The input convention and the sensor's input preprocessor settings (``imx500_sam.preprocessor``)."""
    if not inp:
        return []
    q = inp.get("quantizer") or {}
    step = f", step {q['scale']:.6g}" if q.get("scale") else ""
    lines = [f"- Input: {inp['convention']} ({'signed' if q.get('signed') else 'unsigned'} 8-bit{step})"]
    pre = inp.get("preprocessor")
    if pre:
        lines.append(
            f"- Sensor input preprocessor: gain {[round(g, 4) for g in pre['gain']]}, offset {pre['offset']} "
            f"(network_info.txt {', '.join(f'{k}={v}' for k, v in pre['network_info'].items())}; "
            f"max error {inp.get('preprocessor_max_error_steps')} input steps)"
        )
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """A human-readable report.md."""
    m, mem, acc, t = report["model"], report["memory"], report["accuracy"], report["timings_s"]
    lines = [
        f"# IMX500 conversion of `{m['name']}`",
        "",
        f"- Model: {m['params']:,} parameters, input {m['input_size'][0]}x{m['input_size'][1]} RGB, "
        f"checkpoint `{m['checkpoint']}`",
        *_model_lines(m),
        *_input_lines(report.get("input")),
        _quantization_line(report["quantization"]),
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
        *_accuracy_lines(acc, report.get("data", {})),
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


def summary_lines(report: dict[str, Any], out: Path) -> list[str]:
    """What a user wants at the end of a convert: does it fit, how faithful is INT8, where to read more."""
    mem, acc, rpk = report["memory"], report["accuracy"], report["artifacts"]["rpk"]
    verdict = "fits the IMX500" if mem["fit_in_chip"] else "does NOT fit the IMX500"
    lines = [
        f"Memory: {verdict}: {mem['usage_bytes']:,} of {mem['available_bytes']:,} bytes "
        f"({mem['utilization']:.0%}, exact from imxconv-pt)"
    ]
    if acc["float_vs_int8_miou"] is not None:
        miou, crops = acc["float_vs_int8_miou"], acc["crops"]
        lines.append(f"INT8: float vs INT8 mask IoU {miou:.3f} on {crops} crops of the evaluate photos")
    em = acc["emulator_agreement"]
    lines.append(f"Host INT8 network (emulator, eval --int8): {em['pixels']:.2%} of mask pixels equal MCT's")
    lines.append(f"Package: {rpk}" if rpk else "Package: network.rpk is made on the Pi (the commands are in report.md)")
    lines.append(f"Report: {out / 'report.md'}")
    return lines
