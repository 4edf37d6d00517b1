"""``imx500-sam inspect FILE.rpk``: firmware blocks, input tensor, intrinsics (validates the file)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from imx500_sam.cli.app import app


@app.command("inspect")
def inspect_rpk(
    rpk: Path = typer.Argument(..., help="Network firmware file (.rpk)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Validate an .rpk and show its blocks, input tensor and network intrinsics."""
    from firmware_packaging.rpk import read_rpk

    info = read_rpk(rpk).summary()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    t = info["input_tensor"]
    typer.echo(f"{rpk}: {info['size_bytes']} bytes, sha256 {info['sha256']}")
    typer.echo(f"input tensor: {t['width']}x{t['height']} {t['format']}")
    typer.echo(f"output tensors (elements): {info['output_tensor_sizes']}")
    typer.echo(f"device lock: {'yes' if info['device_lock'] else 'no'}")
    for b in info["blocks"]:
        lock = " locked" if b["device_lock"] else ""
        typer.echo(f"  block {b['index']}: offset {b['offset']}, size {b['size']}, flags {b['flags']}{lock}")
    names = ", ".join(f"{e['name']} ({e['size']} B)" for e in info["entries"])
    typer.echo(f"cpio at {info['cpio_offset']}: {names}")
    typer.echo(f"intrinsics: {json.dumps(info['intrinsics']) if info['intrinsics'] is not None else 'none'}")
    for warning in info["warnings"]:  # damage libarchive (and so picamera2) reads past
        typer.echo(f"warning: {warning}")
