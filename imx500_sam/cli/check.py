"""``imx500-sam check``: the operator and SRAM gate (seconds, no MCT, no converter unless --full)."""

from __future__ import annotations

from pathlib import Path

import typer

from imx500_sam.cli.app import app
from imx500_sam.procs import DEFAULT_TOOL_TIMEOUT_S


@app.command()
def check(
    model: str = typer.Argument(
        None,
        help="PicoSAM checkpoint (.pt: the authors' PicoSAM3/PicoSAM2 or imx500-sam's; default: the bundled model), "
        "an .onnx file, or "
        "py:package.module:factory (imports and runs YOUR code to build the nn.Module: explicit opt-in).",
    ),
    input_size: str = typer.Option(None, "--input-size", help="H or H,W in pixels. Default: the model's own."),
    fmt: str = typer.Option("text", "--format", "-f", help="text | json | github | junit"),
    junit_path: Path = typer.Option(
        None, "--junit-path", help="Also write a JUnit XML report here (--format junit: default imx500-check.xml)."
    ),
    full: bool = typer.Option(
        False, "--full", help="Also quantize with MCT and run `imxconv-pt --memory-report` for the exact figure."
    ),
    tool_timeout: float = typer.Option(
        DEFAULT_TOOL_TIMEOUT_S, "--tool-timeout", min=1, help="With --full: seconds imxconv-pt may run (then exit 6)."
    ),
) -> None:
    """Check operators, input limits and SRAM against the IMX500. Exit 0 pass, 2 bad input, 3 operator, 4 memory."""
    from converter.gate import check_model
    from converter.gate.formats import FORMATS, render_github, render_json, render_text, write_junit
    from converter.gate.load import parse_input_size
    from imx500_sam.errors import BadInputError

    if fmt not in FORMATS:
        raise BadInputError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}.")
    report = check_model(model, parse_input_size(input_size), full=full, tool_timeout_s=tool_timeout)
    if fmt == "junit" and junit_path is None:
        junit_path = Path("imx500-check.xml")
    if fmt == "json":
        typer.echo(render_json(report))
    elif fmt == "github":
        typer.echo(render_github(report))
    else:
        typer.echo(render_text(report))
    if junit_path is not None:
        typer.echo(f"JUnit report: {write_junit(report, junit_path)}", err=fmt == "json")
    raise typer.Exit(int(report.exit_code))
