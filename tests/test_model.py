"""The PicoSAM family in the authors' published layout, and checkpoint loading of every known layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from imx500_sam.errors import BadInputError
from imx500_sam.model import (
    DEFAULT_CHECKPOINT,
    PicoSAM2,
    PicoSAM3,
    PicoSAMConfig,
    SensorInput,
    count_parameters,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from imx500_sam.model.legacy import LegacyConfig, LegacyPicoSAM3
from tests.support.picosam_reference import authors_forward, authors_input, authors_state_dict


def _pixels(n: int = 2, size: int = 96, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_published_parameter_counts() -> None:
    assert count_parameters(PicoSAM3()) == 1_371_418
    assert count_parameters(PicoSAM2()) == 1_262_818


@pytest.mark.parametrize("arch", ["picosam3", "picosam2"])
def test_authors_state_dict_loads_and_equals_their_forward(arch: str, tmp_path: Path) -> None:
    """An authors'-layout checkpoint loads; our module on pixels/256 == their forward on Normalize(pixels/255)."""
    sd = authors_state_dict(arch, seed=1)
    ckpt = tmp_path / f"{arch}.pt"
    torch.save(sd, ckpt)
    loaded = read_checkpoint(ckpt)
    assert loaded.layout.name == arch
    assert loaded.layout.architecture == {"picosam3": "PicoSAM3", "picosam2": "PicoSAM2"}[arch]
    assert isinstance(loaded.module, SensorInput)
    px = _pixels()
    with torch.inference_mode():
        ref = authors_forward(sd, authors_input(px), arch)
        got = loaded.module(px.float() / 256.0)
    assert got.shape == ref.shape == (2, 1, 96, 96)
    assert float((got - ref).abs().max()) <= 1e-4 * float(ref.abs().max())


def test_wrapped_and_ddp_forms_load(tmp_path: Path) -> None:
    sd = authors_state_dict("picosam3", seed=2)
    forms = {
        "bare.pt": sd,
        "model.pt": {"model": sd, "epoch": 3},
        "ddp.pt": {"state_dict": {"module." + k: v for k, v in sd.items()}},
    }
    px = _pixels(1)
    outs = []
    for name, obj in forms.items():
        torch.save(obj, tmp_path / name)
        with torch.inference_mode():
            outs.append(load_checkpoint(tmp_path / name)(px.float() / 256.0))
    assert all(torch.equal(outs[0], o) for o in outs[1:])


def test_other_widths_are_read_from_the_tensors(tmp_path: Path) -> None:
    cfg = PicoSAMConfig(encoder=(16, 32, 48, 64), bottleneck=80, decoder=(64, 48, 32, 16), input_size=64)
    torch.manual_seed(0)
    model = SensorInput(PicoSAM3(cfg)).eval()
    save_checkpoint(model, tmp_path / "small.pt")
    loaded = read_checkpoint(tmp_path / "small.pt")
    assert loaded.config == cfg  # input size from the sidecar, widths from the tensors
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded.module(x))


def test_ours_load_in_the_authors_code(tmp_path: Path) -> None:
    """What save_checkpoint (and so distill) writes is a plain state_dict the authors' class loads strictly."""
    torch.manual_seed(0)
    model = SensorInput(PicoSAM3()).eval()
    path = save_checkpoint(model, tmp_path / "picosam3.pt", training={"epoch": 1})
    raw = torch.load(path, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in raw.values())
    PicoSAM3().load_state_dict(raw, strict=True)
    px = _pixels(1)
    with torch.inference_mode():
        assert torch.allclose(model(px.float() / 256.0), authors_forward(raw, authors_input(px)), atol=1e-4, rtol=1e-4)
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["layout"] == "picosam3" and side["training"] == {"epoch": 1}


def test_bundled_default_is_published_layout() -> None:
    raw = torch.load(DEFAULT_CHECKPOINT, weights_only=True)
    PicoSAM3().load_state_dict(raw, strict=True)
    assert read_checkpoint(DEFAULT_CHECKPOINT).layout.name == "picosam3"


def test_earlier_toolkit_layout_still_loads(tmp_path: Path) -> None:
    """imx500-sam 0.1 checkpoints ({"format", "config", "model"} with the look-alike's names) load as they were."""
    torch.manual_seed(0)
    old = LegacyPicoSAM3(LegacyConfig()).eval()
    torch.save(
        {"format": "imx500-sam/picosam3/v1", "config": {"input_size": 96}, "model": old.state_dict()}, tmp_path / "o.pt"
    )
    loaded = read_checkpoint(tmp_path / "o.pt")
    assert loaded.layout.name == "imx500-sam-v1" and loaded.layout.architecture == "PicoSAM3"
    x = torch.rand(1, 3, 96, 96)
    with torch.inference_mode():
        assert torch.equal(old(x), loaded.module(x))


def test_near_miss_names_the_closest_layout_and_the_key(tmp_path: Path) -> None:
    sd = authors_state_dict("picosam3")
    sd["refine.3.conv.weight"] = sd.pop("refine.3.weight")
    torch.save(sd, tmp_path / "renamed.pt")
    with pytest.raises(BadInputError) as err:
        load_checkpoint(tmp_path / "renamed.pt")
    msg = str(err.value)
    assert "closest layout is picosam3" in msg
    assert "missing refine.3.weight" in msg and "unexpected refine.3.conv.weight" in msg


def test_wrong_shape_names_the_layout(tmp_path: Path) -> None:
    sd = authors_state_dict("picosam2")
    sd["skip_conn1.bias"] = torch.zeros(7)
    torch.save(sd, tmp_path / "bad.pt")
    with pytest.raises(BadInputError, match="PicoSAM2 layout, but the tensors do not fit"):
        load_checkpoint(tmp_path / "bad.pt")


def test_structure_is_imx500_friendly() -> None:
    kinds = {type(m).__name__ for m in SensorInput(PicoSAM3()).modules()}
    assert {"Conv2d", "BatchNorm2d", "ReLU", "Upsample", "AdaptiveAvgPool2d", "Sigmoid"} <= kinds
    assert not kinds & {"MultiheadAttention", "LayerNorm", "Softmax", "Linear"}


def test_non_tensor_payload_rejected(tmp_path: Path) -> None:
    torch.save({"model": {"a": 1}}, tmp_path / "x.pt")
    with pytest.raises(BadInputError, match="no state_dict"):
        load_checkpoint(tmp_path / "x.pt")
