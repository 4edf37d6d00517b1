"""Distillation losses: the PicoSAM3 authors' objective (``--loss picosam3``) against their formulas."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from imx500_sam.train.losses import distill_loss, loss_by_name, picosam3_loss, sharpen_probability


def _authors(logits: torch.Tensor, teacher_logits: torch.Tensor, gt: torch.Tensor, conf: torch.Tensor):
    """Their batch formula written out from their description: sigmoid(5 x) everywhere, alpha = the batch's mean
    confidence, loss = alpha * (MSE + Dice vs teacher) + (1 - alpha) * (BCE + Dice vs gt) + 0.4 * area."""
    p = torch.sigmoid(5 * logits)
    t = torch.sigmoid(5 * teacher_logits)

    def dice(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        inter = (a * b).sum(dim=(1, 2, 3))
        return 1 - ((2 * inter + 1e-6) / (a.sum(dim=(1, 2, 3)) + b.sum(dim=(1, 2, 3)) + 1e-6)).mean()

    teacher_loss = F.mse_loss(p, t) + dice(p, t)
    gt_loss = F.binary_cross_entropy(p, gt) + dice(p, gt)
    area = torch.relu(0.4 - p.sum(dim=(2, 3)) / (gt.sum(dim=(2, 3)) + 1e-6)).mean()
    alpha = conf.mean()
    return alpha * teacher_loss + (1 - alpha) * gt_loss + 0.4 * area


def test_sharpened_teacher_is_sigmoid_of_five_times_its_logit() -> None:
    logit = torch.linspace(-3, 3, 13)
    p = torch.sigmoid(logit)
    torch.testing.assert_close(sharpen_probability(p), torch.sigmoid(5 * logit), atol=1e-5, rtol=1e-5)
    assert float(sharpen_probability(torch.tensor(0.5))) == pytest.approx(0.5)


@pytest.mark.parametrize("conf", [0.0, 0.3, 0.9])
def test_picosam3_loss_equals_the_authors_formula_when_every_crop_has_both_targets(conf: float) -> None:
    g = torch.Generator().manual_seed(0)
    logits = 0.6 * torch.randn(4, 1, 12, 12, generator=g)  # |5 x| < 16: their float32 BCE does not saturate
    teacher_logits = 2 * torch.randn(4, 1, 12, 12, generator=g)
    gt = (torch.rand(4, 1, 12, 12, generator=g) > 0.6).float()
    gt[0] = 0
    gt[0, 0, 3:5, 3:5] = 1  # a small object: the area term is active where the prediction is smaller
    c = torch.full((4,), conf)
    ours, _ = picosam3_loss(logits, torch.sigmoid(teacher_logits)[:, 0], c, gt[:, 0], torch.ones(4))
    want = _authors(logits, teacher_logits, gt, c)
    torch.testing.assert_close(ours, want, atol=2e-5, rtol=2e-5)


def test_area_term_punishes_a_mask_much_smaller_than_the_object() -> None:
    gt = torch.zeros(1, 16, 16)
    gt[0, 2:14, 2:14] = 1
    small = torch.full((1, 1, 16, 16), -4.0)
    small[0, 0, 6:9, 6:9] = 4.0  # 9 of 144 pixels
    parts = {}
    for name, logits in (("small", small), ("right", 8 * (2 * gt[:, None] - 1))):
        loss, _ = picosam3_loss(logits, torch.zeros(1, 16, 16), torch.zeros(1), gt, torch.ones(1))
        parts[name] = float(loss)
    area_small = 0.4 * (0.4 - 9 / 144)
    assert parts["small"] > parts["right"] + area_small * 0.9


def test_crops_without_a_target_take_no_gradient_from_it() -> None:
    """A crop without a teacher target (conf 0: pastes, scenes) and one without ground truth (photo targets)."""
    logits = torch.zeros(2, 1, 8, 8, requires_grad=True)
    teacher = torch.rand(2, 8, 8)
    gt = torch.ones(2, 8, 8)
    loss, parts = picosam3_loss(logits, teacher, torch.tensor([0.0, 0.7]), gt, torch.tensor([1.0, 0.0]))
    loss.backward()
    assert parts["teacher"] > 0 and parts["gt"] > 0
    # changing the teacher of crop 0 (conf 0) or the ground truth of crop 1 (has_gt 0) changes nothing
    loss2, _ = picosam3_loss(
        logits, torch.stack([1 - teacher[0], teacher[1]]), torch.tensor([0.0, 0.7]),
        torch.stack([gt[0], torch.zeros(8, 8)]), torch.tensor([1.0, 0.0]),
    )  # fmt: skip
    assert float(loss2.detach()) == pytest.approx(float(loss.detach()))


def test_loss_by_name_and_the_cli_refuse_an_unknown_loss(tmp_path: Path) -> None:
    assert loss_by_name("ours") is distill_loss and loss_by_name("picosam3") is picosam3_loss
    with pytest.raises(ValueError, match="ours, picosam3"):
        loss_by_name("focal")
    from imx500_sam.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["distill", "-o", str(tmp_path / "run"), "--photos", str(tmp_path), "--loss", "focal"])
    assert rc == 2, err.getvalue()
    assert "--loss" in err.getvalue() and "picosam3" in err.getvalue()
    assert not (tmp_path / "run").exists()  # refused before anything was written
