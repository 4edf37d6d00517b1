"""The tested package versions (constraints.txt, else imx500-sam's own requirements) and the pip command that
installs them into the probed interpreter."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from imx500_sam.doctor.probes import Interpreter


def canonical(name: str) -> str:
    """PEP 503 name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pins:
    """Tested version specifiers by canonical package name, and where they came from."""

    specs: Mapping[str, str]
    source: str
    constraints: Path | None = None


def load_pins(repo: Path | None) -> Pins:
    """constraints.txt in ``repo`` when present; else the installed imx500-sam's own requirements (pyproject)."""
    from packaging.requirements import InvalidRequirement, Requirement

    constraints = repo / "constraints.txt" if repo is not None else None
    if constraints is not None and constraints.is_file():
        specs = {}
        for line in constraints.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            specs[canonical(req.name)] = str(req.specifier)
        return Pins(specs, str(constraints), constraints)
    from importlib import metadata

    specs = {}
    try:
        for line in metadata.requires("imx500-sam") or []:
            req = Requirement(line)
            if str(req.specifier):
                specs.setdefault(canonical(req.name), str(req.specifier))
    except metadata.PackageNotFoundError:
        return Pins({}, "none (no constraints.txt and imx500-sam is not installed)")
    return Pins(specs, "imx500-sam's requirements (pyproject.toml)")


def pip_install(interp: Interpreter, pins: Pins, names: Sequence[str], *, force: bool = False) -> str:
    """The pip command that installs ``names`` at their pinned versions into the probed interpreter."""
    reqs = []
    for n in names:
        spec = pins.specs.get(canonical(n.split("[")[0]), "")
        reqs.append(shlex.quote(f"{n}{spec}" if spec else n))
    con = f" -c {shlex.quote(str(pins.constraints))}" if pins.constraints else ""
    again = " --force-reinstall" if force else ""
    return f"{shlex.quote(str(interp.python))} -m pip install{again}{con} {' '.join(reqs)}"
