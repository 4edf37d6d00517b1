"""The PicoSAM family (the authors' published layouts) and checkpoint loading (imports torch)."""

from __future__ import annotations

from imx500_sam.defaults import DEFAULT_CHECKPOINT
from imx500_sam.model.checkpoint import (
    LAYOUTS,
    Checkpoint,
    Layout,
    bare_network,
    load_checkpoint,
    prompt_crop_of,
    read_checkpoint,
    save_checkpoint,
)
from imx500_sam.model.picosam import PicoSAM2, PicoSAM3, PicoSAMConfig, count_parameters
from imx500_sam.model.sensor_input import SensorInput

__all__ = [
    "DEFAULT_CHECKPOINT",
    "LAYOUTS",
    "Checkpoint",
    "Layout",
    "PicoSAM2",
    "PicoSAM3",
    "PicoSAMConfig",
    "SensorInput",
    "bare_network",
    "count_parameters",
    "load_checkpoint",
    "prompt_crop_of",
    "read_checkpoint",
    "save_checkpoint",
]
