"""The gate corpus: small models whose real MCT + imxconv-pt outcome the gate must predict.

One module shared by the tests (tests/test_gate.py) and the benchmark (benchmarks/gate_bench.py):
supported constructs, each unsupported family of shared/notes/toolchain.md, the memory boundary
(one U-Net that fits at 224x224 and not at 256x256, an 8M-parameter model at 96x96) and PicoSAM3
at several widths and input sizes (the SRAM estimate's validation set).

Converter-independent: builds nn.Modules only (torch, no MCT).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def _cbr(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


# --------------------------------------------------------------------------- supported constructs


class SupportedBasic(nn.Module):
    """Conv, depthwise conv, stride-2 conv, ConvTranspose2d, BN, ReLU, Sigmoid, add, mul, cat,
    nearest and bilinear Upsample, AdaptiveAvgPool2d (ECA gate), MaxPool2d."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(3, 16)
        self.dw = _cbr(16, 16, groups=16)
        self.down = _cbr(16, 32, stride=2)
        self.pool = nn.MaxPool2d(2)
        self.mid = _cbr(32, 32)
        self.up_t = nn.ConvTranspose2d(32, 32, 2, stride=2)
        self.up_near = nn.Upsample(scale_factor=2, mode="nearest")
        self.up_bil = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.fuse = _cbr(16 + 32, 24, k=1)
        self.eca_pool = nn.AdaptiveAvgPool2d(1)
        self.eca_fc = nn.Conv2d(24, 24, 1)
        self.head = nn.Conv2d(24, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.dw(self.stem(x))
        y = self.down(s)
        z = self.up_near(self.pool(self.mid(y)))
        y = self.up_t(y + z) + self.up_bil(z)
        y = self.fuse(torch.cat([s, y], dim=1))
        y = y * torch.sigmoid(self.eca_fc(self.eca_pool(y)))
        return self.head(y)


class SupportedExtra(nn.Module):
    """The less common constructs the notes saw convert: matmul of two activations, GELU, LayerNorm, sin, abs."""

    def __init__(self, size: int = 32) -> None:
        super().__init__()
        self.stem = _cbr(3, 16)
        self.norm = nn.LayerNorm(size)
        self.act = nn.GELU()
        self.mix = nn.Conv2d(16, 16, 1)
        self.head = nn.Conv2d(16, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        y = self.act(self.norm(y))
        g = torch.matmul(y, y.transpose(2, 3)) * 0.01  # (B, C, H, H): two activations
        y = self.mix(g) + torch.sin(y) + torch.abs(y)
        return self.head(y)


# --------------------------------------------------------------------------- unsupported families


class AttentionNet(nn.Module):
    """nn.MultiheadAttention over the pixels of a feature map."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(3, 16, stride=2)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.head = nn.Conv2d(16, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        b, c, h, w = y.shape
        t = y.flatten(2).transpose(1, 2)
        t, _ = self.attn(t, t, t)
        y = t.transpose(1, 2).reshape(b, c, h, w)
        return self.head(y)


class TopkWhereNet(nn.Module):
    """Keep the top-k activations per channel (topk + where)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(3, 8)
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        flat = y.flatten(2)
        kth = torch.topk(flat, 16, dim=2).values[:, :, -1:].unsqueeze(-1)
        y = torch.where(y >= kth, y, torch.zeros_like(y))
        return self.head(y)


class SortNet(nn.Module):
    """Sort along the width."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(3, 8)
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.sort(self.stem(x), dim=3).values
        return self.head(y)


class ArgmaxNet(nn.Module):
    """Argmax over channels as the output map."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(3, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.argmax(self.stem(x), dim=1, keepdim=True).float()


class LstmNet(nn.Module):
    """An LSTM over the rows of a feature map."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(3, 8, stride=2)
        self.lstm = nn.LSTM(8 * 16, 32, batch_first=True)
        self.head = nn.Linear(32, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)  # (B, 8, 16, 16)
        b, c, h, w = y.shape
        seq = y.permute(0, 2, 1, 3).reshape(b, h, c * w)
        out, _ = self.lstm(seq)
        return self.head(out).unsqueeze(1)


class GridSampleNet(nn.Module):
    """Warp the features with a predicted sampling grid."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(3, 8)
        self.flow = nn.Conv2d(8, 2, 3, padding=1)
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        grid = torch.tanh(self.flow(y)).permute(0, 2, 3, 1)
        y = F.grid_sample(y, grid, mode="bilinear", align_corners=False)
        return self.head(y)


class CumsumNet(nn.Module):
    """A running sum along the width."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(3, 8)
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cumsum(self.stem(x), dim=3))


class ErfNet(nn.Module):
    """An explicit erf (exact GELU written by hand)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        y = 0.5 * y * (1.0 + torch.erf(y * 0.7071067811865476))
        return self.head(y)


class InstanceNormNet(nn.Module):
    """InstanceNorm2d after a convolution."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.InstanceNorm2d(8, affine=True)
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.norm(self.conv(x))))


class PowActNet(nn.Module):
    """torch.pow of two activations."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = torch.sigmoid(self.a(x)) + 0.5
        expo = torch.sigmoid(self.b(x))
        return self.head(torch.pow(base, expo))


# --------------------------------------------------------------------------- memory boundary


class UNet(nn.Module):
    """A plain 4-level U-Net (double 3x3 conv blocks, concatenated skips, nearest upsampling)."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 48, 64), bottleneck: int = 96) -> None:
        super().__init__()
        self.enc = nn.ModuleList()
        cin = 3
        for c in widths:
            self.enc.append(nn.Sequential(_cbr(cin, c), _cbr(c, c)))
            cin = c
        self.pool = nn.MaxPool2d(2)
        self.mid = nn.Sequential(_cbr(cin, bottleneck), _cbr(bottleneck, bottleneck))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec = nn.ModuleList()
        cin = bottleneck
        for c in reversed(widths):
            self.dec.append(nn.Sequential(_cbr(cin + c, c), _cbr(c, c)))
            cin = c
        self.head = nn.Conv2d(cin, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.enc:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.mid(x)
        for block, skip in zip(self.dec, reversed(skips), strict=True):
            x = block(torch.cat([self.up(x), skip], dim=1))
        return self.head(x)


class Wide8M(nn.Module):
    """About 8.3M parameters at 96x96: 512-channel convolutions at 12x12 (the weights alone fill the 8 MiB)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _cbr(3, 64, stride=2),
            _cbr(64, 128, stride=2),
            _cbr(128, 512, stride=2),
            _cbr(512, 512),
            _cbr(512, 512),
            _cbr(512, 512),
            _cbr(512, 512, k=1),
            _cbr(512, 512, k=1),
            nn.Conv2d(512, 1, 1),
            nn.Upsample(scale_factor=8, mode="nearest"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _picosam3(scale: float) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from imx500_sam.model import PicoSAM3, PicoSAMConfig, SensorInput

        base = PicoSAMConfig()

        def sc(t: tuple[int, ...]) -> tuple[int, ...]:
            return tuple(max(8, round(c * scale / 8) * 8) for c in t)

        cfg = PicoSAMConfig(encoder=sc(base.encoder), bottleneck=sc((base.bottleneck,))[0], decoder=sc(base.decoder))
        return SensorInput(PicoSAM3(cfg))

    return build


# --------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class CorpusModel:
    """One corpus entry: a factory, the input size it is checked at, and its family."""

    name: str
    factory: Callable[[], nn.Module]
    input_size: int
    family: str  # "supported", an unsupported family from the notes, or "memory"

    def build(self) -> nn.Module:
        """A fresh model in eval mode, seeded (deterministic weights)."""
        torch.manual_seed(0)
        return self.factory().eval()


CORPUS: tuple[CorpusModel, ...] = (
    CorpusModel("supported_basic", SupportedBasic, 64, "supported"),
    CorpusModel("supported_extra", SupportedExtra, 32, "supported"),
    CorpusModel("attention", AttentionNet, 32, "attention"),
    CorpusModel("topk_where", TopkWhereNet, 32, "topk/sort/argmax"),
    CorpusModel("sort", SortNet, 32, "topk/sort/argmax"),
    CorpusModel("argmax", ArgmaxNet, 32, "topk/sort/argmax"),
    CorpusModel("lstm", LstmNet, 32, "lstm"),
    CorpusModel("grid_sample", GridSampleNet, 32, "grid_sample"),
    CorpusModel("cumsum", CumsumNet, 32, "cumsum"),
    CorpusModel("erf", ErfNet, 32, "erf"),
    CorpusModel("instance_norm", InstanceNormNet, 32, "instance_norm"),
    CorpusModel("pow_two_activations", PowActNet, 32, "pow"),
    CorpusModel("unet_224", UNet, 224, "memory"),
    CorpusModel("unet_256", UNet, 256, "memory"),
    CorpusModel("wide_8m_96", Wide8M, 96, "memory"),
    CorpusModel("picosam3_w0.5_96", _picosam3(0.5), 96, "memory"),
    CorpusModel("picosam3_w0.5_192", _picosam3(0.5), 192, "memory"),
    CorpusModel("picosam3_w0.75_128", _picosam3(0.75), 128, "memory"),
    CorpusModel("picosam3_w1_96", _picosam3(1.0), 96, "memory"),
    CorpusModel("picosam3_w1_160", _picosam3(1.0), 160, "memory"),
    CorpusModel("picosam3_w1.5_96", _picosam3(1.5), 96, "memory"),
)


def corpus_model(name: str) -> CorpusModel:
    """The corpus entry called ``name`` (KeyError if none)."""
    for m in CORPUS:
        if m.name == name:
            return m
    raise KeyError(name)
