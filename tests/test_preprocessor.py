"""The IMX500 input preprocessor for a normalised (signed) network input: the settings, their integer arithmetic,
and their place in the .rpk, decoded by picamera2's own code."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest

from firmware_packaging.rpk import read_rpk, with_network_info
from imx500_sam.cli import main
from imx500_sam.errors import BadInputError, ExitCode
from imx500_sam.preprocessor import IMAGENET_MEAN, IMAGENET_STD, InputPreprocessor, network_input, normalised_input
from tests.conftest import rpk_fixture_dir
from tests.support.picamera2_host import picamera2_read_rpk

MEAN, STD = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
RPK = "imx500_network_deeplabv3plus.rpk"


def _exact(p: np.ndarray, step: float) -> np.ndarray:
    return (p[..., None] / 255.0 - MEAN) / STD / step


@pytest.mark.parametrize("step", [2**-4, 2**-5, 2**-6])  # signed power-of-two thresholds 8, 4, 2
def test_settings_give_the_normalised_integers_within_one_step(step: float) -> None:
    pre, err = InputPreprocessor.for_normalised_input(step, IMAGENET_MEAN, IMAGENET_STD)
    assert err <= 0.5
    p = np.arange(256, dtype=np.uint8)
    rgb = np.stack([p, p, p], axis=-1)[None]  # 1 x 256 x 3
    t = pre.apply(rgb)[:, 0, :].T  # 256 x 3
    ideal = np.clip(np.round(_exact(p.astype(np.float64), step)), -128, 127)
    assert np.abs(t - ideal).max() <= 1
    assert np.mean(t == ideal) >= 0.7
    # convert's report (accuracy.preprocessor) measures the same: the exact input and the integers that differ
    exact = normalised_input(rgb)
    assert np.allclose(exact[:, 0, :].T / step, _exact(p.astype(np.float64), step), atol=1e-4)
    assert pre.deviation(rgb, exact, step) == {
        "input_integers_differing": float(np.mean(t != ideal)),
        "max_input_difference_steps": float(np.abs(t - ideal).max()),
    }
    # what the emulator and eval --int8 feed the network: the integers times the step, exactly
    x = network_input(pre, rgb, step)
    assert x.dtype == np.float32 and np.array_equal(x / step, t.T[:, None, :].astype(np.float32))


def test_unrepresentable_normalisation_is_refused_with_the_fix() -> None:
    with pytest.raises(BadInputError) as exc:  # gains of about 70: the 12-bit register holds under 2
        InputPreprocessor.for_normalised_input(2**-11, IMAGENET_MEAN, IMAGENET_STD, where="quantized.onnx")
    assert exc.value.exit_code == ExitCode.BAD_INPUT
    assert "quantized.onnx" in exc.value.message and ".pt" in exc.value.hint and "float .onnx" in exc.value.hint


def test_identity_settings_are_what_the_zoo_rpks_hold() -> None:
    info = read_rpk(rpk_fixture_dir() / RPK).network_info["networks"][0]
    signed = InputPreprocessor.identity(signed=True).network_info()
    assert all(int(info[k], 0) == int(v, 0) for k, v in signed.items())
    assert InputPreprocessor.identity().apply(np.full((2, 2, 3), 200, np.uint8)).max() == 200


def test_picamera2_decodes_the_written_settings_to_the_networks_values(tmp_path: Path) -> None:
    """Done-when of the issue: the package's input settings, read by picamera2's own code, are the network's."""
    pre, _ = InputPreprocessor.for_normalised_input(2**-5, IMAGENET_MEAN, IMAGENET_STD)
    rpk = tmp_path / "network.rpk"
    shutil.copyfile(rpk_fixture_dir() / RPK, rpk)
    sets = [f"--set={k}={v}" for k, v in pre.network_info().items()]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["network-info", str(rpk), *sets]) == 0
    cfg = picamera2_read_rpk(rpk)["input_tensor"]
    assert cfg["div_val"] == list(pre.div_val) and cfg["norm_val"] == list(pre.norm_val)
    assert cfg["dtype"] == "signed" and cfg["norm_shift"] == [4, 4, 4] and cfg["div_shift"] == 6
    # gain and offset as picamera2 reads them: t = p * div_val / 1024 + norm_val / 16 = the normalised integer
    for c in range(3):
        g, o = cfg["div_val"][c] / 1024, cfg["norm_val"][c] / 16
        p = np.arange(256.0)
        assert np.abs(p * g + o - _exact(p, 2**-5)[:, c]).max() <= 0.5
    # the firmware and every other entry are untouched
    before, after = read_rpk(rpk_fixture_dir() / RPK), read_rpk(rpk)
    assert after.firmware == before.firmware
    assert [e.raw for e in after.entries if e.name != "network_info.txt"] == [
        e.raw for e in before.entries if e.name != "network_info.txt"
    ]
    with pytest.raises(BadInputError):
        with_network_info(before, {"noSuchKey": "0x0000"})


def test_pi_commands_set_the_preprocessor_after_packaging() -> None:
    """Off the Pi, convert's report lists the packaging commands: the last one writes the settings."""
    import shlex

    from firmware_packaging.packager import pi_commands

    pre, _ = InputPreprocessor.for_normalised_input(2**-5, IMAGENET_MEAN, IMAGENET_STD)
    lines = pi_commands("packerOut.zip", ".", "RGB", network_info=pre.network_info())
    assert lines[-1].startswith("imx500-sam network-info network.rpk")
    args = shlex.split(lines[-1])[2:]
    assert args[0] == "network.rpk"
    assert {a.split("=", 1)[0] for a in args[2::2]} == set(pre.network_info())
    assert not any("network-info" in line for line in pi_commands("packerOut.zip", ".", "RGB"))


def test_package_reads_the_settings_from_the_report_beside_the_zip(tmp_path: Path) -> None:
    """``package`` (and ``eval``/``run`` with --rpk) read report.json beside the file: a normalised input's settings;
    none for gain 1 / offset 0, for no preprocessor, and when there is no report."""
    import json

    from imx500_sam.convert_output import network_info_beside

    zip_path = tmp_path / "packerOut.zip"
    assert network_info_beside(zip_path) is None  # no report.json
    pre, _ = InputPreprocessor.for_normalised_input(2**-5, IMAGENET_MEAN, IMAGENET_STD)
    for preprocessor, expected in (
        (pre.to_dict(), pre.network_info()),
        (InputPreprocessor.identity(True).to_dict(), None),
        (None, None),
    ):
        (tmp_path / "report.json").write_text(json.dumps({"input": {"preprocessor": preprocessor}}))
        assert network_info_beside(zip_path) == expected
