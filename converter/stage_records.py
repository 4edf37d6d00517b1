"""The typed records the convert stages hand on (``converter.pipeline`` runs the stages, ``converter.convert_report``
reads them into report.json): ModelInput -> Calibration -> Quantized -> InputConvention -> Packaged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converter.artifacts import QuantizedArtifacts
from converter.model_source import SourceModel
from imx500_sam.data.roles import ImageRecord, records_to_json
from imx500_sam.prompt import SHIFTED


@dataclass(frozen=True)
class ModelInput:
    """Stage 1: what is converted. A float model to quantize, or an MCTQ ONNX quantized already."""

    name: str
    input_size: tuple[int, int]  # (H, W)
    source: SourceModel | None = None  # float model (checkpoint or py: factory)
    mctq_onnx: Path | None = None  # already quantized by MCT: no second PTQ
    prompt_crop: str = SHIFTED  # the crop convention it was trained with (calibration, report, runtime)


@dataclass(frozen=True)
class Calibration:
    """Stage 3: calibration crops, and accuracy crops from the ``evaluate`` photos (never calibration or training)."""

    crops: np.ndarray  # float32 (N, 3, H, W) model input
    accuracy_crops: np.ndarray
    calibration_images: tuple[ImageRecord, ...]
    accuracy_images: tuple[ImageRecord, ...]

    def data_section(self) -> dict[str, Any]:
        """report.json's ``data``: which images calibrated and which measured accuracy."""
        return {
            "calibration": records_to_json(self.calibration_images),
            "accuracy": records_to_json(self.accuracy_images),
        }


@dataclass(frozen=True)
class Quantized:
    """Stages 4-5: the MCTQ ONNX imxconv-pt compiles, the host network derived from it, MCT's module."""

    artifacts: QuantizedArtifacts
    method: str
    module: Any | None  # MCT's quantized torch module (None for an MCTQ input)


@dataclass(frozen=True)
class InputConvention:
    """What the network's input is and what the sensor's input preprocessor must do to make it."""

    convention: str  # imx500_sam.preprocessor.SENSOR_INPUT or AUTHORS_INPUT
    scale: float | None  # the input quantizer's step
    signed: bool
    preprocessor: Any | None  # imx500_sam.preprocessor.InputPreprocessor; None: gain 1, offset 0
    max_error_steps: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report.json ``input`` section."""
        return {
            "convention": self.convention,
            "quantizer": {"scale": self.scale, "signed": self.signed},
            "preprocessor": self.preprocessor.to_dict() if self.preprocessor is not None else None,
            "preprocessor_max_error_steps": round(self.max_error_steps, 4),
        }


@dataclass(frozen=True)
class Packaged:
    """Stage 8: network.rpk when imx500-package is here, else the commands to run on the Pi."""

    rpk: Path | None
    packager_available: bool
    intrinsics: dict[str, Any]
    network_info: dict[str, str] | None = None  # network_info.txt values set after imx500-package
