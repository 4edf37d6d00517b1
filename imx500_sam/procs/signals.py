"""Stop signals as exceptions: SIGINT raises KeyboardInterrupt and SIGTERM/SIGHUP ``Terminated`` in the main thread,
so ``finally`` blocks run; ``deferred_stop`` holds a signal over a step that must not be cut; ``activity`` names what
runs, for the one line (``interrupted_line``) that says what was stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence

from imx500_sam.errors import ExitCode

_SHIELD_S = 10.0  # further signals within this time of the first are ignored: cleanup runs to its end

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
