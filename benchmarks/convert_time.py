"""Wall time of each `imx500-sam convert` stage, and of the bare MCT and imxconv-pt calls, in one run.

The bare run does only what a hand-written script must do: PTQ, MCTQ export, imxconv-pt, on the
same model and the same calibration crops. The toolkit's overhead is its total minus the bare total.

    .venv/bin/python -m benchmarks.convert_time [--calib-count 96] [--repeats 1]
    .venv/bin/python -m benchmarks.convert_time --convert-only

``--convert-only``: one toolkit convert of the bundled default with default options, no bare run; writes convert's
own report (accuracy on the evaluate photos, the data roles' image records, quantization, memory, stage timings) to
``convert_default.json``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import write_result


def bare_run(work: Path, calib_count: int) -> dict[str, float]:
    """PTQ + MCTQ export + imxconv-pt, called directly (the same calls the toolkit makes)."""
    t0 = time.perf_counter()
    from converter.calibration import load_photos, prompt_crops, representative_dataset, to_batch
    from converter.imxconv import find_imxconv
    from converter.quantize import export_mctq
    from imx500_sam.compat import import_mct
    from imx500_sam.model import DEFAULT_CHECKPOINT, load_checkpoint

    mct = import_mct()

    model = load_checkpoint(DEFAULT_CHECKPOINT)
    data = representative_dataset(to_batch(prompt_crops(load_photos(None), calib_count, 96, seed=0)))
    t_setup = time.perf_counter() - t0

    t = time.perf_counter()
    tpc = mct.get_target_platform_capabilities("pytorch", "imx500", target_platform_version=None)
    q, _ = mct.ptq.pytorch_post_training_quantization(
        in_module=model, representative_data_gen=data, target_platform_capabilities=tpc
    )
    t_ptq = time.perf_counter() - t

    t = time.perf_counter()
    onnx_path = work / "bare_mctq.onnx"
    export_mctq(q, onnx_path, data)  # MCT's exporter, as the toolkit calls it
    t_export = time.perf_counter() - t

    t = time.perf_counter()
    exe = find_imxconv()
    subprocess.run(
        [str(exe), "-i", str(onnx_path), "-o", str(work / "bare_out"), "--overwrite-output", "--report-size-unit", "B"],
        check=True,
        capture_output=True,
    )
    t_conv = time.perf_counter() - t
    return {
        "setup_untimed": t_setup,
        "ptq": t_ptq,
        "export_mctq": t_export,
        "imxconv_pt": t_conv,
        "total": t_ptq + t_export + t_conv,
    }


def toolkit_convert(work: Path, calib_count: int) -> tuple[dict[str, Any], float]:
    """The whole toolkit pipeline (run_convert) on the bundled default: its report.json and the outer wall time."""
    from converter.pipeline import ConvertOptions, run_convert

    t = time.perf_counter()
    result = run_convert(ConvertOptions(out=work / "toolkit_out", calib_count=calib_count, quiet=True))
    return result.report, time.perf_counter() - t


def toolkit_run(work: Path, calib_count: int) -> dict[str, float]:
    """The toolkit pipeline's own stage timings plus the outer wall time."""
    report, wall = toolkit_convert(work, calib_count)
    return {**{k: float(v) for k, v in report["timings_s"].items()}, "wall": wall}


def convert_report(calib_count: int) -> dict[str, Any]:
    """convert's own figures for the bundled default: accuracy, data roles, quantization, memory, timings."""
    with tempfile.TemporaryDirectory() as tmp:
        report, _ = toolkit_convert(Path(tmp), calib_count)
    return {
        "what": "convert's own accuracy figures of the bundled default with the data roles: calibration on the "
        "registry's calibrate photos, float vs MCT INT8 and host network vs MCT on prompt crops of the evaluate photos",
        **{k: report[k] for k in ("accuracy", "data", "quantization", "memory", "timings_s")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calib-count", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--convert-only", action="store_true", help="one toolkit convert: convert_default.json")
    args = ap.parse_args()
    if args.convert_only:
        print(f"wrote {write_result('convert_default', convert_report(args.calib_count))}")
        return
    runs = []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            bare = bare_run(work, args.calib_count)
            tool = toolkit_run(work, args.calib_count)
        overhead = tool["wall"] - bare["total"]
        # Work the toolkit adds on top of the bare calls (its tool stages vary with machine load like the bare ones).
        own = sum(tool[k] for k in ("load", "check", "calibration", "accuracy", "package") if k in tool)
        own += tool["export"] - bare["export_mctq"]
        runs.append(
            {
                "bare": bare,
                "toolkit": tool,
                "overhead_s": overhead,
                "overhead_ratio": overhead / bare["total"],
                "own_stages_s": own,
                "own_stages_ratio": own / bare["total"],
            }
        )
        print(f"run {i}: bare {bare['total']:.1f} s, toolkit {tool['wall']:.1f} s, overhead {overhead:+.1f} s")
    ratios = [r["overhead_ratio"] for r in runs]
    path = write_result(
        "convert_time",
        {
            "model": "bundled default PicoSAM3 (1.37M params, 96x96)",
            "calib_count": args.calib_count,
            "goal": "toolkit wall time at most 10% over the bare MCT + imxconv-pt calls",
            "runs": runs,
            "overhead_ratio_median": statistics.median(ratios),
            "own_stages_ratio_median": statistics.median(r["own_stages_ratio"] for r in runs),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
