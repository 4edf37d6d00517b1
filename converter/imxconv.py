"""Sony's converter ``imxconv-pt`` (imx500-converter[pt]): find it, run it, read what it wrote.

Runs with an argument list (never a shell) through ``imx500_sam.procs.run_tool`` (its own process group,
ended as a whole on a timeout, an interrupt or our death), with its temporary files ($TMPDIR) in a
directory beside its output that we remove, and its whole output in a log file. Exit codes seen
(shared/notes/toolchain.md): 0 success, 1 out of memory or back-end error, 2 unsupported operator.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from converter.artifacts import ImxconvResult
from imx500_sam.convert_output import DNN_PARAMS, MEMORY_REPORT_GLOB, PACKER_OUT, DnnParams, MemoryReport
from imx500_sam.errors import (
    OverBudgetError,
    ToolchainMissingError,
    ToolFailedError,
    UnsupportedOperatorError,
    clip_words,
)
from imx500_sam.facts import toolchain_fact
from imx500_sam.procs import DEFAULT_TOOL_TIMEOUT_S, run_captured, run_tool

JAVA_MIN: int = toolchain_fact("java_min_major").value  # imxconv-pt's back end is Java (facts/toolchain.json)
JAVA_INSTALL = f"sudo apt-get install -y {toolchain_fact('java_apt_package').value}"
_USOP = re.compile(r"unsupported ops?:\s*([^\[\n]+)", re.IGNORECASE)


def java_version(path: str | None = None) -> int | None:
    """Major version of ``java`` on PATH (or on ``path``, a PATH-style string), or None."""
    java = shutil.which("java", path=path)
    if java is None:
        return None
    try:
        proc = run_captured([java, "-version"], name="java", timeout_s=60)  # its own process group
    except OSError:
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def imxconv_path(path: str | None = None, python: str | None = None) -> Path | None:
    """``imxconv-pt`` on PATH (or ``path``), then beside the Python ``python`` (default: this one); None if absent."""
    exe = shutil.which("imxconv-pt", path=path) or shutil.which(
        "imxconv-pt", path=str(Path(python or sys.executable).parent)
    )
    return Path(exe) if exe else None


def find_imxconv() -> Path:
    """Path of ``imxconv-pt`` (PATH, then beside this Python); ToolchainMissingError if absent or Java too old."""
    exe = imxconv_path()
    if exe is None:
        raise ToolchainMissingError(
            "imxconv-pt not found.",
            hint="Install the converter: pip install 'imx500-sam[convert]' (or `make setup`).",
        )
    version = java_version()
    if version is None or version < JAVA_MIN:
        found = "no java on PATH" if version is None else f"java {version}"
        raise ToolchainMissingError(
            f"imxconv-pt needs Java {JAVA_MIN} or newer ({found}).",
            hint=f"Run: {JAVA_INSTALL}",
        )
    return exe


def run_imxconv(
    onnx_path: Path,
    out_dir: Path,
    log_path: Path,
    memory_report_only: bool = False,
    timeout_s: float = DEFAULT_TOOL_TIMEOUT_S,
) -> ImxconvResult | MemoryReport:
    """Run imxconv-pt on an MCTQ ONNX; ImxconvResult (or MemoryReport with ``memory_report_only``).

    Raises UnsupportedOperatorError (exit 2 of the tool), OverBudgetError (memory report says it does
    not fit) or ToolFailedError naming ``log_path`` (also when it runs past ``timeout_s``).
    """
    exe = find_imxconv()
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [str(exe), "-i", str(onnx_path), "-o", str(out_dir), "--overwrite-output", "--report-size-unit", "B"]
    if memory_report_only:
        args.append("--memory-report")
    # Its temporary files go beside its output (inside the caller's work directory), not to $TMPDIR.
    with tempfile.TemporaryDirectory(prefix=".imxconv-tmp-", dir=out_dir.parent) as tmp:
        env = dict(os.environ, TMPDIR=tmp, TMP=tmp, TEMP=tmp)
        returncode = run_tool(args, name="imxconv-pt", log_path=log_path, timeout_s=timeout_s, env=env, cwd=Path(tmp))
    text = log_path.read_text(errors="replace")
    reports = sorted(out_dir.glob(MEMORY_REPORT_GLOB))
    report = MemoryReport.from_json(reports[0]) if reports else None
    if report is not None and not report.fit_in_chip:
        raise OverBudgetError(
            f"the network needs {report.usage_bytes:,} B of IMX500 memory, {report.available_bytes:,} B available "
            f"({report.utilization:.0%}: weights {report.weights_bytes:,} B, runtime {report.runtime_bytes:,} B).",
            hint="Use fewer channels or a smaller input size.",
        )
    if returncode == 2 or "[USOP]" in text:
        m = _USOP.search(text)
        ops = m.group(1).strip() if m else "see the log"
        raise UnsupportedOperatorError(
            f"imxconv-pt: the network contains operators the IMX500 does not support: {ops} (log: {log_path}).",
            hint="Run `imx500-sam check MODEL` to find them in your code and what to use instead.",
        )
    if returncode != 0:
        last = next((ln for ln in reversed(text.splitlines()) if "ERROR" in ln or "Error" in ln), "")
        raise ToolFailedError(
            f"imxconv-pt failed with exit code {returncode}"
            + (f": {clip_words(last, 200)}" if last else "")
            + f" (log: {log_path}).",
        )
    if report is None:
        raise ToolFailedError(f"imxconv-pt wrote no memory report (log: {log_path}).")
    if memory_report_only:
        return report
    packer = out_dir / PACKER_OUT
    if not packer.is_file() or not (out_dir / DNN_PARAMS).is_file():
        raise ToolFailedError(f"imxconv-pt exited 0 but wrote no {PACKER_OUT} (log: {log_path}).")
    return ImxconvResult(
        packer_out=packer, memory_report=report, dnn_params=DnnParams.from_xml(out_dir / DNN_PARAMS), log=log_path
    )
