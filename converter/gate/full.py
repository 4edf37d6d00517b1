"""``check --full``: the exact SRAM figure from ``imxconv-pt --memory-report``.

Quantizes with the convert pipeline's own MCT call (converter.quantize) on a few random
calibration batches (the memory layout does not depend on the calibration values), exports the
MCTQ ONNX and runs the converter's memory report only (about 15-30 s on 2 cores). Its temporary
directory ($TMPDIR/imx500-check-*) is marked as this run's: one left by a killed run is removed by the next.
"""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path
from typing import Any

from converter.gate.report import ConverterMemory
from imx500_sam.errors import BadInputError, OverBudgetError
from imx500_sam.procs import DEFAULT_TOOL_TIMEOUT_S, owned_temp_dir

CALIB_BATCHES = 2


def mctq_onnx(module: Any, input_size: tuple[int, int], out_dir: Path, batches: int = CALIB_BATCHES) -> Path:
    """MCT PTQ on ``batches`` random batches, exported as MCTQ ONNX into ``out_dir``; returns its path."""
    import numpy as np

    from converter.quantize import export, quantize

    h, w = input_size
    rng = np.random.default_rng(0)
    data = [rng.random((1, 3, h, w), dtype=np.float32) for _ in range(batches)]

    def gen():
        for x in data:
            yield [x]

    log = io.StringIO()
    with contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
        quantized = quantize(module, gen)
        return export(quantized, out_dir, gen).mctq_onnx


def memory_report(onnx_path: Path, out_dir: Path, timeout_s: float = DEFAULT_TOOL_TIMEOUT_S) -> ConverterMemory:
    """Run ``imxconv-pt --memory-report`` on an MCTQ ONNX and return its exact figures (fit or not)."""
    from converter.imxconv import run_imxconv
    from imx500_sam.convert_output import MEMORY_REPORT_GLOB, MemoryReport

    t0 = time.perf_counter()
    conv_dir = out_dir / "imxconv"
    try:
        report = run_imxconv(
            onnx_path, conv_dir, out_dir / "imxconv-pt.log", memory_report_only=True, timeout_s=timeout_s
        )
    except OverBudgetError:
        report = MemoryReport.from_json(sorted(conv_dir.glob(MEMORY_REPORT_GLOB))[0])
    assert isinstance(report, MemoryReport)
    return ConverterMemory(
        usage_bytes=report.usage_bytes,
        runtime_bytes=report.runtime_bytes,
        weights_bytes=report.weights_bytes,
        fit_in_chip=report.fit_in_chip,
        report_path=report.path,
        seconds=time.perf_counter() - t0,
    )


def converter_memory(
    resolved: Any, input_size: tuple[int, int], work_dir: Path | None = None, timeout_s: float = DEFAULT_TOOL_TIMEOUT_S
) -> ConverterMemory:
    """Quantize (if needed) and run the converter's memory report for a resolved MODEL."""
    keep = work_dir is not None
    ctx = contextlib.nullcontext(Path(work_dir)) if keep else owned_temp_dir("imx500-check-")
    with ctx as tmp:
        work = Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if resolved.onnx_path is not None:
            from converter.mctq import is_mctq

            if not is_mctq(resolved.onnx_path):
                raise BadInputError(
                    f"{resolved.onnx_path}: --full needs a PyTorch model or an MCTQ ONNX (a float ONNX cannot be "
                    "quantized by MCT).",
                    hint="Drop --full, or pass the model as a checkpoint or py:module:factory.",
                )
            onnx_path = resolved.onnx_path
        else:
            onnx_path = mctq_onnx(resolved.module, input_size, work)
        result = memory_report(onnx_path, work, timeout_s=timeout_s)
        if not keep:
            # the report file goes with the temporary directory: keep its figures, not its path
            result = ConverterMemory(**{**result.__dict__, "report_path": Path(result.report_path.name)})
        return result
