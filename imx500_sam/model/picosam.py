"""The PicoSAM family exactly as the authors publish it (module names, shapes, forward).

PicoSAM3 (arXiv 2603.11917, 1,371,418 parameters) and PicoSAM2 (arXiv 2506.18807, 1,262,818): all-convolutional
U-Nets, (B, 3, S, S) ImageNet-normalised RGB in, (B, 1, S, S) mask logits out. The prompt is the input crop itself.
``state_dict()`` keys and shapes are the authors', so their checkpoints load here and ours load in their code
(see shared/notes/picosam3.md). Widths are configurable. The input normalisation is not part of these networks
(as in the authors' code): :class:`imx500_sam.model.sensor_input.SensorInput` puts it in front.
This module knows no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class PicoSAMConfig:
    """Widths of the encoder, bottleneck and decoder stages, and the input size."""

    encoder: tuple[int, ...] = (48, 96, 160, 256)
    bottleneck: int = 320
    decoder: tuple[int, ...] = (192, 128, 80, 40)
    input_size: int = 96

    def __post_init__(self) -> None:
        if len(self.encoder) != 4 or len(self.decoder) != 4:
            raise ValueError("PicoSAM has four encoder and four decoder stages")


def ds_block(cin: int, cout: int) -> nn.Sequential:
    """Depthwise-separable block: DW 3x3 (.0) -> BN (.1) -> ReLU -> PW 1x1 (.3) -> BN (.4) -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _down(c: int) -> nn.Conv2d:
    """A bare stride-2 3x3 convolution (no BN, no ReLU after it)."""
    return nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), ds_block(cin, cout))


class ECA(nn.Module):
    """Efficient Channel Attention: global average pool -> 1x1 conv (no bias) -> sigmoid -> multiply."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv1x1 = nn.Conv2d(channels, channels, 1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.sigmoid(self.conv1x1(self.avg_pool(x)))


class _PicoSAMBase(nn.Module):
    """Encoder, ``down*``, ``up*`` and ``skip_conn*``, shared by PicoSAM2 and PicoSAM3."""

    def __init__(self, config: PicoSAMConfig | None) -> None:
        super().__init__()
        cfg = config or PicoSAMConfig()
        self.config = cfg
        e, d = cfg.encoder, cfg.decoder
        self.encoder_stage1 = ds_block(3, e[0])
        self.encoder_stage2 = ds_block(e[0], e[1])
        self.encoder_stage3 = ds_block(e[1], e[2])
        self.encoder_stage4 = ds_block(e[2], e[3])
        self.down1, self.down2, self.down3, self.down4 = (_down(c) for c in e)
        self.up1 = _up(cfg.bottleneck, d[0])
        self.up2 = _up(d[0], d[1])
        self.up3 = _up(d[1], d[2])
        self.up4 = _up(d[2], d[3])
        self.skip_conn4 = nn.Conv2d(e[3], d[0], 1)
        self.skip_conn3 = nn.Conv2d(e[2], d[1], 1)
        self.skip_conn2 = nn.Conv2d(e[1], d[2], 1)
        self.skip_conn1 = nn.Conv2d(e[0], d[3], 1)

    def _unet(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.encoder_stage1(x)
        f2 = self.encoder_stage2(self.down1(f1))
        f3 = self.encoder_stage3(self.down2(f2))
        f4 = self.encoder_stage4(self.down3(f3))
        b = self.bottleneck(self.down4(f4))
        u1 = self.up1(b) + self.skip_conn4(f4)
        u2 = self.up2(u1) + self.skip_conn3(f3)
        u3 = self.up3(u2) + self.skip_conn2(f2)
        return self.up4(u3) + self.skip_conn1(f1)


class PicoSAM3(_PicoSAMBase):
    """PicoSAM3 as published: dilated bottleneck, ECA and a refinement head. Normalised RGB -> logits."""

    def __init__(self, config: PicoSAMConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        b, c = cfg.bottleneck, cfg.decoder[-1]
        self.bottleneck = nn.Sequential(
            ds_block(cfg.encoder[-1], b),
            nn.Conv2d(b, b, 3, padding=2, dilation=2, groups=b, bias=False),
            nn.BatchNorm2d(b),
            nn.ReLU(inplace=True),
            nn.Conv2d(b, b, 1, bias=False),
            nn.BatchNorm2d(b),
            nn.ReLU(inplace=True),
        )
        self.eca = ECA(c)
        self.refine = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.refine(self.eca(self._unet(x)))


class PicoSAM2(_PicoSAMBase):
    """PicoSAM2 as published: one DS block as bottleneck, a 1x1 output head. Normalised RGB -> logits."""

    def __init__(self, config: PicoSAMConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        self.bottleneck = ds_block(cfg.encoder[-1], cfg.bottleneck)
        self.output_head = nn.Conv2d(cfg.decoder[-1], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_head(self._unet(x))


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())
