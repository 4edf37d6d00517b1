"""Runtime: prompt PicoSAM3 by the IMX500's on-sensor ROI (picamera2) or on an emulated IMX500.

numpy + OpenCV only at import time; picamera2 (``runtime.picamera``) and onnxruntime
(``runtime.emulator``) are imported when a sensor is opened. Never torch or MCT.
"""

from __future__ import annotations

from imx500_sam.runtime.geometry import SensorGeometry
from imx500_sam.runtime.sensor import Sensor, SensorFrame
from imx500_sam.runtime.session import MaskResult, PromptSession

__all__ = ["MaskResult", "PromptSession", "Sensor", "SensorFrame", "SensorGeometry"]
