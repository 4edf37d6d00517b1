"""How fast ``distill`` can train PicoSAM3 on this CPU: crops per second of a training step, by setting.

A training step here is what ``imx500_sam.train.distill`` does per batch: forward, the distillation loss
(``imx500_sam.train.losses.distill_loss``), backward, gradient clipping and an AdamW step, on the
published PicoSAM3 with its sensor input wrapper. Settings measured one at a time against a baseline
(float32, NCHW, batch 32, all threads): crop size (96 / 64, the ``--low-res`` epochs), batch size,
threads, channels_last, bf16 autocast (the CPU's AVX512-BF16 where it has it) and ``torch.compile``.
Separately, ``make_batch`` on the cut-and-paste sampler (the data side of a step, real cut-outs on real
photos) in crops per second, so that the two can be compared.

    .venv/bin/python -m benchmarks.distill_throughput [--steps 12] [--no-compile]

Writes benchmarks/results/distill_throughput.json.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._common import write_result


def _step_rate(
    size: int,
    batch: int,
    steps: int,
    threads: int,
    channels_last: bool = False,
    bf16: bool = False,
    compile_: bool = False,
) -> dict[str, Any]:
    from imx500_sam.model import PicoSAM3
    from imx500_sam.model.sensor_input import SensorInput
    from imx500_sam.train.losses import distill_loss

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = SensorInput(PicoSAM3()).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    net = torch.compile(model) if compile_ else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, 3, size, size, generator=g).contiguous(memory_format=fmt)
    teacher = torch.rand(batch, size, size, generator=g)
    gt = (torch.rand(batch, size, size, generator=g) > 0.5).float()
    conf, has = torch.ones(batch), torch.ones(batch)

    def step() -> None:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            logits = net(x)
        loss, _ = distill_loss(logits.float(), teacher, conf, gt, has)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()

    t0 = time.perf_counter()
    step()  # warm-up (compiles under torch.compile)
    step()
    warm = time.perf_counter() - t0
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        step()
    wall = time.perf_counter() - t0
    return {
        "size": size,
        "batch": batch,
        "threads": threads,
        "channels_last": channels_last,
        "bf16_autocast": bf16,
        "torch_compile": compile_,
        "steps": steps,
        "crops_per_s": round(steps * batch / wall, 1),
        "cpu_s_per_crop": round((time.process_time() - c0) / (steps * batch), 4),
        "warmup_s": round(warm, 1),
    }


def _data_rate(batches: int, batch: int) -> dict[str, Any]:
    from imx500_sam.data.sources import fetch_cutouts
    from imx500_sam.train.samples import PasteSampler, make_batch
    from imx500_sam.train.training_data import training_default_photos

    cutouts = [p for p in fetch_cutouts() if "cartoon" not in p.name]
    ps = PasteSampler(cutouts, training_default_photos())
    rng = np.random.default_rng(0)
    make_batch([(ps, 1.0)], batch, rng)
    t0 = time.perf_counter()
    for _ in range(batches):
        make_batch([(ps, 1.0)], batch, rng)
    wall = time.perf_counter() - t0
    return {
        "sampler": f"cut-and-paste: {len(ps.cutouts)} cut-outs on {len(ps.backgrounds)} photos",
        "batch": batch,
        "crops_per_s": round(batches * batch / wall, 1),
    }


def main() -> None:
    """Measure and write benchmarks/results/distill_throughput.json."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=12, help="timed training steps per setting")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (its warm-up takes minutes)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    t = args.threads
    base: dict[str, Any] = {"size": 96, "batch": 32, "threads": t}
    settings: list[tuple[str, dict[str, Any]]] = [
        ("baseline (float32, NCHW, 96x96, batch 32)", base),
        ("64x64 crops (--low-res 64)", {**base, "size": 64}),
        ("batch 16", {**base, "batch": 16}),
        ("batch 64", {**base, "batch": 64}),
        ("1 thread", {**base, "threads": 1}),
        ("channels_last", {**base, "channels_last": True}),
        ("bf16 autocast", {**base, "bf16": True}),
        ("bf16 autocast + channels_last", {**base, "bf16": True, "channels_last": True}),
        ("bf16 autocast + channels_last, 64x64", {**base, "size": 64, "bf16": True, "channels_last": True}),
    ]
    if not args.no_compile:
        settings.append(("torch.compile", {**base, "compile_": True}))
    rows = []
    for name, kw in settings:
        try:
            r = _step_rate(steps=args.steps, **kw)
        except Exception as exc:  # a setting this torch/CPU cannot run is a result too
            r = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        rows.append({"setting": name, **r})
        print(f"{name}: {r.get('crops_per_s', r.get('error'))}", flush=True)
    data = _data_rate(batches=8, batch=32)
    print(f"data ({data['sampler']}): {data['crops_per_s']} crops/s", flush=True)
    result = {
        "what": "distill training step (forward, loss, backward, clip, AdamW) on PicoSAM3, crops per second",
        "torch": torch.__version__,
        "cpu_bf16": "avx512_bf16" in Path("/proc/cpuinfo").read_text(),
        "training_step": rows,
        "data_side": data,
    }
    if not args.no_write:
        print(write_result("distill_throughput", result))


if __name__ == "__main__":
    main()
