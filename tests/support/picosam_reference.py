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


def pad_bbox_to_square(bbox: tuple[float, float, float, float], img_w: int, img_h: int, padding: float = 0.1):
    """The authors' crop box (shared/notes/picosam3.md, protocol step 3): pad, square about the centre, clamp to
    the image, ``int()`` each corner. Returns (x1, y1, x2, y2)."""
    x, y, w, h = bbox
    x, y = x - w * padding, y - h * padding
    w, h = w + 2 * w * padding, h + 2 * h * padding
    size = max(w, h)
    cx, cy = x + w / 2, y + h / 2
    x1, y1 = cx - size / 2, cy - size / 2
    x2, y2 = x1 + size, y1 + size
    return int(max(0, x1)), int(max(0, y1)), int(min(img_w, x2)), int(min(img_h, y2))


def export_authors_onnx(arch: str, sd: dict, path, size: int = 96, fold: bool = True) -> None:
    """``torch.onnx.export`` of the authors' network in eval mode, ImageNet normalisation outside (as their
    ``PicoSAM3_SAM3_student_best.onnx``): a throwaway nn.Module running ``authors_forward``'s arithmetic with
    the authors' module names, so the exporter folds each BatchNorm into its convolution as it does for theirs
    (``fold=False``: constant folding off)."""
    from torch import nn

    from imx500_sam.compat import legacy_onnx_export

    def ds(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(),
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
        )  # fmt: skip

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            cin = 3
            for i, c in enumerate(ENC, 1):
                setattr(self, f"encoder_stage{i}", ds(cin, c))
                setattr(self, f"down{i}", nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False))
                cin = c
            if arch == "picosam3":
                self.bottleneck = nn.Sequential(
                    ds(ENC[-1], BOT), nn.Conv2d(BOT, BOT, 3, padding=2, dilation=2, groups=BOT, bias=False),
                    nn.BatchNorm2d(BOT), nn.ReLU(), nn.Conv2d(BOT, BOT, 1, bias=False), nn.BatchNorm2d(BOT), nn.ReLU(),
                )  # fmt: skip
            else:
                self.bottleneck = ds(ENC[-1], BOT)
            cin = BOT
            for i, c in enumerate(DEC, 1):
                setattr(self, f"up{i}", nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), ds(cin, c)))
                cin = c
            for i, (e, d) in zip((4, 3, 2, 1), zip(reversed(ENC), DEC, strict=True), strict=True):
                setattr(self, f"skip_conn{i}", nn.Conv2d(e, d, 1))
            if arch == "picosam3":
                self.eca = nn.Module()
                self.eca.conv1x1 = nn.Conv2d(DEC[-1], DEC[-1], 1, bias=False)
                self.refine = nn.Sequential(
                    nn.Conv2d(DEC[-1], DEC[-1], 3, padding=1, groups=DEC[-1], bias=False), nn.BatchNorm2d(DEC[-1]),
                    nn.ReLU(), nn.Conv2d(DEC[-1], 1, 1),
                )  # fmt: skip
            else:
                self.output_head = nn.Conv2d(DEC[-1], 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f1 = self.encoder_stage1(x)
            f2 = self.encoder_stage2(self.down1(f1))
            f3 = self.encoder_stage3(self.down2(f2))
            f4 = self.encoder_stage4(self.down3(f3))
            b = self.bottleneck(self.down4(f4))
            u = self.up1(b) + self.skip_conn4(f4)
            u = self.up2(u) + self.skip_conn3(f3)
            u = self.up3(u) + self.skip_conn2(f2)
            u = self.up4(u) + self.skip_conn1(f1)
            if arch == "picosam2":
                return self.output_head(u)
            u = u * torch.sigmoid(self.eca.conv1x1(F.adaptive_avg_pool2d(u, 1)))
            return self.refine(u)

    net = Net().eval()
    net.load_state_dict(sd, strict=True)
    with legacy_onnx_export(), torch.inference_mode():
        torch.onnx.export(
            net, (torch.zeros(1, 3, size, size),), str(path), input_names=["input"], output_names=["output"],
            opset_version=17, do_constant_folding=fold,
        )  # fmt: skip
