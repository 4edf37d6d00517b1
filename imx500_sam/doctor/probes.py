"""The programs the doctor runs: the interpreter probe, the MCT import, ``pip check``, ``imxconv-pt --version``,
``vcgencmd pmic_read_adc``; each through ``imx500_sam.procs`` in a process group of its own.

The probed interpreter is ``DoctorEnv.python`` (a subprocess, so that tests can point it at a venv that
stands in for a Pi's), tools come from ``DoctorEnv.path``.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imx500_sam.doctor.env import REPO_ROOT, DoctorEnv
from imx500_sam.errors import last_line
from imx500_sam.procs import run_captured

_PROBE_MARK = "@@imx500-sam-doctor@@"


def run(
    args: Sequence[str], env: DoctorEnv, timeout: float = 120.0, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a program (argument list, never a shell); output as text. OSError / timeout become rc 127 / 124.

    In a process group of its own (imx500_sam.procs): a timeout, a stop or this process's death ends the
    program and everything it started (imxconv-pt's shell scripts and JVMs included).
    """
    try:
        return run_captured(list(args), name=Path(str(args[0])).name, timeout_s=timeout, env=env.run_env(), cwd=cwd)
    except OSError as exc:
        return subprocess.CompletedProcess(list(args), 127, "", str(exc))


def version_tuple(text: str) -> tuple[int, ...]:
    """The first three numbers of a version string."""
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


# --------------------------------------------------------------------------------------------- the interpreter

# Runs inside the probed interpreter (stdlib only; any Python 3.8+): its version, venv, distributions, imports.
_PROBE_SRC = r"""
import importlib, json, os, platform, sys
sys.path[:] = [p for p in sys.path if p not in ("", ".", os.getcwd())]
import importlib.metadata as md
names, modules = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {"version": list(sys.version_info[:3]), "executable": sys.executable, "prefix": sys.prefix,
       "base_prefix": getattr(sys, "base_prefix", sys.prefix), "machine": platform.machine(),
       "dists": {}, "modules": {}}
for n in names:
    try:
        d = md.distribution(n)
        out["dists"][n] = {"version": d.version, "location": str(d.locate_file(""))}
    except Exception:
        out["dists"][n] = None
for m in modules:
    try:
        mod = importlib.import_module(m)
        out["modules"][m] = {"ok": True, "file": getattr(mod, "__file__", None)}
    except BaseException as e:
        out["modules"][m] = {"ok": False, "error": ("%s: %s" % (type(e).__name__, e)).strip()[:300]}
print("\n@@imx500-sam-doctor@@" + json.dumps(out))
"""


@dataclass(frozen=True)
class Interpreter:
    """What the probe saw in one Python interpreter."""

    python: Path
    version: tuple[int, int, int] | None = None
    prefix: str = ""
    base_prefix: str = ""
    machine: str = ""
    dists: Mapping[str, Mapping[str, str] | None] = field(default_factory=dict)
    modules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    error: str | None = None  # the probe itself failed

    @property
    def in_venv(self) -> bool:
        return bool(self.prefix) and self.prefix != self.base_prefix

    def pyvenv_cfg(self) -> dict[str, str]:
        """``key = value`` lines of the venv's pyvenv.cfg (empty outside a venv)."""
        cfg = Path(self.prefix) / "pyvenv.cfg"
        if not self.in_venv or not cfg.is_file():
            return {}
        out = {}
        for line in cfg.read_text(errors="replace").splitlines():
            if "=" in line:
                key, _, value = line.partition("=")
                out[key.strip().lower()] = value.strip()
        return out

    @property
    def sees_system_site(self) -> bool:
        return not self.in_venv or self.pyvenv_cfg().get("include-system-site-packages", "false").lower() == "true"

    def version_of(self, dist: str) -> str | None:
        info = self.dists.get(dist)
        return info["version"] if info else None

    def imports(self, module: str) -> bool:
        """Whether ``module`` (one the probe was asked about) imported."""
        return bool(self.modules.get(module, {}).get("ok"))


def probe_interpreter(env: DoctorEnv, dists: Sequence[str], modules: Sequence[str]) -> Interpreter:
    """Run the probe in ``env.python``: versions of ``dists``, and which ``modules`` import (and from where)."""
    proc = run([str(env.python), "-c", _PROBE_SRC, json.dumps(list(dists)), json.dumps(list(modules))], env, 120)
    marker = proc.stdout.rfind(_PROBE_MARK)
    if marker < 0:
        why = last_line(proc.stderr) or f"exit code {proc.returncode}"
        return Interpreter(python=env.python, error=why)
    data = json.loads(proc.stdout[marker + len(_PROBE_MARK) :].strip().splitlines()[0])
    return Interpreter(
        python=env.python,
        version=tuple(data["version"]),  # type: ignore[arg-type]
        prefix=data["prefix"],
        base_prefix=data["base_prefix"],
        machine=data["machine"],
        dists=data["dists"],
        modules=data["modules"],
    )


# --------------------------------------------------------------------------------------------- host tools

_MCT_PROBE_SRC = r"""
import json
import torch
from imx500_sam.compat import import_mct, import_torchvision
tv = import_torchvision()
try:
    from torchvision.extension import _has_ops
    ops = bool(_has_ops())
except Exception:
    ops = False
mct = import_mct()
print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "torchvision": tv.__version__,
                  "torchvision_ops": ops, "mct": getattr(mct, "__version__", "?")}))
"""


@dataclass(frozen=True, kw_only=True)
class MctImport:
    """Importing MCT through imx500-sam's torchvision work-around in the probed interpreter."""

    error: str | None = None  # the import failed: its last line
    torch: str = ""
    cuda: str | None = None  # torch's CUDA version; None: a CPU build
    torchvision: str = ""
    torchvision_ops: bool = False  # torchvision's C++ ops load beside this torch
    mct: str = ""


def probe_mct_import(interp: Interpreter, env: DoctorEnv) -> MctImport:
    """Import torch, torchvision and MCT (imx500_sam/compat.py) in the probed interpreter."""
    proc = run([str(interp.python), "-c", _MCT_PROBE_SRC], env, 300, cwd=str(REPO_ROOT))
    last = last_line(proc.stdout)
    if proc.returncode != 0 or not last.startswith("{"):
        return MctImport(error=last_line(proc.stderr) or f"exit code {proc.returncode}")
    return MctImport(**json.loads(last))


def pip_check(interp: Interpreter, env: DoctorEnv) -> subprocess.CompletedProcess[str]:
    """``pip check`` in the probed interpreter."""
    return run([str(interp.python), "-m", "pip", "check"], env, 120)


def imxconv_version(exe: Path, env: DoctorEnv) -> subprocess.CompletedProcess[str]:
    """``imxconv-pt --version --logger-level debug``: starts the front end, uni-pytorch and the Java back end."""
    return run([str(exe), "--version", "--logger-level", "debug"], env, 180)


# --------------------------------------------------------------------------------------------- Pi tools


def pmic_read_adc(exe: str, env: DoctorEnv) -> subprocess.CompletedProcess[str]:
    """``vcgencmd pmic_read_adc``: the Pi 5's rail currents and voltages."""
    return run([exe, "pmic_read_adc"], env, 15)
