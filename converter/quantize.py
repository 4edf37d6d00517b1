"""MCT INT8 post-training quantization for the IMX500, and its ONNX files.

The MCTQ ONNX (custom ``mct_quantizers`` ops) is what ``imxconv-pt`` compiles; the host network
(a standard QuantizeLinear/DequantizeLinear ONNX for the emulator and evaluation) is derived from
that same file by ``converter.mctq``, so the host runs the network the sensor is given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from converter.artifacts import QuantizedArtifacts
from imx500_sam.compat import import_mct, legacy_onnx_export
from imx500_sam.convert_output import MCTQ_ONNX, QDQ_ONNX
from imx500_sam.errors import ToolFailedError, first_line

RepresentativeData = Callable[[], Iterator[list[np.ndarray]]]


def _quiet_mct() -> None:
    logging.getLogger("Model Compression Toolkit").setLevel(logging.ERROR)


def imx500_tpc():
    """MCT's target-platform capabilities for the IMX500."""
    return import_mct().get_target_platform_capabilities("pytorch", "imx500", target_platform_version=None)


def quantize(model: torch.nn.Module, data: RepresentativeData, gptq: bool = False, gptq_epochs: int = 50):
    """Quantize ``model`` to INT8 for the IMX500 with MCT PTQ (or GPTQ). Returns MCT's quantized module."""
    mct = import_mct()
    _quiet_mct()
    model = model.eval()
    try:
        if gptq:
            cfg = mct.gptq.get_pytorch_gptq_config(n_epochs=gptq_epochs)
            q, _ = mct.gptq.pytorch_gradient_post_training_quantization(
                model, data, gptq_config=cfg, target_platform_capabilities=imx500_tpc()
            )
        else:
            q, _ = mct.ptq.pytorch_post_training_quantization(
                in_module=model, representative_data_gen=data, target_platform_capabilities=imx500_tpc()
            )
    except Exception as exc:  # MCT raises many kinds; name the tool and the first line
        first = first_line(str(exc)) or type(exc).__name__
        raise ToolFailedError(
            f"MCT quantization failed: {type(exc).__name__}: {first}.",
            hint="Run `imx500-sam check MODEL` to find operators the IMX500 toolchain cannot take.",
        ) from exc
    return q


def export_mctq(quantized: torch.nn.Module, path: Path, data: RepresentativeData) -> None:
    """MCT's own ONNX export of ``quantized`` in the MCTQ format (what imxconv-pt compiles), to ``path``."""
    mct = import_mct()
    from model_compression_toolkit.exporter import PytorchExportSerializationFormat, QuantizationFormat

    with legacy_onnx_export():
        mct.exporter.pytorch_export_model(
            quantized,
            save_model_path=str(path),
            repr_dataset=data,
            serialization_format=PytorchExportSerializationFormat.ONNX,
            quantization_format=QuantizationFormat.MCTQ,
        )


def export(quantized: torch.nn.Module, out_dir: Path, data: RepresentativeData) -> QuantizedArtifacts:
    """Export the MCTQ ONNX into ``out_dir`` and derive the host network from it."""
    _quiet_mct()
    path = out_dir / MCTQ_ONNX
    try:
        export_mctq(quantized, path, data)
    except Exception as exc:
        first = first_line(str(exc)) or type(exc).__name__
        raise ToolFailedError(f"MCT ONNX export failed: {type(exc).__name__}: {first}.") from exc
    return host_artifacts(path, out_dir)


def host_artifacts(mctq_onnx: Path, out_dir: Path) -> QuantizedArtifacts:
    """An MCTQ ONNX and the host network derived from it (written to ``out_dir``)."""
    from converter.mctq import derive_host_network

    info = derive_host_network(mctq_onnx, out_dir / QDQ_ONNX)
    return QuantizedArtifacts(mctq_onnx=mctq_onnx, qdq_onnx=out_dir / QDQ_ONNX, input_quant=info.input_quant)
