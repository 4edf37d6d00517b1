"""Run a convert output's standard QDQ ONNX (MCT FAKELY_QUANT export) in onnxruntime.

Light: numpy + onnxruntime (imported when a network is opened). Used by the emulator and by
evaluation; it runs the same INT8 arithmetic the converter was given.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from imx500_sam.errors import BadInputError, ToolchainMissingError


class QdqNetwork:
    """An INT8 QDQ ONNX network: float32 (N, 3, H, W) in [0, 1) -> float32 (N, 1, H, W) logits."""

    def __init__(self, onnx_path: str | Path, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ToolchainMissingError(
                "onnxruntime is not installed.", hint="pip install onnxruntime (or the convert extra)."
            ) from exc
        path = Path(onnx_path)
        if not path.is_file():
            raise BadInputError(f"{path}: no such ONNX file.", hint="Run `imx500-sam convert` first.")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BadInputError(f"{path}: onnxruntime cannot load it ({str(exc).splitlines()[0][:160]}).") from exc
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = tuple(inp.shape)
        self.path = path

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch (float32, NCHW) and return the first output."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]
