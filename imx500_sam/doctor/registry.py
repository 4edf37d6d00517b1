"""The registry of checks: each declared once with its name, group and whether it is required.

The way segment-anything's ``sam_model_registry`` names its builders, ``@check(name=..., group=...,
required=...)`` names a body that returns a ``Finding`` (or None: the check does not apply here); the runner
(``imx500_sam.doctor.runner``) runs a group's checks in declaration order. A body asks for what it needs by
parameter name, from ``INPUTS``: ``env`` (the ``DoctorEnv``), ``interp`` (the group's probed interpreter),
``pins`` (the tested versions) and ``full`` (``--full`` was given). A declared check is also callable
directly with those arguments and returns its ``Row`` (or None), which is how the tests call one check.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from imx500_sam.doctor.records import Finding, Row, Status

INPUTS = ("env", "interp", "pins", "full")  # what the runner hands a body, by parameter name
Body = Callable[..., Finding | None]


@dataclass(frozen=True)
class Group:
    """A group of checks (a role: ``host`` or ``pi``), its title and what its interpreter probe looks at."""

    name: str
    title: str
    dists: tuple[str, ...] = ()  # distributions whose versions the probe reads
    modules: tuple[str, ...] = ()  # modules the probe imports


@dataclass(frozen=True)
class Check:
    """One declared check. ``parallel``: runs in a thread beside the neighbouring parallel checks (slow probes)."""

    name: str
    group: str
    required: bool
    body: Body
    parallel: bool = False
    inputs: tuple[str, ...] = field(default=())

    def row(self, finding: Finding | None) -> Row | None:
        """The row for what the body found (None: the check does not apply)."""
        if finding is None:
            return None
        required = self.required and not finding.optional
        status: Status = "ok"
        if finding.problem:
            status = "fail" if required else "warn"
        elif finding.warning:
            status = "warn"
        return Row(
            name=self.name, status=status, found=finding.found, fix=finding.fix, required=required, group=self.group
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Row | None:
        """Run the body with these arguments (the names in ``inputs``); its row."""
        return self.row(self.body(*args, **kwargs))


_GROUPS: dict[str, Group] = {}
_CHECKS: dict[str, list[Check]] = {}


def define_group(name: str, *, title: str, dists: Sequence[str] = (), modules: Sequence[str] = ()) -> Group:
    """Declare a group of checks (before its checks)."""
    if name in _GROUPS:
        raise ValueError(f"doctor group {name!r} is declared twice")
    group = _GROUPS[name] = Group(name=name, title=title, dists=tuple(dists), modules=tuple(modules))
    _CHECKS[name] = []
    return group


def check(*, name: str, group: str, required: bool, parallel: bool = False) -> Callable[[Body], Check]:
    """Declare the decorated body as the check ``name`` of ``group`` (display order: declaration order)."""

    def register(body: Body) -> Check:
        if group not in _GROUPS:
            raise ValueError(f"doctor check {name!r}: group {group!r} is not declared")
        if any(c.name == name for c in _CHECKS[group]):
            raise ValueError(f"doctor check {name!r} is declared twice in group {group!r}")
        inputs = tuple(inspect.signature(body).parameters)
        unknown = [p for p in inputs if p not in INPUTS]
        if unknown:
            raise TypeError(f"doctor check {name!r} asks for {unknown}; a body may ask for {list(INPUTS)}")
        declared = Check(name=name, group=group, required=required, body=body, parallel=parallel, inputs=inputs)
        _CHECKS[group].append(declared)
        return declared

    return register


def get_group(name: str) -> Group:
    """The declared group ``name`` (KeyError if none)."""
    return _GROUPS[name]


def checks(group: str) -> list[Check]:
    """The checks of ``group``, in display order."""
    return list(_CHECKS[group])
