"""Typed artifacts passed between the host-side convert stages.

The convert output directory's layout and the readers of its files (what the device side reads) live in
:mod:`imx500_sam.convert_output`; this module holds only what the converter's stages hand each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imx500_sam.convert_output import DnnParams, MemoryReport


@dataclass(frozen=True)
class QuantizedArtifacts:
    """What the quantization stage hands on: the MCTQ ONNX and the host network derived from it."""

    mctq_onnx: Path
    qdq_onnx: Path
    input_quant: Any = None  # converter.mctq.ActivationQuant: the quantizer on the graph input (None: none found)


@dataclass(frozen=True)
class ImxconvResult:
    """What one imxconv-pt run produced (before the files move into the convert output directory)."""

    packer_out: Path
    memory_report: MemoryReport
    dnn_params: DnnParams
    log: Path
