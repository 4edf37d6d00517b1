"""Distillation losses, by name (``distill --loss``).

- ``ours`` (default): MSE + Dice against the teacher's soft mask, weighted by the teacher's confidence, plus
  BCE + Dice against ground truth where it exists.
- ``picosam3``: the PicoSAM3 authors' objective (their ``model_compression`` training script and ``utils.py``,
  read 2026-12-04 in a public copy of their repository, z0905/picosam3): every term on a sigmoid sharpened x5
  (``sigmoid(5 x)``, the teacher's logits sharpened the same way), BCE + Dice against ground truth, MSE + Dice
  against the teacher, mixed by the teacher's confidence (``c * teacher + (1 - c) * gt``), plus 0.4 x an area term
  ``relu(0.4 - predicted area / ground-truth area)`` that punishes masks under 40% of the object. Their crops
  all have both targets and they mix by the batch's mean confidence; here each crop is mixed by its own (a crop
  with no teacher target, ``c = 0``, takes the ground-truth terms alone; one with no ground truth the teacher's,
  weighted by ``c``, and no area term). The BCE is computed from the sharpened logits (exact); their form,
  BCE of ``sigmoid(5 x)``, saturates in float32 beyond ``|5 x|`` of about 17 (a constant, clamped loss without a
  gradient there).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

SHARPEN = 5.0  # the authors' steeper sigmoid: sigmoid(5 x)
AREA_WEIGHT = 0.4  # weight of their area term
AREA_MIN_RATIO = 0.4  # masks under this share of the ground-truth area are punished


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


def sharpen_probability(p: torch.Tensor, temperature: float = SHARPEN, eps: float = 1e-6) -> torch.Tensor:
    """``sigmoid(temperature * logit(p))``: the authors' sharpened teacher mask from a soft mask in [0, 1]."""
    p = p.clamp(eps, 1 - eps)
    return torch.sigmoid(temperature * (torch.log(p) - torch.log1p(-p)))


def picosam3_loss(
    logits: torch.Tensor,
    teacher: torch.Tensor,
    teacher_conf: torch.Tensor,
    gt: torch.Tensor,
    has_gt: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The authors' objective (module docstring), same arguments and parts as ``distill_loss``."""
    x = SHARPEN * logits[:, 0]
    prob = torch.sigmoid(x)
    t = sharpen_probability(teacher)
    c = teacher_conf.clamp(0, 1)
    mse = ((prob - t) ** 2).flatten(1).mean(1)
    teacher_term = mse + soft_dice(prob, t, eps=1e-6)
    bce = F.binary_cross_entropy_with_logits(x, gt, reduction="none").flatten(1).mean(1)
    gt_term = bce + soft_dice(prob, gt, eps=1e-6)
    ratio = prob.flatten(1).sum(1) / (gt.flatten(1).sum(1) + 1e-6)
    area = torch.relu(AREA_MIN_RATIO - ratio)
    w_gt = has_gt * (1 - c)
    w_area = has_gt * AREA_WEIGHT
    n = logits.shape[0]
    t_part = (c * teacher_term).sum() / n
    g_part = (w_gt * gt_term + w_area * area).sum() / n
    with torch.no_grad():
        parts = {"teacher": float(t_part), "gt": float(g_part)}
    return t_part + g_part, parts


LOSSES = {"ours": distill_loss, "picosam3": picosam3_loss}


LossFn = Callable[..., tuple[torch.Tensor, dict[str, float]]]


def loss_by_name(name: str) -> LossFn:
    """The loss function called ``name`` (``LOSSES``); ValueError naming the choices otherwise."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}: choose one of {', '.join(LOSSES)}") from None
