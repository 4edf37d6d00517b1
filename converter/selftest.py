"""A tiny network through the real toolchain end to end (``imx500-sam doctor --full``).

Conv-ReLU-Conv at the smallest input the toolkit accepts: MCT INT8 PTQ on two random batches and the
MCTQ export (the same calls ``check --full`` uses), then a full ``imxconv-pt`` conversion, then the
packerOut.zip check the packager applies. It proves the installed MCT, converter and Java work together;
it says nothing about a particular model (use ``imx500-sam check`` / ``convert`` for that).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from imx500_sam.facts import INPUT_SIZE_MIN
from imx500_sam.procs import owned_temp_dir


@dataclass(frozen=True)
class SelfTestResult:
    """What the tiny conversion produced."""

    input_size: int
    packer_out_bytes: int
    memory_usage_bytes: int
    quantize_s: float
    convert_s: float


def tiny_net():
    """Conv(3->8, 3x3) - ReLU - Conv(8->1, 1x1), deterministic weights."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 1)).eval()


def convert_tiny(work_dir: Path | None = None) -> SelfTestResult:
    """Quantize and convert ``tiny_net`` with the real MCT and imxconv-pt; raises the toolkit's errors."""
    from converter.artifacts import ImxconvResult
    from converter.gate.full import mctq_onnx
    from converter.imxconv import run_imxconv
    from firmware_packaging.packager import validate_packer_zip

    size = INPUT_SIZE_MIN
    with contextlib.ExitStack() as stack:
        # owner-marked in $TMPDIR (imx500_sam.procs): one left by a killed doctor is removed by the next
        work = Path(work_dir) if work_dir is not None else stack.enter_context(owned_temp_dir("imx500-doctor-"))
        t0 = time.perf_counter()
        onnx_path = mctq_onnx(tiny_net(), (size, size), work)
        t1 = time.perf_counter()
        out = run_imxconv(onnx_path, work / "imxconv", work / "imxconv-pt.log")
        t2 = time.perf_counter()
        assert isinstance(out, ImxconvResult)
        validate_packer_zip(out.packer_out)
        return SelfTestResult(
            input_size=size,
            packer_out_bytes=out.packer_out.stat().st_size,
            memory_usage_bytes=out.memory_report.usage_bytes,
            quantize_s=t1 - t0,
            convert_s=t2 - t1,
        )
