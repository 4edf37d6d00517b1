"""Stopping work cleanly: signals as exceptions, external tools as one process group, owned work directories.

- ``stop_on_signals()`` (used once, by the CLI): SIGINT raises KeyboardInterrupt and SIGTERM/SIGHUP raise
  ``Terminated`` in the main thread, so ``finally`` blocks run; ``interrupted_line`` says what was stopped.
- ``run_tool()`` runs an external tool (imxconv-pt, imx500-package) in a process group of its own, with a
  watchdog in that group: a ``sh`` that waits on a pipe only this process holds open and, when the pipe closes
  (this process ended, even by SIGKILL or the OOM killer), ends the whole group (TERM, then KILL). Measured on
  imxconv-pt: its chain is python -> sh -> bash -> bash -> java -> bash -> java, each stage started afresh, so
  a parent-death signal (also set, on the tool itself) reaches only the first process; the watchdog ends them
  all. On a timeout or an interrupt the group is ended the same way before the error propagates.
- ``make_work_dir()`` marks the temporary directories the toolkit creates with an owner file (pid, process start
  time, host, boot id); ``remove_stale_work_dirs()`` removes those whose owner is dead on this host, never
  another live run's, never a directory without that file. ``publish_dir()`` makes a finished result the output
  in one step (rename, or rename-exchange over a previous output), self-healing where it takes two.
- ``run_captured()`` is ``subprocess.run(capture_output=True)`` on the same process-group machinery (``timed_out``
  says whether its timeout ended it); ``map_in_threads()`` runs such calls in worker threads and, on a stop, ends
  their tools before the threads are waited for.

Linux (x86-64 host, Raspberry Pi OS). Light module: no torch, usable by the device side.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TypeVar

from imx500_sam.errors import ExitCode, ToolFailedError
from imx500_sam.outputs import dir_mode

DEFAULT_TOOL_TIMEOUT_S = 1800.0  # imxconv-pt takes 30-60 s for PicoSAM3 on 2 cores (shared/notes/toolchain.md)
STOP_GRACE_S = 3.0  # between SIGTERM and SIGKILL for a tool's process group
OWNER_FILE = ".imx500-sam-owner"
_SHIELD_S = 10.0  # further signals within this time of the first are ignored: cleanup runs to its end

_T = TypeVar("_T")
_R = TypeVar("_R")

_STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)


class Terminated(BaseException):
    """SIGTERM or SIGHUP as an exception (like KeyboardInterrupt for SIGINT): unwinds ``finally`` blocks."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


STOP_EXCEPTIONS = (KeyboardInterrupt, Terminated)

# What is running now (stages, tools), what was stopped, and notes for the one line at the end.
_activity: list[str] = []
_state: dict = {"signum": None, "at": 0.0, "during": [], "notes": [], "defer": 0, "pending": None}


@contextlib.contextmanager
def activity(what: str) -> Iterator[None]:
    """Name what runs inside the block, for the line printed when it is interrupted."""
    _activity.append(what)
    try:
        yield
    finally:
        _activity.pop()


PAUSE_ENV = "IMX500_SAM_PAUSE_AT"  # tests: stop at a named stage, to be signalled there (tests/test_signals.py)


def pause_point(name: str) -> None:
    """When ``$IMX500_SAM_PAUSE_AT`` names ``name``: say so on stderr and wait (for a signal) at this point.

    Lets a test stop a command at any of its stages without timing races; does nothing otherwise.
    """
    if os.environ.get(PAUSE_ENV) != name:
        return
    # the real stderr: a stage may capture sys.stderr (MCT's log)
    print(f"imx500-sam: paused at {name} (pid {os.getpid()})", file=sys.__stderr__, flush=True)
    while True:
        time.sleep(0.1)


def note_stop(text: str) -> None:
    """Add a note to the interrupted line (what was stopped, what was kept)."""
    if text not in _state["notes"]:
        _state["notes"].append(text)


def _exception_for(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _handler(signum: int, frame: object) -> None:
    now = time.monotonic()
    if _state["signum"] is not None and now - _state["at"] < _SHIELD_S:
        return  # already stopping: let the cleanup finish (kill -9 always works; the next run cleans up)
    if _state["defer"] > 0:
        _state["pending"] = _state["pending"] or signum
        return
    _state.update(signum=signum, at=now, during=list(_activity))
    raise _exception_for(signum)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _install(signals: Sequence[int]) -> dict[int, object]:
    """Put ``_handler`` on each signal not already handled by it and not ignored (nohup); returns the old ones."""
    old = {}
    for s in signals:
        current = signal.getsignal(s)
        if current is not _handler and current is not signal.SIG_IGN:
            old[s] = current
            signal.signal(s, _handler)
    return old


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT -> KeyboardInterrupt, SIGTERM/SIGHUP -> Terminated, in the main thread; old handlers come back after."""
    if not _in_main_thread():
        yield
        return
    _state.update(signum=None, at=0.0, during=[], notes=[], defer=0, pending=None)
    old = _install(_STOP_SIGNALS)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def deferred_stop(hold: bool = False) -> Iterator[None]:
    """A stop signal arriving inside the block is raised when the block ends (keeps e.g. a training step whole).

    Outside ``stop_on_signals`` (in-process callers) it installs the same handlers for the block. Blocks nest:
    the outermost one raises. With ``hold`` the outermost block does not raise: the signal stays pending for the
    caller to act on (``pending_signal``, ``take_pending``), e.g. once all ranks of a distributed job agree.
    """
    if not _in_main_thread():
        yield
        return
    old = _install(_STOP_SIGNALS)
    if old and _state["defer"] == 0:  # standalone (not under stop_on_signals): a fresh start
        _state.update(signum=None, at=0.0, during=[], notes=[], pending=None)
    _state["defer"] += 1
    try:
        yield
    finally:
        _state["defer"] -= 1
        for s, h in old.items():
            signal.signal(s, h)
        if _state["defer"] == 0 and not hold:
            pending = take_pending()
            if pending is not None:
                raise stop_as_if_signalled(pending)


def pending_signal() -> int | None:
    """The stop signal waiting for a ``deferred_stop`` block to end, if any."""
    return _state["pending"]


def take_pending() -> int | None:
    """The waiting stop signal, now no longer waiting (the caller raises ``stop_as_if_signalled`` for it)."""
    pending, _state["pending"] = _state["pending"], None
    return pending


def stop_as_if_signalled(signum: int) -> BaseException:
    """The exception a stop signal raises (recorded for ``interrupted_line``), for a process told by a peer.

    Also used by distributed training: when one rank receives SIGTERM, every rank stops after the same step.
    """
    _state.update(signum=signum, at=time.monotonic(), during=list(_activity))
    return _exception_for(signum)


def exit_code_for(exc: BaseException) -> int:
    """130 for SIGINT (KeyboardInterrupt), 128 + signal number for Terminated (143 for SIGTERM)."""
    if isinstance(exc, Terminated):
        return 128 + exc.signum
    return int(ExitCode.INTERRUPTED)


def interrupted_line(exc: BaseException, command: str | None = None) -> str:
    """One line: which signal stopped which command during what, and what was done about it."""
    signum = exc.signum if isinstance(exc, Terminated) else signal.SIGINT
    during = _state["during"] if _state["signum"] is not None else list(_activity)
    line = f"imx500-sam: {command + ' ' if command else ''}interrupted by {signal.Signals(signum).name}"
    if during:
        line += f" during {' > '.join(during)}"
    return "; ".join([line, *_state["notes"]]) + "."


# --------------------------------------------------------------------------------------------- tools

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


# --------------------------------------------------------------------------------------------- work dirs


def _start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _owner() -> dict:
    return {"pid": os.getpid(), "start": _start_time(os.getpid()), "host": socket.gethostname(), "boot": _boot_id()}


def make_work_dir(parent: Path, prefix: str) -> Path:
    """A new temporary directory under ``parent`` (mode from the umask), marked as this process's."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    path.chmod(dir_mode())  # mkdtemp makes it 0700
    (path / OWNER_FILE).write_text(json.dumps(_owner()) + "\n")
    return path


def owner_alive(path: Path) -> bool | None:
    """True/False for a marked directory's owner on this host; None when unmarked or marked elsewhere."""
    try:
        owner = json.loads((path / OWNER_FILE).read_text())
        pid, start, host, boot = int(owner["pid"]), owner["start"], owner["host"], owner["boot"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host != socket.gethostname():
        return None
    if boot != _boot_id():
        return False  # the machine restarted since
    return start is not None and _start_time(pid) == start


PUBLISH_TARGET = "publish-target"  # in a work directory: the path of the output being replaced
PREVIOUS = "previous"  # in a work directory: the previous output, moved aside (two-step publish only)


def remove_stale_work_dirs(parent: Path, pattern: str) -> list[Path]:
    """Remove directories ``parent/pattern`` marked by an imx500-sam process that is no longer running.

    Self-healing: a run killed in the middle of a two-step publish (``publish_dir`` without rename-exchange)
    left the previous output in its work directory and none at the target; it is put back first.
    """
    removed = []
    with contextlib.suppress(OSError):
        for path in sorted(parent.glob(pattern)):
            if path.is_dir() and not path.is_symlink() and owner_alive(path) is False:
                _restore_previous(path)
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def _restore_previous(work: Path) -> None:
    previous, target_file = work / PREVIOUS, work / PUBLISH_TARGET
    if not previous.is_dir() or not target_file.is_file():
        return
    target = Path(target_file.read_text().strip())
    if target.parent == work.parent and not (target.exists() or target.is_symlink()):
        previous.rename(target)


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100
try:
    _renameat2 = ctypes.CDLL(None, use_errno=True).renameat2 if sys.platform.startswith("linux") else None
except (OSError, AttributeError):  # pragma: no cover - a libc without renameat2 (glibc < 2.28, musl < 1.2.?)
    _renameat2 = None


def rename_exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if _renameat2 is None or os.environ.get("IMX500_SAM_NO_RENAME_EXCHANGE"):
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # the file system (or kernel) has no exchange: the caller falls back
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def publish_dir(result: Path, out: Path) -> None:
    """Make ``result`` (a folder inside a ``make_work_dir`` directory beside ``out``) the output ``out``.

    As seen from outside one step: a new ``out`` appears by one rename; an existing one is swapped with the
    result by one rename-exchange, where the file system has it. Elsewhere two renames: the previous output
    into the (owner-marked) work directory, then the result to ``out``; a run killed between the two leaves
    the previous output there with the target's name, and the next run puts it back (``remove_stale_work_dirs``).
    Stop signals wait until this is done. The previous output ends inside the work directory, removed with it.
    """
    work = result.parent
    pause_point("publish")
    with deferred_stop():
        if not (out.exists() or out.is_symlink()):
            result.rename(out)
        elif not rename_exchange(result, out):
            (work / PUBLISH_TARGET).write_text(f"{out}\n")
            out.rename(work / PREVIOUS)
            pause_point("publish-two-step")
            result.rename(out)
            (work / PUBLISH_TARGET).unlink()


def remove_work_dir(path: Path) -> None:
    """Remove a work directory; a stop signal waits until it is gone (nothing half-deleted)."""
    with deferred_stop():
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def owned_temp_dir(prefix: str, parent: Path | None = None) -> Iterator[Path]:
    """A marked temporary directory (``$TMPDIR/<prefix>*`` by default), removed at the end, even on a stop.

    First removes the ``<prefix>*`` directories left by runs that were killed (their owner is dead).
    """
    where = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    remove_stale_work_dirs(where, f"{prefix}*")
    path = make_work_dir(where, prefix)
    try:
        yield path
    finally:
        remove_work_dir(path)
