"""The host INT8 network is derived from the MCTQ ONNX and computes what MCT's network computes.

Real MCT (bare ``mct.ptq`` + ``mct.exporter``, as the PicoSAM authors' pipeline does), real
mct_quantizers onnxruntime ops, real onnxruntime, real photo crops.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from converter.calibration import accuracy_photos, load_photos, prompt_crops, to_batch
from converter.mctq import derive_host_network, is_mctq
from imx500_sam.convert_output import ConvertOutputDir
from imx500_sam.errors import BadInputError, ExitCode


class PicoLike(nn.Module):
    """A small PicoSAM-shaped U-Net: depthwise + pointwise convs with BN/ReLU, a stride-2 down, an upsample,
    a skip add, an ECA-style gate (global pool, conv, sigmoid, mul) and a 1-channel logit head."""

    def __init__(self) -> None:
        super().__init__()

        def block(i: int, o: int, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(i, i, 3, stride, 1, groups=i, bias=False),
                nn.BatchNorm2d(i),
                nn.ReLU(),
                nn.Conv2d(i, o, 1, bias=False),
                nn.BatchNorm2d(o),
                nn.ReLU(),
            )

        self.enc = block(3, 16)
        self.down = block(16, 32, stride=2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec = block(32, 16)
        self.gate = nn.Conv2d(16, 16, 1)
        self.head = nn.Conv2d(16, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.enc(x)
        d = self.dec(self.up(self.down(e))) + e
        g = torch.sigmoid(self.gate(torch.mean(d, dim=(2, 3), keepdim=True)))
        return self.head(d * g)


def _bare_mct_mctq(path: Path, calib: np.ndarray) -> tuple[Path, nn.Module]:
    """Quantize PicoLike with bare MCT and export MCTQ, the way a user's own pipeline does."""
    from tests.support.convert_models import bare_mct_mctq

    torch.manual_seed(0)
    model = PicoLike().eval()
    for m in model.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    return bare_mct_mctq(model, path, calib)


@pytest.fixture(scope="module")
def bare_mctq(tmp_path_factory: pytest.TempPathFactory):
    calib = to_batch(prompt_crops(load_photos(None), 32, 96, seed=0))
    path, q = _bare_mct_mctq(tmp_path_factory.mktemp("bare") / "picolike_mctq.onnx", calib)
    return path, q


def _held_out(n: int) -> np.ndarray:
    return to_batch(prompt_crops(accuracy_photos(), n, 96, seed=7))


def test_derived_network_is_mct_quantizers_arithmetic(bare_mctq, tmp_path: Path) -> None:
    """No mct_quantizers op is left. Derived as convert does (weights rounded as mct_quantizers' kernels round
    them), the network equals mct_quantizers' own onnxruntime ops on the MCTQ file bit for bit, run with every
    optimisation off and in the toolkit's default session (QDQ fusions and the NCHWc layout off) alike."""
    from converter.accuracy import mctq_logits
    from imx500_sam.int8 import QdqNetwork

    mctq, _ = bare_mctq
    assert is_mctq(onnx.load(str(mctq)))
    info = derive_host_network(mctq, tmp_path / "host.onnx")
    host = onnx.load(str(info.path))
    assert not is_mctq(host)
    assert {o.domain for o in host.opset_import} == {""}
    assert info.replaced["WeightsSymmetricQuantizer"] == info.int8_weights > 0
    assert info.input_quant is not None and info.input_quant.scale == 1 / 256  # the sensor's uint8/256 grid

    x = _held_out(6)
    ref = mctq_logits(mctq, x)
    assert np.array_equal(QdqNetwork(info.path, exact=True)(x), ref)
    assert np.array_equal(QdqNetwork(info.path)(x), ref)


def test_torch_rounding_is_mct_torch_modules_weights(bare_mctq, tmp_path: Path) -> None:
    """``rounding="torch"`` gives MCT's quantized torch module's weights exactly; on crops of photos calibration
    never saw, >= 99.9% of mask pixels agree with the module (its float32 summation is its own)."""
    from onnx import numpy_helper

    from converter.accuracy import pixel_agreement, torch_logits
    from imx500_sam.int8 import QdqNetwork

    mctq, q = bare_mctq
    info = derive_host_network(mctq, tmp_path / "host.onnx", rounding="torch")
    host = onnx.load(str(info.path))
    inits = {t.name: numpy_helper.to_array(t) for t in host.graph.initializer}
    wrappers = dict(q.named_modules())
    checked = 0
    for node in onnx.load(str(mctq)).graph.node:
        if node.op_type == "WeightsSymmetricQuantizer":
            out = node.output[0]
            q8, scale = inits[f"{out}__int8"], inits[f"{out}__scale"]
            derived = q8.astype(np.float32) * scale.reshape(-1, *([1] * (q8.ndim - 1)))
            wrapper = wrappers[node.input[0].rsplit(".", 1)[0]]
            with torch.inference_mode():
                module_w = wrapper.weights_quantizers["weight"](wrapper.layer.weight).numpy()
            assert np.array_equal(derived, module_w), node.input[0]
            checked += 1
    assert checked == info.int8_weights > 0
    x = _held_out(32)
    agreement = pixel_agreement(QdqNetwork(info.path)(x), torch_logits(q, x), "MCT")
    assert agreement.pixels >= 0.999, agreement


def test_fused_kernels_are_not_mct(bare_mctq, tmp_path: Path) -> None:
    """onnxruntime's fused QLinear kernels requantize biases and outputs their own way: the default session
    keeps them off. (Documents the root cause; the fused path must differ, or the test is pointless.)"""
    from converter.accuracy import mctq_logits
    from imx500_sam.int8 import QdqNetwork

    mctq, _ = bare_mctq
    info = derive_host_network(mctq, tmp_path / "host.onnx")
    x = _held_out(4)
    ref = mctq_logits(mctq, x)
    fused = QdqNetwork(info.path, fused=True)(x)
    assert not np.array_equal(fused, ref)
    assert np.array_equal(QdqNetwork(info.path, exact=True)(x), ref)


def test_float_onnx_is_not_mctq(tmp_path: Path) -> None:
    path = tmp_path / "float.onnx"
    from imx500_sam.compat import legacy_onnx_export

    with legacy_onnx_export():
        torch.onnx.export(PicoLike().eval(), torch.zeros(1, 3, 96, 96), str(path))
    with pytest.raises(BadInputError, match="not an MCTQ export"):
        derive_host_network(path, tmp_path / "host.onnx")


def test_convert_takes_a_bare_mct_mctq_file(bare_mctq, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """convert on an MCTQ ONNX made by bare MCT: no second PTQ, straight to the gate and imxconv-pt;
    the report says so; the emulator runs the output."""
    from imx500_sam.cli import main
    from imx500_sam.runtime.emulator import EmulatedIMX500

    mctq, _ = bare_mctq
    out = tmp_path / "picolike_imx500"
    rc = main(["convert", str(mctq), "-o", str(out), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    report = json.loads(captured.out)
    assert report["quantization"]["already_quantized"] is True
    assert "ptq" not in report["timings_s"]
    assert report["check"]["exit_code"] == 0
    assert report["memory"]["fit_in_chip"] is True
    assert report["accuracy"]["float_vs_int8_miou"] is None
    em = report["accuracy"]["emulator_agreement"]
    assert "mct_quantizers" in em["reference"] and em["pixels"] >= 0.999
    assert "no second PTQ" in (out / "report.md").read_text()
    conv = ConvertOutputDir.load(out)
    assert conv.mctq_onnx.read_bytes() == mctq.read_bytes()  # the file imxconv-pt compiled, unchanged

    photo = tmp_path / "photo.png"
    import cv2

    cv2.imwrite(str(photo), accuracy_photos()[0].rgb[:, :, ::-1])
    emu = EmulatedIMX500(out, photo)
    frame = emu.capture()
    emu.close()
    assert frame is not None and frame.outputs[0].shape == (1, 96, 96)


def test_convert_rejects_a_float_onnx(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from imx500_sam.cli import main
    from imx500_sam.compat import legacy_onnx_export

    path = tmp_path / "float.onnx"
    with legacy_onnx_export():
        torch.onnx.export(PicoLike().eval(), torch.zeros(1, 3, 96, 96), str(path))
    out = tmp_path / "o"
    rc = main(["convert", str(path), "-o", str(out), "-q"])
    err = capsys.readouterr().err
    assert rc == ExitCode.BAD_INPUT and "float ONNX" in err
    assert not out.exists()


def test_default_convert_reports_agreement_with_mct(converted_default: ConvertOutputDir) -> None:
    """report.json: float vs MCT's INT8 network and the host network's agreement with it, on the evaluate photos;
    its ``data`` section names the calibration and accuracy images (name, source, sha256 of the RGB pixels)."""
    from imx500_sam.data.roles import Role, records_from_json, registered

    acc = converted_default.report["accuracy"]
    # float and INT8 masks against each other on 32 crops: 0.88 for the default of issue #19
    # (benchmarks/results/convert_default.json), while INT8 against ground truth stays within a point of float
    # (benchmarks/results/learning_curve_run9.json); the earlier default's was 0.95
    assert 0.85 <= acc["float_vs_int8_miou"] <= 1.0
    em = acc["emulator_agreement"]
    assert em["reference"] == "MCT's quantized torch module"
    assert em["crops"] == acc["crops"] >= 32
    # 99.81% on the evaluate photos with the default options (benchmarks/results/convert_default.json); the
    # earlier >= 99.9% was measured on two photos that are training backgrounds of the default (old roles)
    assert em["pixels"] >= 0.995
    data = converted_default.report["data"]
    calib, held = records_from_json(data["calibration"]), records_from_json(data["accuracy"])
    assert [r.name for r in calib] == [r.name for r in registered(Role.CALIBRATE)]
    assert [r.name for r in held] == [r.name for r in registered(Role.EVALUATE)]
    assert not {r.sha256 for r in calib} & {r.sha256 for r in held}


def test_check_takes_a_bare_mct_mctq_file(bare_mctq, capsys: pytest.CaptureFixture[str]) -> None:
    """imx500-sam check on an MCTQ ONNX: operators and SRAM checked from the quantized graph, exit 0."""
    from imx500_sam.cli import main

    mctq, _ = bare_mctq
    rc = main(["check", str(mctq), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["exit_code"] == 0
    assert report["input_size"] == [96, 96] and report["op_count"] > 0
