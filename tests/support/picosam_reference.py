"""An independent functional implementation of the authors' PicoSAM2 / PicoSAM3 forward, and state_dicts with
their names and shapes, written from shared/notes/picosam3.md (not from imx500_sam.model)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

ENC = (48, 96, 160, 256)
BOT = 320
DEC = (192, 128, 80, 40)
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def _bn(sd: dict, p: str, c: int, g: torch.Generator) -> None:
    sd[f"{p}.weight"] = 0.5 + torch.rand(c, generator=g)
    sd[f"{p}.bias"] = 0.2 * torch.randn(c, generator=g)
    sd[f"{p}.running_mean"] = 0.3 * torch.randn(c, generator=g)
    sd[f"{p}.running_var"] = 0.5 + torch.rand(c, generator=g)
    sd[f"{p}.num_batches_tracked"] = torch.tensor(1000)


def _conv(sd: dict, p: str, cout: int, cin: int, k: int, g: torch.Generator, bias: bool = False) -> None:
    sd[f"{p}.weight"] = torch.randn(cout, cin, k, k, generator=g) * (2.0 / (cin * k * k)) ** 0.5
    if bias:
        sd[f"{p}.bias"] = 0.05 * torch.randn(cout, generator=g)


def _ds(sd: dict, p: str, cin: int, cout: int, g: torch.Generator) -> None:
    _conv(sd, f"{p}.0", cin, 1, 3, g)
    _bn(sd, f"{p}.1", cin, g)
    _conv(sd, f"{p}.3", cout, cin, 1, g)
    _bn(sd, f"{p}.4", cout, g)


def authors_state_dict(arch: str = "picosam3", seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights, non-trivial BN statistics, the authors' names and shapes."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    cin = 3
    for i, c in enumerate(ENC, 1):
        _ds(sd, f"encoder_stage{i}", cin, c, g)
        _conv(sd, f"down{i}", c, c, 3, g)
        cin = c
    if arch == "picosam3":
        _ds(sd, "bottleneck.0", ENC[-1], BOT, g)
        _conv(sd, "bottleneck.1", BOT, 1, 3, g)
        _bn(sd, "bottleneck.2", BOT, g)
        _conv(sd, "bottleneck.4", BOT, BOT, 1, g)
        _bn(sd, "bottleneck.5", BOT, g)
    else:
        _ds(sd, "bottleneck", ENC[-1], BOT, g)
    cin = BOT
    for i, c in enumerate(DEC, 1):
        _ds(sd, f"up{i}.1", cin, c, g)
        cin = c
    for i, (e, d) in zip((4, 3, 2, 1), zip(reversed(ENC), DEC, strict=True), strict=True):
        _conv(sd, f"skip_conn{i}", d, e, 1, g, bias=True)
    if arch == "picosam3":
        _conv(sd, "eca.conv1x1", DEC[-1], DEC[-1], 1, g)
        _conv(sd, "refine.0", DEC[-1], 1, 3, g)
        _bn(sd, "refine.1", DEC[-1], g)
        _conv(sd, "refine.3", 1, DEC[-1], 1, g, bias=True)
    else:
        _conv(sd, "output_head", 1, DEC[-1], 1, g, bias=True)
    return sd


def _bn_f(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"])


def _ds_f(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    x = F.relu(_bn_f(F.conv2d(x, sd[f"{p}.0.weight"], padding=1, groups=x.shape[1]), sd, f"{p}.1"))
    return F.relu(_bn_f(F.conv2d(x, sd[f"{p}.3.weight"]), sd, f"{p}.4"))


def authors_forward(sd: dict, x: torch.Tensor, arch: str = "picosam3") -> torch.Tensor:
    """The published forward on already-normalised input (functional, eval-mode BN)."""

    def down(t: torch.Tensor, i: int) -> torch.Tensor:
        return F.conv2d(t, sd[f"down{i}.weight"], stride=2, padding=1)

    def up(t: torch.Tensor, i: int) -> torch.Tensor:
        return _ds_f(F.interpolate(t, scale_factor=2, mode="nearest"), sd, f"up{i}.1")

    def skip(t: torch.Tensor, i: int) -> torch.Tensor:
        return F.conv2d(t, sd[f"skip_conn{i}.weight"], sd[f"skip_conn{i}.bias"])

    f1 = _ds_f(x, sd, "encoder_stage1")
    f2 = _ds_f(down(f1, 1), sd, "encoder_stage2")
    f3 = _ds_f(down(f2, 2), sd, "encoder_stage3")
    f4 = _ds_f(down(f3, 3), sd, "encoder_stage4")
    if arch == "picosam3":
        b = _ds_f(down(f4, 4), sd, "bottleneck.0")
        b = F.relu(
            _bn_f(F.conv2d(b, sd["bottleneck.1.weight"], padding=2, dilation=2, groups=b.shape[1]), sd, "bottleneck.2")
        )
        b = F.relu(_bn_f(F.conv2d(b, sd["bottleneck.4.weight"]), sd, "bottleneck.5"))
    else:
        b = _ds_f(down(f4, 4), sd, "bottleneck")
    u1 = up(b, 1) + skip(f4, 4)
    u2 = up(u1, 2) + skip(f3, 3)
    u3 = up(u2, 3) + skip(f2, 2)
    u4 = up(u3, 4) + skip(f1, 1)
    if arch == "picosam2":
        return F.conv2d(u4, sd["output_head.weight"], sd["output_head.bias"])
    u4 = u4 * torch.sigmoid(F.conv2d(u4.mean(dim=(2, 3), keepdim=True), sd["eca.conv1x1.weight"]))
    r = F.relu(_bn_f(F.conv2d(u4, sd["refine.0.weight"], padding=1, groups=u4.shape[1]), sd, "refine.1"))
    return F.conv2d(r, sd["refine.3.weight"], sd["refine.3.bias"])


def authors_input(pixels_nchw_uint8: torch.Tensor) -> torch.Tensor:
    """The authors' input: ToTensor (pixels / 255) then Normalize(ImageNet)."""
    return (pixels_nchw_uint8.float() / 255.0 - MEAN) / STD
