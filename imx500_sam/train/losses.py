"""Distillation loss (PicoSAM3 recipe): MSE + Dice against the teacher's soft mask, weighted by the
teacher's confidence, plus BCE + Dice against ground truth where it exists."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_dice(prob: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Per-sample soft Dice loss, shape (B,)."""
    p, t = prob.flatten(1), target.flatten(1)
    inter = (p * t).sum(1)
    return 1 - (2 * inter + eps) / (p.sum(1) + t.sum(1) + eps)


def distill_loss(
    logits: torch.Tensor,
    teacher: torch.Tensor,
    teacher_conf: torch.Tensor,
    gt: torch.Tensor,
    has_gt: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss for logits (B, 1, H, W); teacher/gt (B, H, W); teacher_conf (0 = no teacher) and has_gt (B,)."""
    logits = logits[:, 0]
    prob = torch.sigmoid(logits)
    w_t = teacher_conf.clamp(0, 1)
    mse = ((prob - teacher) ** 2).flatten(1).mean(1)
    dice_t = soft_dice(prob, teacher)
    bce = F.binary_cross_entropy_with_logits(logits, gt, reduction="none").flatten(1).mean(1)
    dice_g = soft_dice(prob, gt)
    n = logits.shape[0]
    teacher_term = (w_t * (mse + dice_t)).sum() / n
    gt_term = (has_gt * (bce + dice_g)).sum() / n
    loss = teacher_term + gt_term
    with torch.no_grad():
        parts = {
            "teacher": float(teacher_term),
            "gt": float(gt_term),
        }
    return loss, parts
