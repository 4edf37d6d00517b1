"""The toolkit's earlier PicoSAM3 look-alike (layout ``imx500-sam-v1``), kept so its checkpoints still load.

Checkpoints made by imx500-sam 0.1 ``distill`` use these module names (``enc_blocks``, ``downs``, ``skips``,
``dec_blocks``, ``head``). It differs from the published PicoSAM3 (:mod:`imx500_sam.model.picosam`) in two places:
its stride-2 convolutions carry BN + ReLU and its ECA conv has a bias; and it normalises its input inside
(RGB = uint8/256 in, ImageNet mean/std applied to that). New work uses the published layout;
:func:`to_published` turns one of these into a published PicoSAM3 (approximately: fine-tune after).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from imx500_sam.model.sensor_input import IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class LegacyConfig:
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


class LegacyPicoSAM3(nn.Module):
    """The earlier look-alike: (B, 3, S, S) RGB = uint8/256 -> (B, 1, S, S) mask logits."""

    def __init__(self, config: LegacyConfig | None = None) -> None:
        super().__init__()
        cfg = config or LegacyConfig()
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


def to_published(legacy: LegacyPicoSAM3, pooled_mean: torch.Tensor | None = None) -> nn.Module:
    """An approximate published-layout PicoSAM3 (behind :class:`SensorInput`) with this network's weights.

    Exact where the layouts agree (every DS block, skips, refinement head). Each stride-2 conv gets its BN scale
    folded in and its BN shift moved into the next block's BN statistics; the ReLU after it has no counterpart.
    The ECA bias is folded into its weights around ``pooled_mean`` (the mean pooled decoder feature on real crops;
    zeros if not given). The result needs fine-tuning (``imx500-sam distill --init``).
    """
    from imx500_sam.model.picosam import PicoSAM3, PicoSAMConfig
    from imx500_sam.model.sensor_input import SensorInput

    cfg = legacy.config
    if len(cfg.encoder) != 4:
        raise ValueError("only four-stage networks have a published counterpart")
    new = PicoSAM3(PicoSAMConfig(cfg.encoder, cfg.bottleneck, cfg.decoder, cfg.input_size))
    old = legacy.state_dict()
    sd = new.state_dict()

    def copy_block(src: str, dst: str) -> None:
        for k in list(old):
            if k.startswith(src + "."):
                sd[dst + k[len(src) :]] = old[k].clone()

    for i in range(4):
        copy_block(f"enc_blocks.{i}", f"encoder_stage{i + 1}")
        copy_block(f"dec_blocks.{i}", f"up{i + 1}.1")
        copy_block(f"skips.{i}", f"skip_conn{4 - i}")
    copy_block("bottleneck.0", "bottleneck.0")
    for a, b in ((0, 1), (1, 2), (3, 4), (4, 5)):
        copy_block(f"bottleneck.1.{a}", f"bottleneck.{b}")
    copy_block("head", "refine")
    # stride-2 convs: y = relu(g * (conv(x) - m) / sqrt(v + eps) + beta) -> conv'(x) = a * conv(x), shift c moved on.
    nxt = ["encoder_stage2", "encoder_stage3", "encoder_stage4", "bottleneck.0"]
    for i in range(4):
        p = f"downs.{i}"
        a = old[f"{p}.1.weight"] / torch.sqrt(old[f"{p}.1.running_var"] + 1e-5)
        c = old[f"{p}.1.bias"] - a * old[f"{p}.1.running_mean"]
        sd[f"down{i + 1}.weight"] = old[f"{p}.0.weight"] * a.view(-1, 1, 1, 1)
        # the next DW conv sees x + c: its output moves by c * sum(w) (exact away from the zero-padded border)
        dw = sd[f"{nxt[i]}.0.weight"]
        sd[f"{nxt[i]}.1.running_mean"] = sd[f"{nxt[i]}.1.running_mean"] - c * dw.sum(dim=(1, 2, 3))
    w = old["eca.fc.weight"][:, :, 0, 0]
    b = old["eca.fc.bias"]
    if pooled_mean is not None and float(pooled_mean.norm()) > 0:
        pm = pooled_mean.view(-1)
        w = w + torch.outer(b, pm) / float(pm @ pm)
    sd["eca.conv1x1.weight"] = w.view(*w.shape, 1, 1)
    new.load_state_dict(sd)
    return SensorInput(new).eval()
