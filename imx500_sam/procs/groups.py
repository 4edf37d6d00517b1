"""External tools in process groups of their own: ``run_tool``, ``run_captured`` and ``map_in_threads``.

Each tool runs with a watchdog in its group (a ``sh`` that ends the group when this process ends, however it
ends) and a parent-death signal; on a timeout or a stop the group is ended (TERM, then KILL) before the error
propagates. See the package docstring for why the watchdog is needed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TypeVar

from imx500_sam.errors import ToolFailedError
from imx500_sam.procs.signals import STOP_EXCEPTIONS, activity, deferred_stop, note_stop

DEFAULT_TOOL_TIMEOUT_S = 1800.0  # imxconv-pt takes 30-60 s for PicoSAM3 on 2 cores (shared/notes/toolchain.md)
STOP_GRACE_S = 3.0  # between SIGTERM and SIGKILL for a tool's process group

_T = TypeVar("_T")
_R = TypeVar("_R")

_WATCHDOG = (
    'trap "" INT TERM HUP; read -r _; '  # blocks until the pipe closes: imx500-sam ended, whichever way
    'kill -TERM 0 2>/dev/null; sleep "$1"; kill -KILL 0'  # 0 = this process group (the watchdog ignores TERM)
)
_PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
    _prctl = None


def _child_setup(pgid: int, parent: int, pdeathsig: int | None) -> None:
    """Runs in the child between fork and exec: join ``pgid`` (0: a new group), die with the parent."""
    os.setpgid(0, pgid)
    if pdeathsig is not None and _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(pdeathsig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)


def group_members(pgid: int) -> list[int] | None:
    """Live (non-zombie) processes of a process group, from /proc; None where there is no /proc."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    members = []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(name))
    return members


def stop_group(pgid: int, keep: Sequence[int] = (), grace_s: float = STOP_GRACE_S) -> None:
    """End process group ``pgid``: SIGTERM, up to ``grace_s`` for its members (other than ``keep``), then SIGKILL."""
    members = group_members(pgid)
    if members is not None and not set(members) - set(keep):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + (grace_s if members is not None else min(grace_s, 0.5))
    while time.monotonic() < deadline:
        members = group_members(pgid)
        if members is None or not set(members) - set(keep):
            if members is None:
                time.sleep(max(0.0, deadline - time.monotonic()))
            break
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


_LIVE_GROUPS: set[int] = set()  # process groups of tools running now (any thread)
_LIVE_LOCK = threading.Lock()


def stop_live_groups() -> None:
    """End every tool group still running (tools started from worker threads, which a stop does not unwind)."""
    with _LIVE_LOCK:
        groups = list(_LIVE_GROUPS)
    for pgid in groups:
        stop_group(pgid, keep=(pgid,))


def map_in_threads(fn: Callable[[_T], _R], items: Iterable[_T], workers: int) -> list[_R]:
    """``list(map(fn, items))`` on up to ``workers`` threads (each may run tools through ``run_captured``).

    A stop in the main thread first ends the tools the threads are running (``stop_live_groups``), so that the
    threads return at once, then propagates once they have.
    """
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        return list(pool.map(fn, items))
    except STOP_EXCEPTIONS:
        stop_live_groups()
        raise
    finally:
        pool.shutdown(wait=True)


def _run_group(
    args: Sequence[str | os.PathLike[str]],
    name: str,
    stdout: IO[bytes],
    stderr: IO[bytes] | int,
    timeout_s: float,
    env: dict[str, str] | None,
    cwd: Path | None,
    stdin: IO[bytes] | int = subprocess.DEVNULL,
) -> int:
    """Run ``args`` in a process group of its own with a watchdog; returns its exit code (see ``run_tool``).

    Raises subprocess.TimeoutExpired after ``timeout_s`` (the group already ended).
    """
    read_end, write_end = os.pipe()  # the write end is close-on-exec: only this process holds it
    watchdog: subprocess.Popen[bytes] | None = None
    proc: subprocess.Popen[bytes] | None = None
    try:
        try:
            watchdog = subprocess.Popen(
                ["/bin/sh", "-c", _WATCHDOG, "imx500-sam-watchdog", str(int(max(1, round(STOP_GRACE_S))))],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=lambda: os.setpgid(0, 0),
                close_fds=True,
            )
        finally:
            os.close(read_end)
        pgid, parent = watchdog.pid, os.getpid()
        with _LIVE_LOCK:
            _LIVE_GROUPS.add(pgid)
        with activity(name):
            proc = subprocess.Popen(
                [str(a) for a in args],
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                env=env,
                cwd=cwd,
                preexec_fn=lambda: _child_setup(pgid, parent, signal.SIGTERM),
                close_fds=True,
            )
            try:
                return proc.wait(timeout=timeout_s)
            except STOP_EXCEPTIONS:
                note_stop(f"stopped {name} and its processes")
                raise
    finally:
        with deferred_stop():  # a second signal waits until the group is gone
            if watchdog is not None:
                stop_group(watchdog.pid, keep=(watchdog.pid,))
                with _LIVE_LOCK:
                    _LIVE_GROUPS.discard(watchdog.pid)
            os.close(write_end)
            for p in (proc, watchdog):
                if p is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        p.wait(timeout=5)


def run_tool(
    args: Sequence[str | os.PathLike[str]],
    *,
    name: str,
    log_path: Path,
    timeout_s: float = DEFAULT_TOOL_TIMEOUT_S,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Run ``args`` with its output in ``log_path``; returns its exit code.

    The tool and everything it starts form one process group that is ended as a whole when the tool exits,
    on a timeout (ToolFailedError naming the tool and its log, exit 6), on an interrupt (which then
    propagates), and, through the watchdog, when this process dies. Call from the main thread (the tool's
    parent-death signal follows the thread that started it).
    """
    with open(log_path, "wb") as log:
        try:
            return _run_group(args, name, log, subprocess.STDOUT, timeout_s, env, cwd)
        except subprocess.TimeoutExpired:
            raise ToolFailedError(
                f"{name} did not finish within {timeout_s:g} s and was stopped (log: {log_path}).",
                hint="If it needs longer, raise --tool-timeout.",
            ) from None


class Captured(subprocess.CompletedProcess):
    """What ``run_captured`` gives: ``subprocess.CompletedProcess`` (text) and whether the timeout ended it."""

    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str, timed_out: bool) -> None:
        super().__init__(args, returncode, stdout, stderr)
        self.timed_out = timed_out


def run_captured(
    args: Sequence[str | os.PathLike[str]],
    *,
    name: str,
    timeout_s: float = DEFAULT_TOOL_TIMEOUT_S,
    env: dict[str, str] | None = None,
    cwd: Path | str | None = None,
    stdin: IO[bytes] | int = subprocess.DEVNULL,
) -> Captured:
    """``subprocess.run(args, capture_output=True, text=True)`` on the process-group machinery of ``run_tool``.

    A timeout ends the whole group and gives ``timed_out``, return code 124 and a last stderr line saying so (a
    program's own exit 124 is not a timeout); a program that cannot start
    raises OSError, as subprocess.run does. The output goes through anonymous temporary files (nothing is left
    on disk, whatever happens). From a worker thread, the main thread's stop ends it through
    ``stop_live_groups`` (``map_in_threads`` calls it).
    """
    timed_out = False
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            rc = _run_group(args, name, out, err, timeout_s, env, Path(cwd) if cwd is not None else None, stdin)
        except subprocess.TimeoutExpired:
            rc, timed_out = 124, True
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if timed_out:
        stderr += f"\ntimed out after {timeout_s:.0f} s"
    return Captured(list(map(str, args)), rc, stdout, stderr, timed_out)
