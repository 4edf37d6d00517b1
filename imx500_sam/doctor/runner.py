"""The runner: every declared check of this machine's group, in order; the slow ones in threads."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property

from imx500_sam.doctor.env import DoctorEnv, detect_role
from imx500_sam.doctor.pins import Pins, load_pins
from imx500_sam.doctor.probes import Interpreter, probe_interpreter
from imx500_sam.doctor.records import DoctorReport, Finding, Row
from imx500_sam.doctor.registry import Check, Group, checks, get_group
from imx500_sam.procs import map_in_threads


@dataclass
class Context:
    """What a check body may ask for (``registry.INPUTS``: one attribute each); the interpreter is probed on
    first use, once per run."""

    env: DoctorEnv
    group: Group
    full: bool = False

    @cached_property
    def interp(self) -> Interpreter:
        return probe_interpreter(self.env, self.group.dists, self.group.modules)

    @cached_property
    def pins(self) -> Pins:
        return load_pins(self.env.repo)

    def run(self, declared: Check) -> Finding | None:
        """Run one check's body with the inputs it names."""
        return declared.body(**{name: getattr(self, name) for name in declared.inputs})


def run_group(group: str, env: DoctorEnv, full: bool = False) -> list[Row]:
    """Every check of ``group`` in display order; consecutive ``parallel`` checks run together in threads.

    A finding with ``stop`` ends the group (the probed interpreter does not start: nothing after it can run).
    """
    ctx = Context(env=env, group=get_group(group), full=full)
    todo, rows = checks(group), []
    while todo:
        batch = [todo.pop(0)]
        while batch[0].parallel and todo and todo[0].parallel:
            batch.append(todo.pop(0))
        # in threads, a stop ends the probes' programs first (imx500_sam.procs)
        findings = [ctx.run(batch[0])] if len(batch) == 1 else map_in_threads(ctx.run, batch, len(batch))
        rows += [r for c, f in zip(batch, findings, strict=True) if (r := c.row(f)) is not None]
        if any(f is not None and f.stop for f in findings):
            break
    return rows


def run_doctor(env: DoctorEnv | None = None, full: bool = False) -> DoctorReport:
    """Run every check for this machine's role (``env.role`` overrides the detection)."""
    env = env or DoctorEnv()
    t0 = time.perf_counter()
    role = detect_role(env)
    rows = run_group(role, env, full=full)
    return DoctorReport(role=role, rows=rows, seconds=time.perf_counter() - t0)
