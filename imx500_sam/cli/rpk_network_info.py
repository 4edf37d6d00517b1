"""``imx500-sam network-info FILE.rpk --set KEY=VALUE``: set network_info.txt values (the input preprocessor's gain
and offset, ``imx500_sam.preprocessor``) in a packaged .rpk, in place; firmware and other entries untouched."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from imx500_sam.cli.app import app
from imx500_sam.errors import BadInputError

_KEY = re.compile(r"^inputTensorNorm_K[0-2][0-3]$")  # only the preprocessor's registers
_VALUE = re.compile(r"^0x[0-9A-Fa-f]{4}$")


@app.command("network-info")
def network_info(
    rpk: Path = typer.Argument(..., help="A network.rpk written by imx500-package."),
    sets: list[str] = typer.Option(
        ..., "--set", help="inputTensorNorm_Kij=0xHHHH (repeat); `imx500-sam convert` prints the lines it needs."
    ),
) -> None:
    """Set the input preprocessor's gain/offset registers in network_info.txt of an .rpk (in place)."""
    from firmware_packaging.rpk import read_rpk, with_network_info, write_atomic

    values = {}
    for item in sets:
        key, _, value = item.partition("=")
        if not _KEY.match(key) or not _VALUE.match(value):
            raise BadInputError(f"--set {item}: expected inputTensorNorm_Kij=0xHHHH.")
        values[key] = value
    if not rpk.is_file():
        raise BadInputError(f"{rpk}: no such file.")
    write_atomic(rpk, with_network_info(read_rpk(rpk), values))
    typer.echo(f"{rpk}: set {', '.join(f'{k}={v}' for k, v in values.items())}")
