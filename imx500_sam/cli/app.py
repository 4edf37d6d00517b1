"""The Typer application object; commands live in their own modules (thin wrappers)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="imx500-sam",
    help="Promptable segmentation (PicoSAM3) inside the Sony IMX500 sensor: convert, check, package, flash, run.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain click help: wraps text, never cuts an option name at 80 columns
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """imx500-sam: PicoSAM3 on the Raspberry Pi AI Camera."""
