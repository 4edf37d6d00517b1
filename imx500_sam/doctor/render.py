"""The doctor's report as a table for people (``--json`` prints ``DoctorReport.to_json()`` instead)."""

from __future__ import annotations

from typing import Any

from imx500_sam.doctor.records import DoctorReport
from imx500_sam.doctor.registry import get_group

_STYLE = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]"}


def render_table(report: DoctorReport) -> Any:
    """A rich renderable: one line per check."""
    from rich import box
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    where = get_group(report.role).title
    table = Table(title=f"imx500-sam doctor: {where}", title_justify="left", box=box.SIMPLE_HEAD, expand=False)
    table.add_column("", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("found  [cyan](fix)[/]", overflow="fold")
    for r in report.rows:
        name = escape(r.name) + ("" if r.required else " [dim]*[/]")
        text = escape(r.found) + (f"\n[cyan]fix: {escape(r.fix)}[/]" if r.fix and r.status != "ok" else "")
        table.add_row(_STYLE[r.status], name, text)
    if report.failed:
        summary = Text(
            f"{len(report.failed)} required check(s) failed: {', '.join(r.name for r in report.failed)} (exit 5)."
            " * optional check.",
            style="bold red",
        )
    else:
        warns = sum(r.status == "warn" for r in report.rows)
        summary = Text(
            f"All required checks pass ({warns} warning(s)) in {report.seconds:.1f} s. * optional check.",
            style="green" if not warns else "",
        )
    return Group(table, summary)
