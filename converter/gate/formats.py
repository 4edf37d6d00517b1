"""Render a GateReport: text (people), json (tools), github (workflow annotations), junit (CI servers)."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from converter.gate.report import Finding, GateReport

FORMATS = ("text", "json", "github", "junit")


def render_text(report: GateReport) -> str:
    """Human-readable summary, one finding per line."""
    h, w = report.input_size
    lines = [f"imx500-sam check: {report.model} at {h}x{w}, {report.op_count} operations traced"]
    for f in report.findings:
        lines.append(f"  {f.status.upper():11s} {f.message()}")
    if not report.unsupported and not report.input_errors:
        lines.append("  operators: all supported by the IMX500 toolchain")
    m = report.memory
    if m is not None:
        lines.append(
            f"  SRAM estimate: {m.total_bytes:,} B of {m.available_bytes:,} B ({m.utilization:.0%}): "
            f"weights {m.weights_bytes:,} B + peak activations {m.activations_bytes:,} B "
            f"(at '{m.peak_module_path or m.peak_op}') + input {m.input_persistence_bytes:,} B + reserved "
            f"{m.reserved_bytes:,} B"
        )
    c = report.converter
    if c is not None:
        err = f", estimate {m.total_bytes / c.usage_bytes - 1:+.1%}" if m is not None else ""
        lines.append(
            f"  imxconv-pt --memory-report: {c.usage_bytes:,} B (runtime {c.runtime_bytes:,} B, model "
            f"{c.weights_bytes:,} B), fits: {c.fit_in_chip}{err} [{c.seconds:.1f} s]"
        )
    if report.over_budget and not report.unsupported:
        lines.append(f"  OVER BUDGET: {report.budget_hint()}")
    verdict = "PASS" if report.passed else f"FAIL ({report.exit_code.name.lower()}, exit {int(report.exit_code)})"
    lines.append(f"{verdict} in {report.seconds:.2f} s")
    return "\n".join(lines)


def render_json(report: GateReport) -> str:
    """The report as JSON."""
    return json.dumps(report.to_dict(), indent=2)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _annotation(level: str, msg: str, finding: Finding | None, default_file: str | None) -> str:
    props = []
    file = finding.source.file if finding and finding.source else default_file
    if file:
        props.append(f"file={_escape_prop(file)}")
        if finding and finding.source and finding.source.line:
            props.append(f"line={finding.source.line}")
    props.append(f"title={_escape_prop('IMX500 gate')}")
    return f"::{level} {','.join(props)}::{_escape_data(msg)}"


def render_github(report: GateReport, model_file: str | None = None) -> str:
    """GitHub Actions workflow commands: one ::error per finding, a notice with the SRAM figure."""
    model_file = model_file or report.file
    out = [_annotation("error", f.message(), f, model_file) for f in report.findings]
    if report.memory is not None:
        level = "error" if report.over_budget else "notice"
        line = report.budget_line() + (f" {report.budget_hint()}" if report.over_budget else "")
        out.append(_annotation(level, line, None, model_file))
    out.append(render_text(report).splitlines()[-1])
    return "\n".join(out)


def junit_xml(report: GateReport) -> str:
    """JUnit XML: one testsuite, test cases 'operators', 'sram' (and 'input')."""
    suite = ET.Element("testsuite", name="imx500-sam check", time=f"{report.seconds:.3f}")
    cases = 0
    failures = 0

    def case(name: str, problems: list[str], detail: str = "") -> None:
        nonlocal cases, failures
        cases += 1
        tc = ET.SubElement(suite, "testcase", classname=f"imx500.{report.model}", name=name)
        if problems:
            failures += 1
            fail = ET.SubElement(tc, "failure", message=problems[0], type=name)
            fail.text = "\n".join(problems)
        if detail:
            ET.SubElement(tc, "system-out").text = detail

    case("input", [f.message() for f in report.input_errors])
    case("operators", [f.message() for f in report.unsupported], f"{report.op_count} operations traced")
    if report.memory is not None:
        case(
            "sram",
            [report.budget_line() + " " + report.budget_hint()] if report.over_budget else [],
            report.budget_line(),
        )
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(report: GateReport, path: Path) -> Path:
    """Write the JUnit XML atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(junit_xml(report), encoding="utf-8")
    tmp.replace(path)
    return path
