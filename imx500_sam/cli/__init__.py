"""``imx500-sam`` command line: error handling and exit codes; commands in sibling modules.

Each command module registers itself on ``app`` when imported and keeps heavy imports
(torch, MCT) inside the command body, so ``imx500-sam --help`` is fast and works on a Pi.
"""

from __future__ import annotations

import importlib
import sys
import traceback

from imx500_sam.cli.app import app
from imx500_sam.errors import ExitCode, ImxSamError
from imx500_sam.procs import STOP_EXCEPTIONS, exit_code_for, interrupted_line, stop_on_signals

_COMMAND_MODULES = [
    "convert",
    "check",
    "rpk_inspect",
    "rpk_intrinsics",
    "rpk_network_info",
    "package",
    "flash",
    "run",
    "serve",
    "distill",
    "eval",
    "doctor",
    "bench",
]

for _name in _COMMAND_MODULES:
    importlib.import_module(f"imx500_sam.cli.{_name}")


def _stop_cause(exc: BaseException) -> BaseException | None:
    seen: BaseException | None = exc
    for _ in range(8):
        seen = seen.__cause__ or seen.__context__ if seen is not None else None
        if seen is None or isinstance(seen, STOP_EXCEPTIONS):
            return seen
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map errors to one stderr line and their exit code (usage errors exit 2).

    SIGINT, SIGTERM and SIGHUP become exceptions that unwind every ``finally`` (tools stopped, temporary
    files removed) and end with one line and exit 130 / 143 / 129 (imx500_sam.procs).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    from imx500_sam.bench.record import CLI_ARGV

    CLI_ARGV.set(args)  # benches record the command as typed
    command = next((a for a in args if not a.startswith("-")), None)
    try:
        with stop_on_signals():
            app(args=args, prog_name="imx500-sam", standalone_mode=True)
    except SystemExit as exc:
        stop = _stop_cause(exc)  # Typer turns KeyboardInterrupt into exit 130, silently
        if stop is not None:
            print(interrupted_line(stop, command), file=sys.stderr)
            return exit_code_for(stop)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else int(ExitCode.BAD_INPUT))
    except ImxSamError as exc:
        if debug:
            traceback.print_exc()
        print(f"imx500-sam: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except STOP_EXCEPTIONS as exc:  # Ctrl-C, SIGTERM, SIGHUP: `finally` blocks have cleaned up
        if debug:
            traceback.print_exc()
        print(interrupted_line(exc, command), file=sys.stderr)
        return exit_code_for(exc)
    return 0


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main())
