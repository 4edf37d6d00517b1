"""One epoch's training batches, in step order, drawn in this process or by ``workers`` forked processes.

Drawing crops (composite scenes above all) costs far more CPU than a training step on a GPU, so ``distill --workers
N`` draws batches in N processes while the GPU trains. Each step's batch is a function of the seed, the epoch, the
rank and (with workers) N: in-process, one generator per epoch ``[seed, epoch, rank]`` draws every step in turn (as
before); with N workers, worker ``w`` draws steps ``w, w + N, ...`` with its own generator ``[seed, epoch, rank, N, w]``
and its own sampler state. A resumed run replays the draws before its first step in the same way, so it gets the
batches an uninterrupted run with the same N would have got.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import signal
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from imx500_sam.train.samples import Batch, make_batch, resize_batch

WORKER_WAIT_S = 5.0  # how often the trainer checks that a silent worker is still alive
WORKER_STALL_S = 600.0  # a worker silent this long (alive) is taken as hung
QUEUE_DEPTH = 4  # batches a worker may draw ahead


@dataclass(frozen=True)
class EpochPlan:
    """What one epoch draws: its steps from ``first`` (a resumed epoch's first step) to ``steps``."""

    seed: int
    epoch: int
    rank: int
    batch: int
    first: int
    steps: int
    jitter: float = 0.05
    size: int | None = None  # crop size of this epoch (None: the samplers' own, 96)


def _draw(samplers: list[tuple[object, float]], plan: EpochPlan, rng: np.random.Generator) -> Batch:
    b = make_batch(samplers, plan.batch, rng, plan.jitter)
    return resize_batch(b, plan.size) if plan.size else b


def _as_bytes(a: np.ndarray) -> np.ndarray:
    """``a`` (floats in [0, 1]) as uint8 where that is exact (teacher masks are 8-bit, ground truth binary, at the
    native crop size), else ``a`` itself: a batch crosses the pipe in under half the bytes."""
    b = np.rint(a * 255.0).astype(np.uint8)
    return b if np.array_equal(b.astype(np.float32) / 255.0, a) else a


def _as_floats(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a


def _reset(samplers: list[tuple[object, float]]) -> None:
    for sampler, _ in samplers:  # a sampler's cache restarts with the epoch's generator (for --resume)
        sampler.reset()  # type: ignore[attr-defined]


def _in_process(samplers: list[tuple[object, float]], plan: EpochPlan) -> Iterator[Batch]:
    rng = np.random.default_rng([plan.seed, plan.epoch, plan.rank])
    _reset(samplers)
    for _ in range(plan.first):  # draw what the interrupted run drew: the same samples from here on
        make_batch(samplers, plan.batch, rng, plan.jitter)
    for _ in range(plan.first, plan.steps):
        yield _draw(samplers, plan, rng)


def _worker(samplers: list[tuple[object, float]], plan: EpochPlan, w: int, n: int, out: mp.Queue) -> None:
    """Worker ``w`` of ``n``: draws steps w, w + n, ... of the epoch (replaying those before ``plan.first``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the trainer decides when to stop; it ends the workers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        rng = np.random.default_rng([plan.seed, plan.epoch, plan.rank, n, w])
        _reset(samplers)
        for step in range(w, plan.steps, n):
            if step < plan.first:
                make_batch(samplers, plan.batch, rng, plan.jitter)
            else:
                b = _draw(samplers, plan, rng)
                out.put(("batch", step, replace(b, teacher=_as_bytes(b.teacher), gt=_as_bytes(b.gt))))
    except BaseException:  # reported to the trainer, which raises it
        out.put(("error", w, traceback.format_exc()))


def _from_workers(samplers: list[tuple[object, float]], plan: EpochPlan, n: int) -> Iterator[Batch]:
    import cv2

    ctx = mp.get_context("fork")  # the samplers' images are shared copy-on-write, not pickled
    queues = [ctx.Queue(QUEUE_DEPTH) for _ in range(n)]
    procs = [ctx.Process(target=_worker, args=(samplers, plan, w, n, queues[w]), daemon=True) for w in range(n)]
    # Each worker draws on one OpenCV thread (N workers, not N x cores threads). Setting that inside a forked child
    # hangs (its pool's threads stayed in the parent), so the workers are forked with the pool at one thread; this
    # process gets its pool back after.
    try:
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            for p in procs:
                p.start()
        finally:
            cv2.setNumThreads(threads)
        for step in range(plan.first, plan.steps):
            w = step % n
            waited = 0.0
            while True:
                try:
                    kind, where, payload = queues[w].get(timeout=WORKER_WAIT_S)
                    break
                except queue.Empty:
                    waited += WORKER_WAIT_S
                    if not procs[w].is_alive():
                        raise RuntimeError(f"batch worker {w} died (exit code {procs[w].exitcode})") from None
                    if waited >= WORKER_STALL_S:
                        raise RuntimeError(f"batch worker {w} sent nothing for {waited:.0f} s (hung?)") from None
            if kind == "error":
                raise RuntimeError(f"batch worker {where} failed:\n{payload}")
            if where != step:  # cannot happen unless the schedule above changes
                raise RuntimeError(f"batch worker {w} sent step {where}, expected {step}")
            yield replace(payload, teacher=_as_floats(payload.teacher), gt=_as_floats(payload.gt))
    finally:
        started = [p for p in procs if p.pid is not None]  # all of them, unless a start failed
        for p in started:
            if p.is_alive():
                p.terminate()
        for p in started:
            p.join(timeout=WORKER_WAIT_S)
        for q in queues:
            q.cancel_join_thread()
            q.close()


def epoch_batches(samplers: list[tuple[object, float]], plan: EpochPlan, workers: int = 0) -> Iterator[Batch]:
    """The epoch's batches from step ``plan.first`` on, in order; ``workers`` > 0 draws them in that many processes."""
    if workers < 0:
        raise ValueError("workers must be >= 0")
    return _from_workers(samplers, plan, workers) if workers else _in_process(samplers, plan)
