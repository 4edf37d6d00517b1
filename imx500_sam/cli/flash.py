"""``imx500-sam flash FILE.rpk``: load a network onto this Pi's IMX500, or onto many Pis over SSH."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from imx500_sam.cli.app import app


@app.command("flash")
def flash(
    rpk: Path = typer.Argument(..., help="Network firmware file (.rpk)."),
    host: list[str] = typer.Option(None, "--host", help="user@pi[:port] to flash over SSH (repeatable; parallel)."),
    verify: bool = typer.Option(False, "--verify", help="Start the camera, read a frame, check tensors and KPI."),
    identity: Path = typer.Option(None, "--identity", "-i", help="SSH private key."),
    known_hosts: Path = typer.Option(None, "--known-hosts", help="known_hosts file (default: ssh's own)."),
    ssh_config: Path = typer.Option(None, "--ssh-config", help="ssh_config file (ssh -F)."),
    remote_dir: str = typer.Option("imx500-sam/networks", "--remote-dir", help="Where the file goes on each Pi."),
    remote_command: str = typer.Option(
        "imx500-sam", "--remote-command", help="imx500-sam on the Pi (e.g. ~/venv/bin/imx500-sam)."
    ),
    jobs: int = typer.Option(8, "--jobs", "-j", min=1, help="Hosts flashed at once."),
    expect_sha256: str = typer.Option(None, "--expect-sha256", help="Refuse the file unless its SHA-256 matches."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Validate the .rpk, then load it with picamera2 here, or copy+checksum+flash on each --host."""
    from firmware_packaging import flash as fl

    if not host:
        result = fl.flash_local(rpk, verify=verify, expect_sha256=expect_sha256, progress=not as_json)
        typer.echo(
            json.dumps(result, indent=2) if as_json else f"{rpk}: loaded onto the IMX500 ({result['sha256'][:12]})"
        )
        if verify and not as_json:
            v = result["verify"]
            typer.echo(f"verified: output shapes {v['output_shapes']}, KPI {v['kpi_ms']} ms")
        return
    opts = fl.SshOptions(
        identity=identity,
        known_hosts=known_hosts,
        config=ssh_config,
        remote_dir=remote_dir,
        remote_command=remote_command,
    )
    results = fl.flash_remote(rpk, host, opts, verify=verify, jobs=jobs)
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in results], indent=2))
    else:
        typer.echo(fl.results_table(results))
    fl.main_remote_summary(results)
