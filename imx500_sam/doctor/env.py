"""Where the doctor looks (``DoctorEnv``) and what it reads there without running anything: role, OS, memory.

Every file is read under ``DoctorEnv.root`` and every tool found on ``DoctorEnv.path``, so that tests can
simulate a Pi with a directory tree.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from imx500_sam.doctor.records import Role

REPO_ROOT = Path(__file__).resolve().parents[2]
PI_DIST_PACKAGES = "/usr/lib/python3/dist-packages"  # where Debian's python3-* packages install


@dataclass(frozen=True)
class DoctorEnv:
    """Where the checks look. Defaults: this machine, this interpreter, this PATH."""

    root: Path = Path("/")  # prefix for /proc, /sys, /etc, /lib/firmware, /dev, /usr/lib/python3
    python: Path = field(default_factory=lambda: Path(sys.executable))
    path: str | None = None  # PATH for tools (java, imxconv-pt, imx500-package, vcgencmd); None: $PATH
    cache: Path | None = None  # imx500-sam cache; None: imx500_sam.defaults.cache_dir()
    repo: Path | None = REPO_ROOT  # where constraints.txt is looked for
    role: Role | None = None  # None: detect from <root>/proc/device-tree/model

    def file(self, absolute: str) -> Path:
        """``absolute`` (a path on the target machine) under ``root``."""
        return self.root / absolute.lstrip("/")

    @property
    def search_path(self) -> str:
        return self.path if self.path is not None else os.environ.get("PATH", os.defpath)

    def which(self, name: str) -> str | None:
        return shutil.which(name, path=self.search_path)

    def run_env(self) -> dict[str, str]:
        return dict(os.environ, PATH=self.search_path)


def pi_model(env: DoctorEnv) -> str | None:
    """The Raspberry Pi model of ``env``'s machine, or None when it is not a Pi (imx500_sam.pi)."""
    from imx500_sam.pi import pi_model as model_under

    return model_under(env.root)


def detect_role(env: DoctorEnv) -> Role:
    """``pi`` on a Raspberry Pi (its device-tree model says so), else ``host``."""
    return env.role or ("pi" if pi_model(env) else "host")


def os_release(env: DoctorEnv) -> dict[str, str]:
    """<root>/etc/os-release as a dict."""
    out = {}
    try:
        for line in env.file("/etc/os-release").read_text(errors="replace").splitlines():
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip()] = value.strip().strip('"')
    except OSError:
        pass
    return out


def mem_available(env: DoctorEnv) -> int | None:
    """MemAvailable from <root>/proc/meminfo, bytes."""
    try:
        text = env.file("/proc/meminfo").read_text()
    except OSError:
        return None
    m = re.search(r"^MemAvailable:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None
