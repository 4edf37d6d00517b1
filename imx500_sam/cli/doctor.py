"""``imx500-sam doctor``: check the set-up (host toolchain, or the Pi's camera side). Exit 0 ok, 5 when broken."""

from __future__ import annotations

import json

import typer

from imx500_sam.cli.app import app


@app.command()
def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON (for scripts)."),
    full: bool = typer.Option(
        False, "--full", help="Host: also convert a tiny network end to end with MCT and imxconv-pt (about a minute)."
    ),
) -> None:
    """Check the set-up: each row ok / warn / fail, what was found, the command that fixes it. Exit 0 or 5."""
    from rich.console import Console

    from imx500_sam.doctor import render_table, run_doctor

    err = Console(stderr=True)
    if not as_json:
        err.print("[dim]imx500-sam doctor: checking" + (" (--full converts a tiny network)" if full else "") + "...[/]")
    report = run_doctor(full=full)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        Console().print(render_table(report))
    raise typer.Exit(report.exit_code)
