"""imx500_sam.train.loader: an epoch's batches in step order, drawn in-process or by worker processes."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from imx500_sam.train import loader
from imx500_sam.train.loader import EpochPlan, epoch_batches


class _Counting:
    """A sampler whose crop encodes its draws: the generator's value and how many crops since the last reset."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.reset()

    def reset(self) -> None:
        self.drawn = 0

    def sample(self, rng: np.random.Generator, jitter: float = 0.05) -> tuple[np.ndarray, ...]:
        self.drawn += 1
        if self.fail_at is not None and self.drawn >= self.fail_at:
            raise ValueError("a broken cut-out")
        cv2.resize(np.zeros((1200, 1200, 3), np.uint8), (600, 600))  # a parallel OpenCV call, as the samplers make
        im = np.full((8, 8, 3), int(rng.integers(256)), np.uint8)
        im[0, 0, 0] = self.drawn % 256
        g = np.zeros((8, 8), np.float32)
        return im, g, 0.0, g, 1.0


def _plan(first: int = 0, steps: int = 7, size: int | None = None) -> EpochPlan:
    return EpochPlan(seed=5, epoch=2, rank=0, batch=4, first=first, steps=steps, jitter=0.0, size=size)


def _images(samplers, plan: EpochPlan, workers: int) -> list[np.ndarray]:
    return [b.images for b in epoch_batches(samplers, plan, workers)]


@pytest.fixture(autouse=True)
def _no_hang(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A hung worker fails the test in seconds; OpenCV's thread pool is running before the workers are forked (and
    set back to what it was after)."""
    monkeypatch.setattr(loader, "WORKER_WAIT_S", 0.5)
    monkeypatch.setattr(loader, "WORKER_STALL_S", 20.0)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(2)
    cv2.resize(np.zeros((2000, 2000, 3), np.uint8), (1000, 1000))
    yield
    cv2.setNumThreads(threads)


@pytest.mark.parametrize("workers", [0, 3])
def test_a_resumed_epoch_draws_what_an_uninterrupted_one_did(workers: int) -> None:
    whole = _images([(_Counting(), 1.0)], _plan(), workers)
    assert len(whole) == 7 and all(b.shape == (4, 8, 8, 3) for b in whole)
    tail = _images([(_Counting(), 1.0)], _plan(first=4), workers)
    assert len(tail) == 3
    for a, b in zip(whole[4:], tail, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len({b.tobytes() for b in whole}) == 7  # every step its own crops


def test_workers_draw_other_crops_than_one_process_and_resize() -> None:
    one = _images([(_Counting(), 1.0)], _plan(), 0)
    three = _images([(_Counting(), 1.0)], _plan(), 3)
    assert not np.array_equal(np.stack(one), np.stack(three))  # the stream depends on N (documented)
    small = _images([(_Counting(), 1.0)], _plan(size=4), 2)
    assert all(b.shape == (4, 4, 4, 3) for b in small)


def test_a_worker_error_reaches_the_trainer() -> None:
    with pytest.raises(RuntimeError, match="a broken cut-out"):
        _images([(_Counting(fail_at=6), 1.0)], _plan(), 2)


def test_negative_workers_are_refused() -> None:
    with pytest.raises(ValueError):
        epoch_batches([(_Counting(), 1.0)], _plan(), -1)


def test_a_silent_worker_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "WORKER_STALL_S", 1.0)
    monkeypatch.setattr(loader, "make_batch", lambda *a, **k: __import__("time").sleep(30))
    with pytest.raises(RuntimeError, match="sent nothing"):
        _images([(_Counting(), 1.0)], _plan(), 2)


def test_masks_cross_the_pipe_as_bytes_only_where_that_is_exact() -> None:
    rng = np.random.default_rng(0)
    teacher = rng.integers(0, 256, (2, 8, 8)).astype(np.float32) / 255.0  # as TargetSampler makes them
    packed = loader._as_bytes(teacher)
    assert packed.dtype == np.uint8
    np.testing.assert_array_equal(loader._as_floats(packed), teacher)  # bit for bit
    soft = np.full((2, 8, 8), 0.3, np.float32)  # e.g. a mask resized for --low-res
    assert loader._as_bytes(soft) is soft and loader._as_floats(soft) is soft
