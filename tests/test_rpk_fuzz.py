"""Differential fuzz, both directions: mutated real .rpk files (and re-packs with odd-length firmware blocks)
must be accepted or refused alike by the toolkit and by picamera2 0.3.38's own parser, with the same entries;
our rewrite of an accepted file must read back in picamera2; only RpkFormatError may come out of the toolkit
(about 30 s; benchmarks/rpk_fuzz.py runs longer)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from firmware_packaging import rpk as R
from tests.rpk_fixtures import DEEPLAB, HIGHERHRNET, rpk_path
from tests.support.rpk_fuzz import AGREE, STRUCT_OPS, apply_plan, differential, exercise, fuzz_bases, plan_for

EXAMPLES = int(os.environ.get("IMX500_SAM_FUZZ_EXAMPLES", "1000"))

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_mutants_read_alike_by_toolkit_and_picamera2(tmp_path: Path) -> None:
    bases = fuzz_bases({name: R.read_rpk(rpk_path(name)) for name in (DEEPLAB, HIGHERHRNET)})
    outcomes: Counter[str] = Counter()
    odd_accepted = Counter()
    disagreements: list[tuple[tuple, str, str]] = []

    structural = Counter()
    for i in range(EXAMPLES):  # the same mutants every CI run (seed "ci"); benchmarks/rpk_fuzz.py explores further
        plan = plan_for("ci", i, bases)
        data = apply_plan(bases, plan)
        exercise(data)  # anything but RpkFormatError fails the test
        outcome, detail = differential(data, tmp_path / "mutant.rpk")
        outcomes[outcome] += 1
        if all(op in STRUCT_OPS for op, _, _ in plan[1]):
            structural[outcome] += 1
        if outcome == "both-accept" and "+odd" in plan[0]:
            odd_accepted[R.parse_rpk(data).cpio_offset % 4] += 1
        if outcome not in AGREE:
            disagreements.append((plan, outcome, detail))

    assert not disagreements, disagreements[:5]
    # both paths were exercised, on archives at every offset modulo 4
    assert sum(outcomes.values()) >= EXAMPLES * 0.9, outcomes
    assert outcomes["both-refuse"] > EXAMPLES // 10, outcomes
    assert outcomes["both-accept"] > EXAMPLES // 50, outcomes
    assert set(odd_accepted) == {1, 2, 3}, odd_accepted
    assert structural["both-accept"] > 0 and structural["both-refuse"] > 0, structural  # both kinds of content
    print(dict(outcomes), dict(odd_accepted))


def test_picamera2_refusals_leak_no_descriptor(tmp_path: Path) -> None:
    """picamera2 leaves its archive descriptor open when libarchive raises; the harness closes it, so a long fuzz
    run does not run out of descriptors (it did, at mutant ~77,000)."""
    from tests.support.rpk_fuzz import picamera2_view

    real = R.read_rpk(rpk_path(DEEPLAB))
    garbled = real.data[: real.cpio_offset] + b"070701" + b"\xff" * 200  # firmware intact, a broken CPIO header
    assert not picamera2_view(garbled, tmp_path / "m.rpk").accepted
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        view = picamera2_view(garbled, tmp_path / "m.rpk")
        assert not view.accepted and view.reason
    assert len(os.listdir("/proc/self/fd")) == before
