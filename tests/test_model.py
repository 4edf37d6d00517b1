"""PicoSAM3 architecture and checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from imx500_sam.errors import BadInputError
from imx500_sam.model import DEFAULT_CHECKPOINT, PicoSAM3, PicoSAM3Config, count_parameters, load_checkpoint
from imx500_sam.model.checkpoint import infer_config, save_checkpoint


def test_parameter_count_within_2_percent_of_paper() -> None:
    n = count_parameters(PicoSAM3())
    assert abs(n - 1.37e6) / 1.37e6 <= 0.02, n


def test_shapes_and_structure() -> None:
    model = PicoSAM3().eval()
    with torch.inference_mode():
        y = model(torch.rand(2, 3, 96, 96))
    assert y.shape == (2, 1, 96, 96)
    kinds = {type(m).__name__ for m in model.modules()}
    # all convolutional, no attention / layer norm / softmax: operators the IMX500 runs
    assert {"Conv2d", "BatchNorm2d", "ReLU", "Upsample", "AdaptiveAvgPool2d", "Sigmoid"} <= kinds
    assert not kinds & {"MultiheadAttention", "LayerNorm", "Softmax", "Linear"}
    dilations = [m.dilation for m in model.bottleneck.modules() if isinstance(m, torch.nn.Conv2d)]
    assert (2, 2) in dilations


def test_other_widths_round_trip(tmp_path: Path) -> None:
    cfg = PicoSAM3Config(encoder=(16, 32, 48), bottleneck=64, decoder=(48, 32, 16), input_size=64)
    torch.manual_seed(0)
    model = PicoSAM3(cfg).eval()
    save_checkpoint(model, tmp_path / "small.pt")
    loaded = load_checkpoint(tmp_path / "small.pt")
    assert loaded.config == cfg
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))


def test_bare_state_dict_and_wrapped_forms(tmp_path: Path) -> None:
    sd = PicoSAM3().state_dict()
    torch.save(sd, tmp_path / "bare.pt")
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}}, tmp_path / "ddp.pt")
    for name in ("bare.pt", "ddp.pt"):
        assert infer_config(load_checkpoint(tmp_path / name).state_dict()) == PicoSAM3Config()


def test_default_checkpoint_loads() -> None:
    assert DEFAULT_CHECKPOINT.is_file()
    assert count_parameters(load_checkpoint(DEFAULT_CHECKPOINT)) == count_parameters(PicoSAM3())


def test_non_tensor_payload_rejected(tmp_path: Path) -> None:
    torch.save({"model": {"a": 1}}, tmp_path / "x.pt")
    with pytest.raises(BadInputError, match="no state_dict"):
        load_checkpoint(tmp_path / "x.pt")
