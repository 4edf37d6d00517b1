"""The doctor's records: what a check body returns (``Finding``), the row shown for it (``Row``), the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Literal

from imx500_sam.errors import ExitCode

Status = Literal["ok", "warn", "fail"]
Role = Literal["host", "pi"]


@dataclass(frozen=True, kw_only=True)
class Finding:
    """What one check found, as its body returns it (the check's name, group and required-ness are declared).

    ``problem``: something is wrong (fail when the check is required, warn when optional); ``warning``: it works
    but is worth a look (warn either way); neither: ok. ``optional``: this outcome does not count against the
    exit code although the check is required. ``stop``: the group's later checks cannot run (the interpreter
    they all probe does not start).
    """

    found: str
    fix: str | None = None
    problem: bool = False
    warning: bool = False
    optional: bool = False
    stop: bool = False


@dataclass(frozen=True, kw_only=True)
class Row:
    """One check as shown: ``status`` ok / warn / fail, what was ``found``, the command that fixes it."""

    name: str
    status: Status
    found: str
    fix: str | None = None
    required: bool = True
    group: str = "host"


@dataclass(frozen=True)
class DoctorReport:
    """All rows, the role they were chosen for, and the exit code."""

    role: Role
    rows: list[Row]
    seconds: float

    @cached_property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.status == "fail" and r.required]

    @property
    def exit_code(self) -> int:
        return int(ExitCode.TOOLCHAIN_MISSING if self.failed else ExitCode.OK)

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "exit_code": self.exit_code,
            "ok": not self.failed,
            "seconds": round(self.seconds, 2),
            "checks": [asdict(r) for r in self.rows],
        }
