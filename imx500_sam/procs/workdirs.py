"""Work directories this toolkit owns: marked with an owner file, removed when their owner is dead, and a finished
result published over the output in one step (``publish_dir``)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from imx500_sam.outputs import dir_mode
from imx500_sam.procs.signals import deferred_stop, pause_point

OWNER_FILE = ".imx500-sam-owner"


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
