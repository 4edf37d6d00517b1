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

Linux (x86-64 host, Raspberry Pi OS). Light package: no torch, usable by the device side. One idea a module:
:mod:`.signals` (stop signals as exceptions, what was running, the interrupted line), :mod:`.groups` (external
tools in process groups) and :mod:`.workdirs` (owned work directories and publishing a result).
"""

from imx500_sam.procs.groups import (
    DEFAULT_TOOL_TIMEOUT_S,
    STOP_GRACE_S,
    Captured,
    group_members,
    map_in_threads,
    run_captured,
    run_tool,
    stop_group,
    stop_live_groups,
)
from imx500_sam.procs.signals import (
    PAUSE_ENV,
    STOP_EXCEPTIONS,
    Terminated,
    activity,
    deferred_stop,
    exit_code_for,
    interrupted_line,
    note_stop,
    pause_point,
    pending_signal,
    stop_as_if_signalled,
    stop_on_signals,
    take_pending,
)
from imx500_sam.procs.workdirs import (
    OWNER_FILE,
    PREVIOUS,
    PUBLISH_TARGET,
    make_work_dir,
    owned_temp_dir,
    owner_alive,
    publish_dir,
    remove_stale_work_dirs,
    remove_work_dir,
    rename_exchange,
)

__all__ = [
    "DEFAULT_TOOL_TIMEOUT_S",
    "OWNER_FILE",
    "PAUSE_ENV",
    "PREVIOUS",
    "PUBLISH_TARGET",
    "STOP_EXCEPTIONS",
    "STOP_GRACE_S",
    "Captured",
    "Terminated",
    "activity",
    "deferred_stop",
    "exit_code_for",
    "group_members",
    "interrupted_line",
    "make_work_dir",
    "map_in_threads",
    "note_stop",
    "owned_temp_dir",
    "owner_alive",
    "pause_point",
    "pending_signal",
    "publish_dir",
    "remove_stale_work_dirs",
    "remove_work_dir",
    "rename_exchange",
    "run_captured",
    "run_tool",
    "stop_as_if_signalled",
    "stop_group",
    "stop_live_groups",
    "stop_on_signals",
    "take_pending",
]
