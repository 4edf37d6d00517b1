"""``imx500-sam package packerOut.zip -o DIR``: imx500-package (on a Pi) + PicoSAM3 intrinsics -> DIR/network.rpk."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from imx500_sam.cli.app import app


@app.command("package")
def package(
    packer_out: Path = typer.Argument(..., help="packerOut.zip from `imx500-sam convert` (imxconv-pt)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output directory; network.rpk is written there."),
    color: str = typer.Option("RGB", "--color", help="Input colour format: RGB, BGR, Y or BayerRGB."),
) -> None:
    """Validate packerOut.zip, run Sony's imx500-package (Raspberry Pi only), write PicoSAM3's intrinsics (and the
    input preprocessor's settings that the report.json beside the zip asks for)."""
    from firmware_packaging.packager import package as run_package
    from firmware_packaging.packager import packager_available, pi_commands, validate_packer_zip
    from imx500_sam.convert_output import network_info_beside
    from imx500_sam.errors import ToolchainMissingError
    from imx500_sam.pi import require_pi

    validate_packer_zip(packer_out)
    network_info = network_info_beside(packer_out)  # a normalised input: the preprocessor's gain/offset
    if not packager_available():
        print("Copy the zip to the Pi and run there:", file=sys.stderr)
        for line in pi_commands(packer_out.name, out, color, network_info=network_info):
            print(f"  {line}", file=sys.stderr)
        require_pi("imx500-package (Sony's packager)", "Run the commands above on the Pi.")
        raise ToolchainMissingError(
            "imx500-package is not installed on this Pi.", hint="sudo apt install -y imx500-tools"
        )
    rpk = run_package(packer_out, out, color=color, network_info=network_info)
    typer.echo(str(rpk))
