"""Build PicoSAM3 from a checkpoint file, safely (``torch.load(weights_only=True)`` only).

Accepted: a bare state_dict, or a dict holding one under ``model`` or ``state_dict`` (an
optional ``config`` dict next to it is honoured). Widths are read from the tensors' shapes,
so a PicoSAM3 trained with other widths loads too.
"""

from __future__ import annotations

import pickle
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from imx500_sam.errors import BadInputError
from imx500_sam.model.picosam3 import PicoSAM3, PicoSAM3Config

CHECKPOINT_FORMAT = "imx500-sam/picosam3/v1"


def _read(path: Path) -> Any:
    if not path.is_file():
        raise BadInputError(f"{path}: no such file.", hint="Give the path of a PicoSAM3 .pt checkpoint.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise BadInputError(
            f"{path}: refused to load, the checkpoint would run code or holds objects that are not "
            f"plain tensors ({str(exc).splitlines()[0][:120]}).",
            hint="Save it as a plain state_dict: torch.save(model.state_dict(), path).",
        ) from exc
    except Exception as exc:  # torch.load on arbitrary bytes raises many kinds (KeyError, EOFError, ...)
        raise BadInputError(
            f"{path}: not a PyTorch checkpoint ({type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:120]}).",
            hint="Give a file written by torch.save(model.state_dict(), path).",
        ) from exc


def extract_state_dict(obj: Any, path: Path | str = "checkpoint") -> tuple[dict[str, torch.Tensor], dict]:
    """Return (state_dict, config-dict) from a loaded checkpoint object."""
    config: dict = {}
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if key in obj and isinstance(obj[key], dict):
                config = obj.get("config") or {}
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BadInputError(
            f"{path}: holds no state_dict of tensors.",
            hint="Save model.state_dict() (optionally under the key 'model').",
        )
    return {k.removeprefix("module."): v for k, v in obj.items()}, dict(config)


def infer_config(state: dict[str, torch.Tensor], input_size: int = 96) -> PicoSAM3Config:
    """Read PicoSAM3 widths from the shapes of a state_dict."""

    def out_ch(key: str) -> int:
        if key not in state:
            raise KeyError(key)
        return int(state[key].shape[0])

    encoder, decoder = [], []
    i = 0
    while f"enc_blocks.{i}.3.weight" in state:
        encoder.append(out_ch(f"enc_blocks.{i}.3.weight"))
        i += 1
    i = 0
    while f"dec_blocks.{i}.3.weight" in state:
        decoder.append(out_ch(f"dec_blocks.{i}.3.weight"))
        i += 1
    return PicoSAM3Config(
        encoder=tuple(encoder),
        bottleneck=out_ch("bottleneck.0.3.weight"),
        decoder=tuple(decoder),
        input_size=input_size,
    )


def build_model(
    state: dict[str, torch.Tensor], config: dict | None = None, path: Path | str = "checkpoint"
) -> PicoSAM3:
    """Build a PicoSAM3 in eval mode from a state_dict; BadInputError if it does not fit."""
    input_size = int((config or {}).get("input_size", 96))
    try:
        cfg = infer_config(state, input_size)
        if not cfg.encoder or len(cfg.encoder) != len(cfg.decoder):
            raise KeyError("enc_blocks/dec_blocks")
        model = PicoSAM3(cfg)
    except (KeyError, ValueError) as exc:
        raise BadInputError(
            f"{path}: not a PicoSAM3 state_dict (missing {exc}).",
            hint="Give a checkpoint of imx500_sam.model.PicoSAM3 (other models: `imx500-sam check py:module:factory`).",
        ) from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:200]
        raise BadInputError(
            f"{path}: weights do not match the PicoSAM3 architecture ({detail}).",
            hint="Check that the checkpoint was saved from imx500_sam.model.PicoSAM3.",
        ) from exc
    return model.eval()


def load_checkpoint(path: str | Path) -> PicoSAM3:
    """Load a PicoSAM3 checkpoint from disk (never runs code from the file)."""
    path = Path(path)
    state, config = extract_state_dict(_read(path), path)
    return build_model(state, config, path)


def save_checkpoint(model: PicoSAM3, path: str | Path, **extra: Any) -> None:
    """Save ``{"format", "config", "model", **extra}``, loadable with weights_only=True."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(model.config).items()},
        "model": model.state_dict(),
        **extra,
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
