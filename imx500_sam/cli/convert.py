"""``imx500-sam convert``: PicoSAM3 checkpoint -> INT8 -> imxconv-pt -> packerOut.zip (-> network.rpk on a Pi)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from imx500_sam.cli.app import app
from imx500_sam.procs import DEFAULT_TOOL_TIMEOUT_S


@app.command()
def convert(
    model: str = typer.Argument(
        None,
        help="PicoSAM checkpoint (.pt: the authors' PicoSAM3/PicoSAM2, LibreYOLO's or imx500-sam's), a float .onnx "
        "of a PicoSAM network, an MCTQ .onnx, or "
        "py:package.module:factory (runs your code). Default: the bundled model.",
    ),
    out: Path = typer.Option(None, "-o", "--out", help="Output directory. Default: ./<model-stem>_imx500/."),
    calib: Path = typer.Option(
        None, "--calib", help="Folder of photos for calibration crops. Default: bundled real photos."
    ),
    calib_count: int = typer.Option(96, "--calib-count", help="Number of calibration crops (>= 8)."),
    input_size: int = typer.Option(None, "--input-size", help="Input side for py: models (default 96)."),
    gptq: bool = typer.Option(False, "--gptq", help="Gradient-based PTQ (slower, sometimes more accurate)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
    no_check: bool = typer.Option(
        False, "--no-check", help="Skip the operator/SRAM gate (let MCT and imxconv-pt decide)."
    ),
    tool_timeout: float = typer.Option(
        DEFAULT_TOOL_TIMEOUT_S, "--tool-timeout", min=1, help="Seconds each external tool may run (then exit 6)."
    ),
    crop: str = typer.Option(
        None,
        "--crop",
        help="The prompt crop the model was trained with: shifted | clamped (recorded for run/eval). Default: from "
        "the model file (its sidecar; the authors' files and MCTQ ONNX: clamped).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print report.json to stdout."),
) -> None:
    """Quantize to INT8 with Sony MCT, check operators and SRAM, run imxconv-pt, package if on a Pi."""
    from converter.pipeline import ConvertOptions, run_convert

    result = run_convert(
        ConvertOptions(
            model=model,
            out=out,
            calib_dir=calib,
            calib_count=calib_count,
            input_size=input_size,
            gptq=gptq,
            overwrite=overwrite,
            skip_check=no_check,
            quiet=quiet or as_json,
            tool_timeout_s=tool_timeout,
            prompt_crop=crop,
        )
    )
    if as_json:
        typer.echo(json.dumps(result.report, indent=2))
