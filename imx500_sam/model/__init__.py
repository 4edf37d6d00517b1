"""PicoSAM3 model and checkpoints (imports torch)."""

from __future__ import annotations

from imx500_sam.defaults import DEFAULT_CHECKPOINT
from imx500_sam.model.checkpoint import load_checkpoint, save_checkpoint
from imx500_sam.model.picosam3 import PicoSAM3, PicoSAM3Config, count_parameters

__all__ = [
    "DEFAULT_CHECKPOINT",
    "PicoSAM3",
    "PicoSAM3Config",
    "count_parameters",
    "load_checkpoint",
    "save_checkpoint",
]
