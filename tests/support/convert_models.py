"""Small models for convert tests, built through ``py:tests.support.convert_models:<factory>``."""

from __future__ import annotations

import torch
from torch import nn


class CumsumNet(nn.Module):
    """Conv net with a cumulative sum: MCT quantizes it, imxconv-pt rejects CumSum."""

    input_size = 32

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        y = torch.cumsum(y, dim=3)
        return self.head(y)


def cumsum_net() -> nn.Module:
    """Factory for CumsumNet."""
    torch.manual_seed(0)
    return CumsumNet().eval()


class WideNet(nn.Module):
    """Nine 1024-channel 1x1 convolutions at 16x16: ~9.4M INT8 weights, over the IMX500's 8 MiB."""

    input_size = 16

    def __init__(self, width: int = 1024, depth: int = 9) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 1), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Conv2d(width, width, 1), nn.ReLU()]
        layers.append(nn.Conv2d(width, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def wide_net() -> nn.Module:
    """Factory for WideNet."""
    torch.manual_seed(0)
    return WideNet().eval()


def bare_mct_mctq(model: nn.Module, path, calib) -> tuple:
    """Quantize ``model`` with bare MCT PTQ (IMX500 target) on ``calib`` (float Nx3xHxW, the model's own input) and
    export an MCTQ ONNX to ``path``, the way a user's own pipeline (the PicoSAM authors') does. (path, MCT module)."""
    from imx500_sam.compat import import_mct, legacy_onnx_export

    mct = import_mct()
    from model_compression_toolkit.exporter import PytorchExportSerializationFormat, QuantizationFormat

    def gen():
        for s in range(0, len(calib), 8):
            yield [calib[s : s + 8]]

    tpc = mct.get_target_platform_capabilities("pytorch", "imx500", target_platform_version=None)
    q, _ = mct.ptq.pytorch_post_training_quantization(
        in_module=model.eval(), representative_data_gen=gen, target_platform_capabilities=tpc
    )
    with legacy_onnx_export():
        mct.exporter.pytorch_export_model(
            q,
            save_model_path=str(path),
            repr_dataset=gen,
            serialization_format=PytorchExportSerializationFormat.ONNX,
            quantization_format=QuantizationFormat.MCTQ,
        )
    return path, q
