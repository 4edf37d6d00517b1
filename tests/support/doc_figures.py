"""Figures in the project's documents and the committed JSON each one cites.

A measured figure carries a citation right after it:
``0.3667<!-- fig: benchmarks/results/imgviz_miou.json#results.0.miou -->`` (path components are dict keys or
list indexes). ``figures(text)`` finds every number with a decimal point or a percent sign outside code (fenced
blocks, inline code, HTML comments, links' targets) and binds each citation to the nearest such number before it
on its line; ``matches(figure, value)`` says whether the printed figure is the JSON value as printed (rounded to
the figure's decimals; a percent of a fraction; ``M`` for millions).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CITE = re.compile(r"<!--\s*fig:\s*(?P<file>[^#\s]+)#(?P<path>.+?)\s*-->")
# a number with a decimal point or a percent sign (a version such as 3.19.2 is one token and not a figure)
NUMBER = re.compile(r"(?<![\w.\-/])(?P<num>\d[\d,]*\.\d+(?:\.\d+)*|\d[\d,]*)(?P<unit>\s?%|M\b)?")
_CODE = re.compile(r"`[^`]*`")
_COMMENT = re.compile(r"<!--.*?-->")
_LINK_TARGET = re.compile(r"\]\([^)]*\)")


@dataclass(frozen=True)
class Figure:
    """A number printed in a document, where, and the citation bound to it (None: uncited)."""

    doc: str
    line: int
    text: str  # the token as printed
    value: float
    decimals: int
    unit: str  # "", "%" or "M"
    context: str
    cite: tuple[str, str] | None


def _blank(m: re.Match[str]) -> str:
    return " " * (m.end() - m.start())


def figures(doc: str, text: str) -> list[Figure]:
    """Every figure-like number of ``text`` (outside code), with the citation that follows it, if any."""
    out: list[Figure] = []
    fenced = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if raw.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        cites = [(m.start(), m.group("file"), m.group("path")) for m in CITE.finditer(raw)]
        line = _LINK_TARGET.sub(_blank, _COMMENT.sub(_blank, _CODE.sub(_blank, raw)))
        found: list[tuple[int, Figure]] = []
        for m in NUMBER.finditer(line):
            num, unit = m.group("num"), (m.group("unit") or "").strip()
            if num.count(".") > 1 or ("." not in num and unit != "%"):
                continue  # a version, or an integer: not a measured figure by this rule
            decimals = len(num.split(".")[1]) if "." in num else 0
            value = float(num.replace(",", ""))
            found.append((m.end(), Figure(doc, lineno, m.group(0), value, decimals, unit, raw.strip()[:160], None)))
        bound: dict[int, tuple[str, str]] = {}
        for pos, file, path in cites:
            before = [i for i, (end, _) in enumerate(found) if end <= pos and i not in bound]
            if before:
                bound[before[-1]] = (file, path)
        out += [Figure(**{**f.__dict__, "cite": bound.get(i)}) for i, (_, f) in enumerate(found)]
    return out


def json_value(root: Path, file: str, path: str) -> Any:
    """The value at ``path`` (dot-separated keys / list indexes; a key may itself hold dots) of ``root/file``."""
    node: Any = json.loads((root / file).read_text())
    parts = path.split(".")
    while parts:
        if isinstance(node, list):
            node, parts = node[int(parts[0])], parts[1:]
            continue
        for n in range(len(parts), 0, -1):  # the longest run of parts that is a key
            key = ".".join(parts[:n])
            if key in node:
                node, parts = node[key], parts[n:]
                break
        else:
            raise KeyError(path)
    return node


def matches(fig: Figure, value: Any) -> bool:
    """Whether the printed figure is ``value`` as printed."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    candidates = [float(value)]
    if fig.unit == "%":
        candidates.append(100 * float(value))
    if fig.unit == "M":
        candidates.append(float(value) / 1e6)
    return any(abs(c - fig.value) <= 10 ** (-fig.decimals) / 2 + 1e-9 for c in candidates)  # printed rounded
