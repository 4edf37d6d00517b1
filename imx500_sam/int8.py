"""Run a convert output's host INT8 network (derived from the MCTQ ONNX) in onnxruntime.

Light: numpy + onnxruntime (imported when a network is opened). Used by the emulator and by
evaluation. The network file is a standard QuantizeLinear/DequantizeLinear ONNX that
``converter.mctq`` derives from the MCTQ ONNX ``imxconv-pt`` compiles: MCT's integer weights and
per-channel scales, its activation grids and rounding.

How it is run matters. With its default graph optimisations, onnxruntime 1.21 re-quantizes such a
graph for its fused integer kernels: float weights per-tensor (``WeightBiasQuantization``) and every
bias to int32 on the grid ``s_in * s_w``, then ``QLinearConv`` / ``QLinearAdd`` requantize in their
own way. That changes the last bit of about 1% of activations per layer and 0.8-1.4% of the mask
pixels against MCT's network (``benchmarks/results/int8_agreement.json``). Its layout optimisation
(``NchwcTransformer``, level ALL) runs convolutions in blocked NCHWc kernels that sum in another
order: on PTQ-hostile networks (random weights) that flips INT8 roundings which cascade, 2-7% of the
mask pixels. By default both are therefore off (``session.disable_quant_qdq``, level EXTENDED):
convolutions run in float32 on MCT's quantized values, the other graph optimisations stay on, and
the masks equal those of mct_quantizers' own onnxruntime ops on the MCTQ file
(``benchmarks/results/int8_session.json``). ``fused=True`` gives the fused integer kernels back
(faster, not MCT's arithmetic).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from imx500_sam.errors import BadInputError, ToolchainMissingError, clip_words


def session_options(threads: int | None = None, fused: bool = False, exact: bool = False):  # -> ort.SessionOptions
    """onnxruntime options for the host INT8 network (see the module docstring).

    ``exact`` turns every graph optimisation off: then the results are bit for bit those of
    mct_quantizers' onnxruntime ops on the MCTQ file (slower; tests use it).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    if exact:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    elif not fused:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED  # no NCHWc layout
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
    return opts


class QdqNetwork:
    """The host INT8 network: float32 (N, 3, H, W) in [0, 1) -> float32 (N, 1, H, W) logits."""

    def __init__(
        self,
        onnx_path: str | Path,
        threads: int | None = None,
        fused: bool = False,
        exact: bool = False,
        options: object | None = None,
    ) -> None:
        """``options``: an ``ort.SessionOptions`` instead of ``session_options(threads, fused, exact)`` (benchmarks)."""
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ToolchainMissingError(
                "onnxruntime is not installed.", hint="pip install onnxruntime (or the convert extra)."
            ) from exc
        path = Path(onnx_path)
        if not path.is_file():
            raise BadInputError(f"{path}: no such ONNX file.", hint="Run `imx500-sam convert` first.")
        opts = options if options is not None else session_options(threads, fused=fused, exact=exact)
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BadInputError(f"{path}: onnxruntime cannot load it ({clip_words(str(exc), 160)}).") from exc
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = tuple(inp.shape)
        self.path = path
        self.fused = fused

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch (float32, NCHW) and return the first output."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]
