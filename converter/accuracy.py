"""INT8 accuracy against the reference: MCT's quantized network, on held-out crops.

The reference is MCT's quantized torch module when convert quantized the model itself, and
mct_quantizers' own onnxruntime ops on the MCTQ file when the input was already quantized (slow,
about 1 crop/s: a few crops). Two figures:
- ``float_vs_int8``: mean IoU of the float model's masks and the reference's masks;
- ``emulator_agreement``: how well the host network (what the emulator and ``eval --int8`` run)
  reproduces the reference: fraction of mask pixels (logit > 0) that agree, largest logit difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imx500_sam.prompt import iou

Logits = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Agreement:
    """Mean IoU between float and INT8 (reference) masks (logit > 0), and the largest logit difference."""

    miou: float
    crops: int
    max_abs_logit_diff: float


@dataclass(frozen=True)
class PixelAgreement:
    """The host network against the reference: agreeing mask pixels (fraction) and largest logit gap."""

    pixels: float
    crops: int
    max_abs_logit_diff: float
    reference: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def batched(fn: Logits, batch: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """``fn`` over ``batch`` in chunks, concatenated."""
    return np.concatenate([fn(batch[s : s + batch_size]) for s in range(0, len(batch), batch_size)])


def torch_logits(model: Any, batch: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Logits of a torch module (float, or MCT's quantized module) for a float32 NCHW batch."""
    import torch

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(np.ascontiguousarray(x))).numpy()

    return batched(run, batch, batch_size)


def mctq_logits(mctq_onnx: str | Path, batch: np.ndarray, threads: int | None = None) -> np.ndarray:
    """Logits of an MCTQ ONNX run by onnxruntime with mct_quantizers' custom ops (slow: ~1 crop/s)."""
    import mct_quantizers
    import onnxruntime as ort

    opts = mct_quantizers.get_ort_session_options()
    if threads:
        opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(mctq_onnx), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: batch[i : i + 1]})[0] for i in range(len(batch))])


def float_vs_int8(float_out: np.ndarray, int8_out: np.ndarray) -> Agreement:
    """Mean IoU of float vs INT8 binary masks (logit > 0) over the crops."""
    ious = [iou(a > 0, b > 0) for a, b in zip(float_out, int8_out, strict=True)]
    return Agreement(
        miou=float(np.mean(ious)), crops=len(ious), max_abs_logit_diff=float(np.abs(float_out - int8_out).max())
    )


def pixel_agreement(host_out: np.ndarray, reference_out: np.ndarray, reference: str) -> PixelAgreement:
    """Fraction of mask pixels where the host network and the reference agree, and the largest logit gap."""
    return PixelAgreement(
        pixels=float(((host_out > 0) == (reference_out > 0)).mean()),
        crops=len(host_out),
        max_abs_logit_diff=float(np.abs(host_out - reference_out).max()),
        reference=reference,
    )
