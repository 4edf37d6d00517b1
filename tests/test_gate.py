"""The operator and SRAM gate (converter.gate, `imx500-sam check`).

Fast tests run the gate on the corpus (benchmarks/gate_corpus.py) and compare with the real MCT +
imxconv-pt outcomes recorded in benchmarks/results/gate_corpus.json (made by
`python -m benchmarks.gate_bench corpus`); the slow ones run the real toolchain on a few models.
"""

from __future__ import annotations

import inspect
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from torch import nn

from benchmarks.gate_corpus import CORPUS, CumsumNet, corpus_model
from converter.gate import check_model, check_module, check_onnx
from converter.gate.formats import junit_xml, render_github, render_json, render_text
from converter.gate.load import parse_input_size
from converter.gate.table import load_table
from imx500_sam.cli import main
from imx500_sam.errors import BadInputError, ExitCode, OverBudgetError, UnsupportedOperatorError

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "gate_corpus.json"
VERDICT = {ExitCode.OK: "pass", ExitCode.UNSUPPORTED_OPERATOR: "unsupported", ExitCode.OVER_BUDGET: "over_budget"}


def _recorded() -> dict[str, dict]:
    data = json.loads(RESULTS.read_text())
    assert "gate_bench" in data["command"]
    return {row["name"]: row for row in data["models"]}


def _check(name: str):
    m = corpus_model(name)
    return check_module(m.build(), (m.input_size, m.input_size), name=name)


def _line_of(cls: type, needle: str) -> int:
    lines, start = inspect.getsourcelines(cls)
    return start + next(i for i, ln in enumerate(lines) if needle in ln)


# --------------------------------------------------------------------------- the table


def test_table_is_valid_and_covers_every_family_in_the_notes():
    table = load_table()
    for key in [
        "nn.MultiheadAttention",
        "torch.topk",
        "torch.sort",
        "torch.argmax",
        "nn.LSTM",
        "F.grid_sample",
        "torch.cumsum",
        "torch.erf",
        "nn.InstanceNorm2d",
    ]:
        entry = table.torch(key)
        assert entry is not None and entry.status == "unsupported", key
        assert entry.replacement and entry.source
    assert table.torch("torch.pow").status == "conditional"
    for key in [
        "nn.Conv2d",
        "nn.ConvTranspose2d",
        "nn.BatchNorm2d",
        "nn.ReLU",
        "operator.add",
        "torch.cat",
        "nn.Upsample",
        "nn.AdaptiveAvgPool2d",
        "torch.matmul",
        "nn.GELU",
        "nn.LayerNorm",
    ]:
        assert table.torch(key).status in ("supported", "conditional"), key
    assert table.onnx("CumSum").status == "unsupported"
    assert table.onnx("Conv").status == "supported"


# --------------------------------------------------------------------------- verdict == real toolchain


def test_recorded_table_covers_the_whole_corpus():
    rows = _recorded()
    assert sorted(rows) == sorted(m.name for m in CORPUS)
    for row in rows.values():
        assert row["real"]["outcome"] in ("pass", "unsupported", "over_budget"), row


@pytest.mark.parametrize("name", [m.name for m in CORPUS])
def test_gate_verdict_equals_real_toolchain(name):
    real = _recorded()[name]["real"]["outcome"]
    report = _check(name)
    assert VERDICT[report.exit_code] == real, [f.message() for f in report.findings]


def test_memory_boundary_is_where_the_converter_puts_it():
    assert _check("unet_224").exit_code == ExitCode.OK
    assert _check("unet_256").exit_code == ExitCode.OVER_BUDGET
    assert _check("wide_8m_96").exit_code == ExitCode.OVER_BUDGET


def test_estimate_within_10_percent_of_converter_memory_usage():
    # the memory family: the U-Net at two sizes, the 8M model, PicoSAM3 at several widths and sizes
    rows = [r for r in _recorded().values() if r["real"].get("usage_bytes") and r["family"] == "memory"]
    assert len(rows) >= 6
    for row in rows:
        est = _check(row["name"]).memory.total_bytes
        assert abs(est / row["real"]["usage_bytes"] - 1) <= 0.10, (row["name"], est, row["real"]["usage_bytes"])


def test_default_model_estimate_matches_measured_memory_usage():
    # measured with imxconv-pt 3.19.2 (shared/notes, issue #3): Memory Usage 3843488 B at 96x96
    report = check_model(None)
    assert report.exit_code == ExitCode.OK
    assert abs(report.memory.total_bytes / 3843488 - 1) <= 0.02
    assert report.memory.input_persistence_bytes == 31744


# --------------------------------------------------------------------------- findings point at the code


@pytest.mark.parametrize(
    ("name", "op", "module_path", "needle"),
    [
        ("cumsum", "torch.cumsum", "", "torch.cumsum("),
        ("attention", "nn.MultiheadAttention", "attn", "self.attn(t, t, t)"),
        ("lstm", "nn.LSTM", "lstm", "self.lstm(seq)"),
        ("instance_norm", "nn.InstanceNorm2d", "norm", "self.norm(self.conv(x))"),
        ("grid_sample", "F.grid_sample", "", "F.grid_sample("),
        ("pow_two_activations", "torch.pow", "", "torch.pow(base, expo)"),
    ],
)
def test_finding_names_op_module_and_source_line(name, op, module_path, needle):
    report = _check(name)
    finding = next(f for f in report.findings if f.op == op)
    assert finding.module_path == module_path
    cls = type(corpus_model(name).build())
    assert finding.source is not None and finding.source.file.endswith("benchmarks/gate_corpus.py")
    assert finding.source.line == _line_of(cls, needle)
    assert finding.replacement
    with pytest.raises(UnsupportedOperatorError) as exc:
        report.raise_for_verdict()
    assert f"gate_corpus.py:{finding.source.line}" in str(exc.value)
    assert finding.replacement in str(exc.value)


def test_unknown_op_is_reported_never_passed():
    class Flip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            return torch.flip(self.conv(x), dims=[3])

    report = check_module(Flip(), (32, 32))
    assert report.exit_code == ExitCode.UNSUPPORTED_OPERATOR
    (finding,) = report.findings
    assert finding.status == "unknown" and finding.op == "torch.flip"


def test_untraceable_model_is_an_operator_failure_with_its_line():
    class Branchy(nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: torch.fx (and MCT) cannot trace it
                return x
            return -x

    report = check_module(Branchy(), (32, 32))
    assert report.exit_code == ExitCode.UNSUPPORTED_OPERATOR
    assert report.findings[0].status == "untraceable"
    assert report.findings[0].source.line == _line_of(Branchy, "if x.sum() > 0")


def test_conditional_ops_pass_when_the_condition_holds():
    class Fine(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.up = nn.Upsample(scale_factor=2, mode="bicubic")

        def forward(self, x):
            y = torch.pow(self.conv(x), 2)
            return self.up(y)

    report = check_module(Fine(), (32, 32))
    assert [f.op for f in report.findings] == ["nn.Upsample"]  # pow with a constant exponent is fine
    assert "bicubic" in report.findings[0].reason


# --------------------------------------------------------------------------- input limits


def test_input_limits_are_enforced():
    report = check_module(CumsumNet(), (16, 16))
    assert report.exit_code == ExitCode.BAD_INPUT
    assert "outside 32..640" in report.input_errors[0].reason
    with pytest.raises(BadInputError):
        report.raise_for_verdict()
    assert check_module(CumsumNet(), (32, 1000)).exit_code == ExitCode.BAD_INPUT


def test_model_that_does_not_take_rgb_is_bad_input():
    with pytest.raises(BadInputError, match="does not run"):
        check_module(nn.Conv2d(1, 4, 3), (32, 32))


@pytest.mark.parametrize(("text", "size"), [("96", (96, 96)), ("128,96", (128, 96)), ("64x80", (64, 80))])
def test_parse_input_size(text, size):
    assert parse_input_size(text) == size


@pytest.mark.parametrize("text", ["", "a", "0", "1,2,3", "-5"])
def test_parse_input_size_rejects(text):
    if text == "":
        assert parse_input_size(text) is None
    else:
        with pytest.raises(BadInputError):
            parse_input_size(text)


# --------------------------------------------------------------------------- ONNX front end


def _export(model: nn.Module, size: int, path: Path, channels_last: bool = False) -> Path:
    from imx500_sam.compat import legacy_onnx_export

    x = torch.zeros(1, 3, size, size)
    if channels_last:

        class Nhwc(nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, x):
                return self.inner(x.permute(0, 3, 1, 2))

        model, x = Nhwc(model), x.permute(0, 2, 3, 1)
    with legacy_onnx_export():
        torch.onnx.export(model.eval(), (x,), str(path), opset_version=17)
    return path


def test_onnx_verdicts_and_estimate(tmp_path):
    ok = check_onnx(_export(corpus_model("supported_basic").build(), 64, tmp_path / "ok.onnx"))
    assert ok.exit_code == ExitCode.OK, [f.message() for f in ok.findings]
    bad = check_onnx(_export(CumsumNet(), 32, tmp_path / "cumsum.onnx"))
    assert bad.exit_code == ExitCode.UNSUPPORTED_OPERATOR
    assert [f.op for f in bad.findings] == ["onnx:CumSum"]
    from imx500_sam.model import DEFAULT_CHECKPOINT, load_checkpoint

    pico = check_onnx(_export(load_checkpoint(DEFAULT_CHECKPOINT), 96, tmp_path / "pico.onnx"))
    module = check_model(None)
    assert pico.exit_code == ExitCode.OK
    assert abs(pico.memory.total_bytes / module.memory.total_bytes - 1) < 0.02


def test_onnx_nhwc_input_is_bad_input(tmp_path):
    report = check_onnx(_export(CumsumNet(), 32, tmp_path / "nhwc.onnx", channels_last=True))
    assert report.exit_code == ExitCode.BAD_INPUT
    assert "NHWC" in report.input_errors[0].reason


# --------------------------------------------------------------------------- formats and CLI


def test_formats():
    report = _check("cumsum")
    line = _line_of(CumsumNet, "torch.cumsum(")
    gh = render_github(report)
    assert f"::error file=benchmarks/gate_corpus.py,line={line},title=IMX500 gate::torch.cumsum" in gh
    data = json.loads(render_json(report))
    assert data["verdict"] == "unsupported_operator" and data["exit_code"] == 3
    assert data["findings"][0]["source"].endswith(f"gate_corpus.py:{line}")
    suite = ET.fromstring(junit_xml(report)).find("testsuite")
    assert suite.get("failures") == "1"
    failure = suite.find("testcase[@name='operators']/failure")
    assert "torch.cumsum" in failure.get("message")
    assert "FAIL" in render_text(report)
    over = _check("unet_256")
    assert "::error" in render_github(over) and "needs about" in render_github(over)
    with pytest.raises(OverBudgetError):
        over.raise_for_verdict()


def test_cli_exit_codes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["check"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["check", "--input-size", "256"]) == 4
    assert main(["check", "py:benchmarks.gate_corpus:CumsumNet", "--format", "github"]) == 3
    assert "::error file=benchmarks/gate_corpus.py" in capsys.readouterr().out
    junit = tmp_path / "gate.xml"
    assert main(["check", "py:benchmarks.gate_corpus:CumsumNet", "-f", "junit", "--junit-path", str(junit)]) == 3
    assert ET.parse(junit).getroot().find("testsuite").get("failures") == "1"
    assert main(["check", str(tmp_path / "missing.pt")]) == 2
    assert main(["check", "--input-size", "8"]) == 2
    assert main(["check", "--format", "yaml"]) == 2


# --------------------------------------------------------------------------- the real toolchain on a few


@pytest.mark.slow
def test_full_reports_the_converters_exact_figure(tmp_path):
    """--full on a checkpoint: MCT + `imxconv-pt --memory-report`, the exact figure beside the estimate."""
    from imx500_sam.model import PicoSAM3, PicoSAMConfig, save_checkpoint

    torch.manual_seed(0)
    ckpt = tmp_path / "picosam3_half.pt"
    save_checkpoint(PicoSAM3(PicoSAMConfig((24, 48, 80, 128), 160, (96, 64, 40, 16))), ckpt)
    report = check_model(ckpt, (96, 96), full=True, work_dir=tmp_path / "work")
    assert report.converter is not None and report.converter.fit_in_chip
    assert report.exit_code == ExitCode.OK
    written = json.loads(report.converter.report_path.read_text())["Memory Report"]
    assert written["Memory Usage"] == f"{report.converter.usage_bytes}B"
    assert abs(report.memory.total_bytes / report.converter.usage_bytes - 1) <= 0.10
    text = render_text(report)
    assert "imxconv-pt --memory-report" in text and f"{report.converter.usage_bytes:,} B" in text
    # the MCTQ ONNX it quantized: same operators (MCT's quantizer nodes pass) and the same estimate
    mctq = check_onnx(tmp_path / "work" / "model_mctq.onnx")
    assert mctq.exit_code == ExitCode.OK, [f.message() for f in mctq.findings]
    assert mctq.memory.total_bytes == report.memory.total_bytes


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cumsum", "supported_extra"])
def test_real_toolchain_agrees_with_gate(name, tmp_path):
    from benchmarks.gate_bench import gate_verdict, real_outcome

    model = corpus_model(name)
    assert gate_verdict(model)["verdict"] == real_outcome(model, tmp_path)["outcome"]
