"""Distillation training and evaluation of PicoSAM3 (extra ``train``: torch, timm, scikit-image)."""
