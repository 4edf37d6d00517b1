"""Checkpoints in, PicoSAM modules out: one place, ``torch.load(weights_only=True)`` only.

Known layouts (a table of named builders, as in segment-anything's ``build_sam``):

- ``picosam3``: the authors' PicoSAM3 state_dict (``PicoSAM3_SAM3_student_best.pt``, fine-tunes of it, and what
  ``imx500-sam distill`` writes);
- ``picosam2``: the authors' PicoSAM2 state_dict (``PicoSAM2_student_epoch1.pt``, ``PicoSAM2_epoch1.pt``);
- ``imx500-sam-v1``: the toolkit's earlier look-alike layout (checkpoints of imx500-sam 0.1 ``distill``).

A file may hold the state_dict bare, or under ``model`` / ``state_dict`` (e.g. LibreYOLO's ``LibrePicoSAM3pico.pt``:
the authors' state_dict with ``model_family``, ``imgsz``, ... beside it, kept as ``Checkpoint.file_info``), with or
without DDP's ``module.`` prefix; or be a float ONNX export of the network (``imx500_sam.model.onnx_import``).
Widths are read from the tensors. The layout comes from the tensors, not the file name: a PicoSAM2 in a file named
PicoSAM3 (the authors' ``PicoSAM3_epoch1.pt``) loads as PicoSAM2 with a one-line warning.
The module returned takes RGB = pixels / 256 (the sensor's input) and returns
the same logits as the authors' forward on ``Normalize(ImageNet)(pixels / 255)`` (see ``sensor_input``).
What the toolkit keeps besides the weights (layout, config, training metadata) goes in a JSON sidecar
(``name.json`` beside ``name.pt``), so the ``.pt`` stays a plain state_dict the authors' code loads.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imx500_sam.errors import BadInputError, clip_words
from imx500_sam.model.legacy import LegacyConfig, LegacyPicoSAM3
from imx500_sam.model.picosam import PicoSAM2, PicoSAM3, PicoSAMConfig
from imx500_sam.model.sensor_input import SensorInput

SIDECAR_FORMAT = "imx500-sam/picosam/v2"
StateDict = dict[str, torch.Tensor]


def _width(state: StateDict, key: str) -> int:
    if key not in state:
        raise KeyError(key)
    return int(state[key].shape[0])


def _published_config(bottleneck_key: str) -> Callable[[StateDict, int], PicoSAMConfig]:
    def infer(state: StateDict, input_size: int) -> PicoSAMConfig:
        return PicoSAMConfig(
            encoder=tuple(_width(state, f"encoder_stage{i}.3.weight") for i in range(1, 5)),
            bottleneck=_width(state, bottleneck_key),
            decoder=tuple(_width(state, f"up{i}.1.3.weight") for i in range(1, 5)),
            input_size=input_size,
        )

    return infer


def _legacy_config(state: StateDict, input_size: int) -> LegacyConfig:
    def widths(prefix: str) -> tuple[int, ...]:
        out, i = [], 0
        while f"{prefix}.{i}.3.weight" in state:
            out.append(_width(state, f"{prefix}.{i}.3.weight"))
            i += 1
        if not out:
            raise KeyError(f"{prefix}.0.3.weight")
        return tuple(out)

    return LegacyConfig(widths("enc_blocks"), _width(state, "bottleneck.0.3.weight"), widths("dec_blocks"), input_size)


@dataclass(frozen=True)
class Layout:
    """A known state_dict layout: how to read its widths and build its network."""

    name: str
    architecture: str
    description: str
    infer: Callable[[StateDict, int], Any]
    build: Callable[[Any], nn.Module]  # the bare network, as its state_dict is laid out
    sensor_input: bool  # wrap in SensorInput (the network expects normalised input)

    def default_keys(self) -> set[str]:
        """The state_dict keys of this layout at its default widths."""
        cfg = LegacyConfig() if self.name == LEGACY else PicoSAMConfig()
        return set(self.build(cfg).state_dict())


LEGACY = "imx500-sam-v1"
LAYOUTS: dict[str, Layout] = {
    "picosam3": Layout(
        "picosam3", "PicoSAM3", "the authors' PicoSAM3", _published_config("bottleneck.0.3.weight"), PicoSAM3, True
    ),
    "picosam2": Layout(
        "picosam2", "PicoSAM2", "the authors' PicoSAM2", _published_config("bottleneck.3.weight"), PicoSAM2, True
    ),
    LEGACY: Layout(LEGACY, "PicoSAM3", "imx500-sam 0.1's PicoSAM3 look-alike", _legacy_config, LegacyPicoSAM3, False),
}


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the ready module (eval mode), its layout and widths, and the sidecar's metadata.

    ``file_format``: ``state_dict`` or ``float-onnx``; ``file_info``: the plain values stored beside the
    state_dict (a LibreYOLO checkpoint's ``model_family``, ``imgsz``, ...); ``warnings``: one line each.
    """

    module: nn.Module
    layout: Layout
    config: Any
    meta: dict[str, Any]
    file_format: str = "state_dict"
    file_info: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def sidecar_path(path: Path) -> Path:
    """``name.json`` beside ``name.pt``."""
    return path.with_suffix(".json")


_KNOWN_MAGICS = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"RIFF", "a RIFF file (WebP image, AVI video)"),
    (b"\x1f\x8b", "a gzip file"),
    (b"{", "a JSON or text file"),
)


def _not_a_checkpoint(path: Path) -> str | None:
    """What ``path`` is when its first bytes rule out torch.save's formats (a zip, or a pickle), else None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):  # torch.save: zip (>= 1.6), else a pickle
        return None
    if not head:
        return "an empty file"
    return next((what for magic, what in _KNOWN_MAGICS if head.startswith(magic)), "not a file torch.save writes")


def _read(path: Path) -> Any:
    if not path.is_file():
        raise BadInputError(f"{path}: no such file.", hint="Give the path of a PicoSAM .pt checkpoint.")
    what = _not_a_checkpoint(path)
    if what is not None:
        raise BadInputError(
            f"{path}: not a checkpoint ({what}).",
            hint="Give a PicoSAM .pt checkpoint (torch.save of the model's state_dict), an .onnx file, or "
            "py:package.module:factory.",
        )
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing: one line is ours
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise BadInputError(
            f"{path}: refused to load, the checkpoint would run code or holds objects that are not "
            f"plain tensors ({clip_words(str(exc), 120)}).",
            hint="Save it as a plain state_dict: torch.save(model.state_dict(), path).",
        ) from exc
    except Exception as exc:  # torch.load on arbitrary bytes raises many kinds (KeyError, EOFError, ...)
        raise BadInputError(
            f"{path}: not a PyTorch checkpoint ({type(exc).__name__}: {clip_words(str(exc), 120)}).",
            hint="Give a file written by torch.save(model.state_dict(), path).",
        ) from exc


def _plain(value: Any) -> Any:
    """A JSON-able copy of a plain value (dict keys as strings); None for one that holds tensors or objects."""
    if isinstance(value, dict):
        items = {str(k): _plain(v) for k, v in value.items()}
        return None if any(items[str(k)] is None and v is not None for k, v in value.items()) else items
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return None if any(p is None and v is not None for p, v in zip(items, value, strict=True)) else items
    return value if isinstance(value, (str, int, float, bool)) else None


def wrapper_metadata(obj: Any) -> dict[str, Any]:
    """The plain values stored beside a wrapped state_dict (LibreYOLO's ``model_family``, ``imgsz``, ...)."""
    if not isinstance(obj, dict) or not any(isinstance(obj.get(k), dict) for k in ("model", "state_dict")):
        return {}
    plain = {str(k): _plain(v) for k, v in obj.items() if k not in ("model", "state_dict")}
    return {k: v for k, v in plain.items() if v is not None or obj.get(k) is None}


def extract_state_dict(obj: Any, path: Path | str = "checkpoint") -> tuple[StateDict, dict]:
    """(state_dict without DDP's ``module.`` prefix, embedded config dict) from a loaded checkpoint object."""
    config: dict = {}
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if key in obj and isinstance(obj[key], dict):
                config = obj.get("config") if isinstance(obj.get("config"), dict) else {}
                if not config and isinstance(obj.get("imgsz"), int):  # LibreYOLO's wrapper
                    config = {"input_size": obj["imgsz"]}
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BadInputError(
            f"{path}: holds no state_dict of tensors.",
            hint="Save model.state_dict() (optionally under the key 'model').",
        )
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return dict(obj), dict(config)


def _closest(keys: set[str]) -> tuple[Layout, list[str], list[str]]:
    def score(layout: Layout) -> float:
        expected = layout.default_keys()
        return len(keys & expected) / len(keys | expected)

    best = max(LAYOUTS.values(), key=score)
    expected = best.default_keys()
    return best, sorted(expected - keys), sorted(keys - expected)


def build_from_state(state: StateDict, input_size: int = 96, path: Path | str = "checkpoint") -> Checkpoint:
    """Recognise the layout of ``state`` and build its module; BadInputError naming the closest layout if none fits."""
    keys = set(state)
    for layout in LAYOUTS.values():
        try:
            cfg = layout.infer(state, input_size)
            net = layout.build(cfg)
        except (KeyError, ValueError):
            continue
        if set(net.state_dict()) != keys:
            continue
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            detail = clip_words(str(exc), 200)
            raise BadInputError(
                f"{path}: {layout.description} layout, but the tensors do not fit it ({detail}).",
                hint="Check that the checkpoint was saved from that model without changes to its structure.",
            ) from exc
        net.eval()
        module = SensorInput(net).eval() if layout.sensor_input else net
        return Checkpoint(module, layout, cfg, {})
    best, missing, unexpected = _closest(keys)
    parts = [
        f"missing {', '.join(missing[:3])}" if missing else "",
        f"unexpected {', '.join(unexpected[:3])}" if unexpected else "",
    ]
    raise BadInputError(
        f"{path}: not a known PicoSAM state_dict; closest layout is {best.name} ({best.description}): "
        + "; ".join(p for p in parts if p)
        + ".",
        hint=f"Known layouts: {', '.join(LAYOUTS)}. Other models: `imx500-sam check py:module:factory`.",
    )


def _read_sidecar(path: Path) -> dict[str, Any]:
    side = sidecar_path(path)
    if side.is_file():
        try:
            meta = json.loads(side.read_text())
            return meta if isinstance(meta, dict) else {}
        except (OSError, ValueError):
            return {}
    return {}


def name_mismatch(path: Path, layout: Layout) -> str | None:
    """A one-line warning when the file's name names another PicoSAM architecture than its tensors hold."""
    named = {m.lower() for m in re.findall(r"picosam\d", path.name, flags=re.IGNORECASE)}
    if not named or layout.architecture.lower() in named or layout.name == LEGACY:
        return None
    names = "/".join(sorted(n.replace("picosam", "PicoSAM") for n in named))
    arch = layout.architecture
    return f"{path.name} is named {names} but holds a {arch} network: loading it as {arch}."


def _warn(lines: tuple[str, ...]) -> None:
    for line in lines:
        print(f"imx500-sam: warning: {line}", file=sys.stderr)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Load a PicoSAM checkpoint (any known layout, or a float ONNX export) and its sidecar, never running code.

    Warnings (a file named for another architecture) are printed to stderr, one line each, and kept.
    """
    path = Path(path)
    meta = _read_sidecar(path)
    if path.suffix.lower() == ".onnx":
        from imx500_sam.model.onnx_import import read_onnx_network

        found = read_onnx_network(path)
        layout = LAYOUTS[found.layout]
        module = SensorInput(found.net).eval()
        file_info = {
            "onnx_batchnorm_folded": found.batchnorm_folded,
            "onnx_vs_module_max_rel_diff": found.verified_rel_diff,
        }
        ckpt = Checkpoint(module, layout, found.config, meta, "float-onnx", file_info)
    else:
        obj = _read(path)
        state, config = extract_state_dict(obj, path)
        input_size = int((meta.get("config") or config or {}).get("input_size", 96))
        built = build_from_state(state, input_size, path)
        ckpt = Checkpoint(built.module, built.layout, built.config, meta, "state_dict", wrapper_metadata(obj))
    mismatch = name_mismatch(path, ckpt.layout)
    if mismatch:
        ckpt = dataclasses.replace(ckpt, warnings=(mismatch,))
        _warn(ckpt.warnings)
    return ckpt


def prompt_crop_of(ckpt: Checkpoint) -> str:
    """The crop convention the checkpoint's model was trained with (``imx500_sam.prompt``).

    Its sidecar's ``prompt_crop`` when it has one; else ``shifted`` for a file imx500-sam wrote (a sidecar, or
    imx500-sam 0.1's layout: both trained on shifted squares), and ``clamped`` (the authors' ``pad_bbox_to_square``)
    for the authors' files and their repackagings (no sidecar: .pt, LibreYOLO's, the float ONNX).
    """
    from imx500_sam.prompt import CLAMPED, SHIFTED, check_convention

    recorded = ckpt.meta.get("prompt_crop")
    if isinstance(recorded, str):
        try:
            return check_convention(recorded)
        except ValueError as exc:
            raise BadInputError(f"sidecar: {exc}.", hint="Fix prompt_crop in the checkpoint's .json sidecar.") from exc
    if ckpt.layout.name == LEGACY or ckpt.meta.get("format") == SIDECAR_FORMAT:
        return SHIFTED
    return CLAMPED


def load_checkpoint(path: str | Path) -> nn.Module:
    """The module of a PicoSAM checkpoint: RGB = pixels / 256 in, mask logits out (eval mode)."""
    return read_checkpoint(path).module


def bare_network(model: nn.Module) -> nn.Module:
    """The network whose state_dict is saved (the published one inside a SensorInput)."""
    return model.net if isinstance(model, SensorInput) else model


def layout_of(model: nn.Module) -> Layout:
    """The layout a module saves as."""
    net = bare_network(model)
    for layout in LAYOUTS.values():
        if type(net) is layout.build:
            return layout
    raise TypeError(f"{type(net).__name__} is not a PicoSAM network")


def save_checkpoint(model: nn.Module, path: str | Path, **meta: Any) -> Path:
    """Write the plain state_dict (authors' layout) to ``path`` and the toolkit's metadata to its JSON sidecar.

    ``PicoSAM3().load_state_dict(torch.load(path, weights_only=True))`` works in the authors' code, on any machine:
    the tensors are saved on the CPU whatever device the model is on. Atomic.
    """
    path = Path(path)
    net = bare_network(model)
    layout = layout_of(model)
    cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(net.config).items()}
    side = {"format": SIDECAR_FORMAT, "layout": layout.name, "architecture": layout.architecture, "config": cfg}
    if isinstance(model, SensorInput):
        side["input"] = {"pixel_divisor": model.pixel_divisor, "normalisation": "ImageNet mean/std of pixels / 255"}
    side.update(meta)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    state = net.state_dict()
    for k, v in state.items():  # plain NCHW CPU tensors whatever layout and device the module trained in
        state[k] = v.detach().cpu().contiguous()
    torch.save(state, tmp)
    tmp_side = sidecar_path(tmp)
    tmp_side.write_text(json.dumps(side, indent=1) + "\n")
    tmp.replace(path)
    tmp_side.replace(sidecar_path(path))
    return path
