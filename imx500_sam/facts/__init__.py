"""IMX500 facts as data, each with its source (``imx500.json``; operators in ``operators.json``; host toolchain
facts for ``imx500-sam doctor`` in ``toolchain.json``, whose Java minimum the Makefile and converter/imxconv.py
read too).

Light module (json only): usable on a Pi and by firmware_packaging.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Fact:
    """One documented IMX500 fact."""

    name: str
    value: Any
    source: str


_NOTE = r"shared/notes/[\w.-]+(?:,\s*[\w.-]+\.md)*"
_NOTES = (
    (re.compile(rf"\s*\({_NOTE}\)"), ""),  # "(shared/notes/x.md)"
    (re.compile(rf"\s*[,;]\s*{_NOTE}"), ""),  # "(..., shared/notes/x.md)"
    (re.compile(rf"\({_NOTE}:\s*"), "("),  # "(shared/notes/x.md: ...)"
    (re.compile(rf"^{_NOTE}:\s*"), ""),  # "shared/notes/x.md: ..."
)


def cite(source: str) -> str:
    """A fact's source without references to shared/notes/*.md (the maintainers' notes are not in the repo)."""
    for pattern, repl in _NOTES:
        source = pattern.sub(repl, source)
    return source.strip()


@cache
def _load(name: str) -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


def fact(name: str) -> Fact:
    """Return the fact ``name`` from imx500.json (KeyError if unknown)."""
    entry = _load("imx500.json")[name]
    return Fact(name=name, value=entry["value"], source=entry["source"])


def operator_table() -> dict[str, Any]:
    """The IMX500 operator table (operators.json): sources, conditions and one entry per operator family."""
    return _load("operators.json")


def toolchain_fact(name: str) -> Fact:
    """Return the host toolchain fact ``name`` from toolchain.json (KeyError if unknown)."""
    entry = _load("toolchain.json")[name]
    return Fact(name=name, value=entry["value"], source=entry["source"])


SRAM_AVAILABLE_BYTES: int = fact("sram_available_bytes").value
SENSOR_FULL_SIZE: tuple[int, int] = tuple(fact("sensor_full_size").value)  # (w, h)
INPUT_SIZE_MIN: int = fact("input_size_min").value
INPUT_SIZE_MAX: int = fact("input_size_max").value
INPUT_CHANNELS: int = fact("input_channels").value
