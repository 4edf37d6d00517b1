"""Errors shared by every command, each with its exit code and a one-line hint.

Light module: imported by the CLI, the converter, the Pi runtime and firmware_packaging.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes used by every ``imx500-sam`` command."""

    OK = 0
    BAD_INPUT = 2
    UNSUPPORTED_OPERATOR = 3
    OVER_BUDGET = 4
    TOOLCHAIN_MISSING = 5
    TOOL_FAILED = 6
    INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + 2
    TERMINATED = 143  # SIGTERM: 128 + 15 (SIGHUP: 129)


class ImxSamError(Exception):
    """Base error: ``str(err)`` is the one line shown to the user (what went wrong, what to do)."""

    exit_code: ExitCode = ExitCode.TOOL_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}".strip() if hint else message)


class BadInputError(ImxSamError):
    """Missing file, not a checkpoint, wrong architecture, unsafe pickle, bad option."""

    exit_code = ExitCode.BAD_INPUT


class UnsupportedOperatorError(ImxSamError):
    """The network uses an operator the IMX500 toolchain cannot convert."""

    exit_code = ExitCode.UNSUPPORTED_OPERATOR


class OverBudgetError(ImxSamError):
    """The network does not fit in the IMX500's on-chip memory."""

    exit_code = ExitCode.OVER_BUDGET


DOCTOR_HINT = "Check the set-up: run `imx500-sam doctor`."


class ToolchainMissingError(ImxSamError):
    """Java, imxconv-pt, imx500-package or a Python extra is not installed.

    Every such message ends with ``DOCTOR_HINT`` (added here, once, for every command).
    """

    exit_code = ExitCode.TOOLCHAIN_MISSING
    doctor_helps = True  # whether ``imx500-sam doctor`` can show what to install

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        if self.doctor_helps:
            hint = f"{hint} {DOCTOR_HINT}" if hint else DOCTOR_HINT
        super().__init__(message, hint=hint)


class ToolFailedError(ImxSamError):
    """An external tool (MCT, imxconv-pt, imx500-package) failed; the log is kept."""

    exit_code = ExitCode.TOOL_FAILED


def clip_words(text: str, limit: int = 200) -> str:
    """``text`` on one line (whitespace collapsed), cut at a word boundary to at most ``limit`` characters + "...".

    For library messages quoted inside an error line: never cut mid-word, never several lines.
    """
    line = " ".join(str(text).split())
    if len(line) <= limit:
        return line
    cut = line[: limit + 1].rsplit(" ", 1)[0] if " " in line[: limit + 1] else line[:limit]
    return cut.rstrip(" ,;:(") + "..."


def first_line(text: str, limit: int = 200) -> str:
    """The first non-blank line of ``text`` through ``clip_words`` ("" when there is none): a library's error."""
    return next((clip_words(ln, limit) for ln in str(text).splitlines() if ln.strip()), "")


def last_line(text: str, limit: int = 200) -> str:
    """The last non-blank line of ``text`` through ``clip_words`` ("" when there is none): a program's verdict."""
    return next((clip_words(ln, limit) for ln in reversed(str(text).splitlines()) if ln.strip()), "")


class PiOnlyError(ToolchainMissingError):
    """A command that needs the Raspberry Pi itself (imx500-package, the AI Camera) was run elsewhere.

    Exit 5 like any missing tool, but without the doctor hint: nothing can be installed here to make it work.
    """

    doctor_helps = False
