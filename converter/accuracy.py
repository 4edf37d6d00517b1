"""How much INT8 changes the masks: float PyTorch vs the QDQ ONNX in onnxruntime, on held-out crops."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from imx500_sam.int8 import QdqNetwork
from imx500_sam.prompt import iou


@dataclass(frozen=True)
class Agreement:
    """Mean IoU between float and INT8 masks (logit > 0), and the largest logit difference."""

    miou: float
    crops: int
    max_abs_logit_diff: float


def float_logits(model: torch.nn.Module, batch: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Float PyTorch logits for a float32 NCHW batch."""
    outs = []
    with torch.inference_mode():
        for s in range(0, len(batch), batch_size):
            outs.append(model(torch.from_numpy(batch[s : s + batch_size])).numpy())
    return np.concatenate(outs)


def int8_logits(net: QdqNetwork, batch: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """INT8 (QDQ ONNX) logits for a float32 NCHW batch."""
    return np.concatenate([net(batch[s : s + batch_size]) for s in range(0, len(batch), batch_size)])


def float_vs_int8(model: torch.nn.Module, qdq: QdqNetwork, batch: np.ndarray) -> Agreement:
    """Mean IoU of float vs INT8 binary masks on ``batch`` (held-out prompt crops)."""
    f = float_logits(model, batch)
    q = int8_logits(qdq, batch)
    ious = [iou(a > 0, b > 0) for a, b in zip(f, q, strict=True)]
    return Agreement(miou=float(np.mean(ious)), crops=len(ious), max_abs_logit_diff=float(np.abs(f - q).max()))
