"""Gate benchmark: the gate's verdict and SRAM estimate against the real MCT + imxconv-pt on the corpus.

    .venv/bin/python -m benchmarks.gate_bench corpus [--only NAME ...] [--work DIR] [--regate]
        -> benchmarks/results/gate_corpus.json (gate verdict vs real outcome for every corpus model,
           estimate vs the converter's "Memory Usage"); about 1 min per model on 2 cores.
    .venv/bin/python -m benchmarks.gate_bench speed
        -> benchmarks/results/gate_speed.json (`imx500-sam check` wall time vs `imxconv-pt --memory-report`
           on the default model).

Real outcome: "unsupported" when MCT fails or imxconv-pt rejects or crashes on an operator,
"over_budget" when the converter's memory report says it does not fit, "pass" when it converts.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, write_result
from benchmarks.gate_corpus import CORPUS, CorpusModel
from imx500_sam.errors import first_line

VERDICT = {0: "pass", 2: "bad_input", 3: "unsupported", 4: "over_budget"}


def gate_verdict(model: CorpusModel) -> dict[str, Any]:
    """Run the gate (library API) on one corpus model."""
    from converter.gate import check_module

    report = check_module(model.build(), (model.input_size, model.input_size), name=model.name)
    m = report.memory
    return {
        "verdict": VERDICT[int(report.exit_code)],
        "findings": [f.message() for f in report.findings],
        "estimate_bytes": m.total_bytes if m else None,
        "estimate_weights_bytes": m.weights_bytes if m else None,
        "estimate_runtime_bytes": m.runtime_bytes if m else None,
        "seconds": round(report.seconds, 3),
    }


def real_outcome(model: CorpusModel, work: Path) -> dict[str, Any]:
    """MCT PTQ (2 random batches) -> MCTQ ONNX -> full imxconv-pt conversion; classify what happened."""
    from converter.gate.full import mctq_onnx
    from converter.imxconv import run_imxconv
    from imx500_sam.convert_output import MEMORY_REPORT_GLOB, MemoryReport
    from imx500_sam.errors import ImxSamError, OverBudgetError, ToolFailedError, UnsupportedOperatorError

    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    try:
        onnx_path = mctq_onnx(model.build(), (model.input_size, model.input_size), work)
    except Exception as exc:  # MCT raises anything
        first = first_line(str(exc), 300)
        cause = exc.__cause__
        detail = f"{type(cause).__name__}: {first_line(str(cause))}" if cause else first
        return {
            "outcome": "unsupported",
            "stage": "mct",
            "error": detail,
            "seconds": round(time.perf_counter() - t0, 1),
        }
    out["mct_seconds"] = round(time.perf_counter() - t0, 1)
    t1 = time.perf_counter()
    conv_dir = work / "imxconv"
    try:
        run_imxconv(onnx_path, conv_dir, work / "imxconv-pt.log")
        out.update(outcome="pass", stage="converted")
    except OverBudgetError as exc:
        out.update(outcome="over_budget", stage="imxconv-pt", error=str(exc)[:300])
    except (UnsupportedOperatorError, ToolFailedError) as exc:
        out.update(outcome="unsupported", stage="imxconv-pt", error=str(exc)[:300])
    except ImxSamError as exc:
        out.update(outcome="error", stage="imxconv-pt", error=str(exc)[:300])
    out["imxconv_seconds"] = round(time.perf_counter() - t1, 1)
    reports = sorted(conv_dir.glob(MEMORY_REPORT_GLOB))
    if reports:
        r = MemoryReport.from_json(reports[0])
        out.update(
            usage_bytes=r.usage_bytes,
            weights_bytes=r.weights_bytes,
            runtime_bytes=r.runtime_bytes,
            fit_in_chip=r.fit_in_chip,
        )
    return out


def run_corpus(only: list[str] | None, work_root: Path, regate: bool = False) -> Path:
    """Gate + real toolchain on the corpus; merges into an existing results file (so --only updates rows).

    ``regate``: re-run only the gate against the recorded real outcomes (after a change to the gate).
    """
    path = RESULTS / "gate_corpus.json"
    rows: dict[str, Any] = {}
    previous: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    rows = {r["name"]: r for r in previous.get("models", [])}
    if regate and previous:  # the real outcomes come from an earlier run: say which
        toolchain_run = previous.get("toolchain_run") or {"command": previous["command"], "date": previous["date"]}
    else:
        toolchain_run = {
            "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.gate_bench", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    for model in CORPUS:
        if only and model.name not in only:
            continue
        if regate and model.name not in rows:
            continue
        log = io.StringIO()
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            gate = gate_verdict(model)
            real = rows[model.name]["real"] if regate else real_outcome(model, work_root / model.name)
        row = {"name": model.name, "family": model.family, "input_size": model.input_size, "gate": gate, "real": real}
        row["agree"] = gate["verdict"] == real["outcome"]
        if real.get("usage_bytes") and gate["estimate_bytes"]:
            row["estimate_error"] = round(gate["estimate_bytes"] / real["usage_bytes"] - 1, 4)
        rows[model.name] = row
        print(
            f"{model.name:22s} gate={gate['verdict']:12s} real={real['outcome']:12s} err={row.get('estimate_error')}",
            flush=True,
        )
        _write(rows, toolchain_run)
    return _write(rows, toolchain_run)


def _write(rows: dict[str, Any], toolchain_run: dict[str, str]) -> Path:
    order = [m.name for m in CORPUS]
    models = [rows[n] for n in order if n in rows]
    errors = [abs(r["estimate_error"]) for r in models if "estimate_error" in r]
    memory = [abs(r["estimate_error"]) for r in models if "estimate_error" in r and r["family"] == "memory"]
    summary = {
        "models": len(models),
        "verdicts_agree": sum(r["agree"] for r in models),
        "memory_reports": len(errors),
        "estimate_abs_error_max": max(errors) if errors else None,
        "estimate_abs_error_mean": round(sum(errors) / len(errors), 4) if errors else None,
        "memory_family_models": len(memory),
        "memory_family_abs_error_max": max(memory) if memory else None,
        "goal": "gate verdict == real outcome on every model; |estimate error| <= 10% on the memory family "
        "(U-Net, 8M model, PicoSAM3 at several widths and input sizes)",
    }
    data = {"toolchain_run": toolchain_run, "summary": summary, "models": models}
    return write_result("gate_corpus", data)


def run_speed(repeats: int = 3) -> Path:
    """`imx500-sam check` (CLI, cold process) vs `imxconv-pt --memory-report` on the default model."""
    return write_result("gate_speed", measure_speed(repeats))


def measure_speed(repeats: int = 3) -> dict[str, Any]:
    """The timings of ``run_speed``, not written."""
    from converter.gate.full import mctq_onnx
    from converter.imxconv import find_imxconv
    from imx500_sam.model import DEFAULT_CHECKPOINT, load_checkpoint

    repo = Path(__file__).resolve().parents[1]  # the checkout's own CLI (a cold process, as a user runs it)
    check_s = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "imx500_sam", "check", str(DEFAULT_CHECKPOINT)]
        subprocess.run(cmd, check=True, capture_output=True, cwd=repo)
        check_s.append(time.perf_counter() - t0)
    from converter.gate import check_model

    check_model(None)  # warm: imports done, as inside `convert` or a long-lived process
    lib_s = []
    for _ in range(repeats):
        lib_s.append(check_model(None).seconds)
    with tempfile.TemporaryDirectory() as tmp:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            t0 = time.perf_counter()
            onnx_path = mctq_onnx(load_checkpoint(DEFAULT_CHECKPOINT), (96, 96), Path(tmp))
            mct_s = time.perf_counter() - t0
        conv_s = []
        for i in range(repeats):
            t0 = time.perf_counter()
            subprocess.run(
                [
                    str(find_imxconv()),
                    "-i",
                    str(onnx_path),
                    "-o",
                    f"{tmp}/m{i}",
                    "--overwrite-output",
                    "--report-size-unit",
                    "B",
                    "--memory-report",
                ],
                check=True,
                capture_output=True,
            )
            conv_s.append(time.perf_counter() - t0)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    check_med, conv_med, lib_med = med(check_s), med(conv_s), med(lib_s)
    return {
        "model": "bundled default PicoSAM3, 96x96",
        "check_cli_seconds": [round(x, 2) for x in check_s],
        "check_library_warm_seconds": [round(x, 3) for x in lib_s],
        "check_library_warm_median_s": round(lib_med, 3),
        "ratio_library_warm": round(lib_med / conv_med, 4),
        "imxconv_memory_report_seconds": [round(x, 2) for x in conv_s],
        "mct_quantize_export_seconds_not_counted": round(mct_s, 2),
        "check_median_s": round(check_med, 2),
        "imxconv_memory_report_median_s": round(conv_med, 2),
        "ratio_cli": round(check_med / conv_med, 3),
        "goal": "ratio <= 0.1. ratio_cli: a fresh `imx500-sam check` process (Python + torch start-up included) vs "
        "imxconv-pt --memory-report (which also needs an MCT run first, not counted); ratio_library_warm: "
        "converter.gate.check_model in a process that has torch loaded (as convert calls it)",
    }


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("corpus")
    c.add_argument("--only", nargs="*")
    c.add_argument("--work", type=Path, default=None)
    c.add_argument("--regate", action="store_true", help="re-run the gate only, against the recorded outcomes")
    s = sub.add_parser("speed")
    s.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    if args.cmd == "corpus":
        with tempfile.TemporaryDirectory(prefix="gate-corpus-") as tmp:
            print(run_corpus(args.only, args.work or Path(tmp), regate=args.regate))
    else:
        print(run_speed(args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
