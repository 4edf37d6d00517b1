"""PicoSAM3: a ~1.37M-parameter all-convolutional U-Net for one-object segmentation.

Architecture from arXiv 2603.11917 (see shared/notes/picosam3.md). The prompt is the input
crop itself: a square region around the object's box grown by 10%. The network takes RGB
in [0, 1] (the IMX500 hands it uint8/256) and normalises with ImageNet mean/std inside,
so the sensor needs no preprocessing. Output: one-channel mask logits at input resolution.
This module knows no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PicoSAM3Config:
    """Widths of the encoder, bottleneck and decoder, and the input size."""

    encoder: tuple[int, ...] = (48, 96, 160, 256)
    bottleneck: int = 320
    decoder: tuple[int, ...] = (192, 128, 80, 40)
    input_size: int = 96


class DSBlock(nn.Sequential):
    """Depthwise-separable block: DW 3x3 -> BN -> ReLU -> PW 1x1 -> BN -> ReLU."""

    def __init__(self, cin: int, cout: int, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cin, 3, padding=dilation, dilation=dilation, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    """Stride-2 3x3 convolution -> BN -> ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class ECA(nn.Module):
    """Efficient Channel Attention: global average pool -> 1x1 conv -> sigmoid -> multiply."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(channels, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc(self.pool(x)))


class Normalize(nn.Module):
    """Fixed ImageNet normalisation as a multiply-add (IMX500-convertible)."""

    def __init__(self) -> None:
        super().__init__()
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / std)
        self.register_buffer("shift", -mean / std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class PicoSAM3(nn.Module):
    """PicoSAM3 U-Net: (B, 3, S, S) RGB in [0, 1] -> (B, 1, S, S) mask logits."""

    def __init__(self, config: PicoSAM3Config | None = None) -> None:
        super().__init__()
        cfg = config or PicoSAM3Config()
        self.config = cfg
        enc, dec = cfg.encoder, cfg.decoder
        if len(enc) != len(dec):
            raise ValueError("encoder and decoder need the same number of stages")
        self.normalize = Normalize()
        self.enc_blocks = nn.ModuleList()
        self.downs = nn.ModuleList()
        cin = 3
        for c in enc:
            self.enc_blocks.append(DSBlock(cin, c))
            self.downs.append(Down(c, c))
            cin = c
        self.bottleneck = nn.Sequential(
            DSBlock(enc[-1], cfg.bottleneck), DSBlock(cfg.bottleneck, cfg.bottleneck, dilation=2)
        )
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.skips = nn.ModuleList()
        self.dec_blocks = nn.ModuleList()
        cin = cfg.bottleneck
        for skip_c, c in zip(reversed(enc), dec, strict=True):
            self.dec_blocks.append(DSBlock(cin, c))
            self.skips.append(nn.Conv2d(skip_c, c, 1))
            cin = c
        self.eca = ECA(dec[-1])
        self.head = nn.Sequential(
            nn.Conv2d(dec[-1], dec[-1], 3, padding=1, groups=dec[-1], bias=False),
            nn.BatchNorm2d(dec[-1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(dec[-1], 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalize(x)
        skips = []
        for block, down in zip(self.enc_blocks, self.downs, strict=True):
            x = block(x)
            skips.append(x)
            x = down(x)
        x = self.bottleneck(x)
        for block, skip_conv, skip in zip(self.dec_blocks, self.skips, reversed(skips), strict=True):
            x = block(self.up(x)) + skip_conv(skip)
        return self.head(self.eca(x))


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())
