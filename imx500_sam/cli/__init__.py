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

_COMMAND_MODULES = [
    "convert",
    "check",
    "rpk_inspect",
    "rpk_intrinsics",
    "package",
    "flash",
    "run",
    "distill",
    "eval",
    "doctor",
    "bench",
]

for _name in _COMMAND_MODULES:
    importlib.import_module(f"imx500_sam.cli.{_name}")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map errors to one stderr line and their exit code (usage errors exit 2)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    from imx500_sam.bench.record import CLI_ARGV

    CLI_ARGV.set(args)  # benches record the command as typed
    try:
        app(args=args, prog_name="imx500-sam", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else int(ExitCode.BAD_INPUT))
    except ImxSamError as exc:
        if debug:
            traceback.print_exc()
        print(f"imx500-sam: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("imx500-sam: interrupted", file=sys.stderr)
        return 130
    return 0


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main())
