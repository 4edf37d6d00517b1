"""Bench records: the command, the machine, the versions and the date with every result; atomic writes."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from importlib import metadata
from pathlib import Path
from typing import Any

#: the arguments of the ``imx500-sam`` call in progress (set by ``imx500_sam.cli.main``; sys.argv otherwise)
CLI_ARGV: ContextVar[list[str] | None] = ContextVar("imx500_sam_cli_argv", default=None)

VERSIONED = ("imx500-sam", "numpy", "opencv-python-headless", "opencv-python", "onnxruntime", "picamera2")


def machine_info() -> dict[str, Any]:
    """Where a benchmark ran: board model (a Pi's device tree), CPU, cores, load, memory, OS, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:  # Raspberry Pi: "Raspberry Pi 5 Model B Rev 1.0"
        info["board"] = Path("/proc/device-tree/model").read_bytes().rstrip(b"\x00").decode(errors="replace")
    except OSError:
        info["board"] = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
                break
    except (OSError, ValueError):
        pass
    return info


def versions() -> dict[str, str]:
    """Installed versions of the packages a bench depends on (absent ones left out)."""
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        import cv2

        out["opencv"] = cv2.__version__
    except ImportError:
        pass
    return out


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed (program name and arguments, shell-quoted)."""
    cli = CLI_ARGV.get()
    args = list(argv if argv is not None else (["imx500-sam", *cli] if cli is not None else sys.argv))
    if args and args[0].endswith(("__main__.py", "imx500-sam")):
        args[0] = "imx500-sam"
    return " ".join(shlex.quote(a) for a in args)


def toolkit_commit() -> str:
    """The git commit of the running toolkit (``+dirty`` with uncommitted changes), or its version when it is
    not a git checkout (an installed wheel on a Pi)."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        from imx500_sam import __version__

        return f"imx500-sam {__version__} (not a git checkout)"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def header(bench: str, command: str | None = None) -> dict[str, Any]:
    """The fields every bench record starts with."""
    return {
        "benchmark": bench,
        "command": command or command_line(),
        "commit": toolkit_commit(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(),
        "versions": versions(),
    }


@contextlib.contextmanager
def recorded_run(finish: Callable[[str], None]) -> Iterator[None]:
    """Run the block, then ``finish(status)`` however it ended: "complete", or ``ending(exc)`` for the exception
    that ended it (which then propagates), so that an error or a stop keeps what was measured."""
    status = "error"
    try:
        yield
        status = "complete"
    except BaseException as exc:
        status = ending(exc)
        raise
    finally:
        finish(status)


def ending(exc: BaseException) -> str:
    """A run's ``status`` when ``exc`` ended it: "interrupted" (Ctrl-C, SIGTERM, SIGHUP) or "error: ..."."""
    from imx500_sam.procs import STOP_EXCEPTIONS

    return "interrupted" if isinstance(exc, STOP_EXCEPTIONS) else f"error: {exc}"


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``path`` through a temporary file in the same folder and a rename (never half-written)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # an ordinary file's mode, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic pretty JSON."""
    write_atomic(path, json.dumps(data, indent=2, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def stats(values: list[float]) -> dict[str, float] | None:
    """n, mean, median, p90, p99, min, max (rounded), or None for no values."""
    import numpy as np

    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        return None
    return {
        "n": int(v.size),
        "mean": round(float(v.mean()), 4),
        "median": round(float(np.median(v)), 4),
        "p90": round(float(np.percentile(v, 90)), 4),
        "p99": round(float(np.percentile(v, 99)), 4),
        "min": round(float(v.min()), 4),
        "max": round(float(v.max()), 4),
    }
