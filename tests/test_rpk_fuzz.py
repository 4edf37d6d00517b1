"""Fuzz: thousands of mutated real .rpk files; only RpkFormatError may ever come out (about 20 s)."""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, given, settings

from firmware_packaging import rpk as R
from tests.rpk_fixtures import DEEPLAB, HIGHERHRNET, rpk_path
from tests.support.rpk_fuzz import apply_plan, exercise, mutation_plans

EXAMPLES = int(os.environ.get("IMX500_SAM_FUZZ_EXAMPLES", "3000"))


def test_mutated_rpks_only_raise_the_format_error() -> None:
    bases = {name: R.read_rpk(rpk_path(name)) for name in (DEEPLAB, HIGHERHRNET)}
    outcomes: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same mutants every CI run; benchmarks/rpk_fuzz.py explores further
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(mutation_plans(bases))
    def run(plan: tuple) -> None:
        outcomes[exercise(apply_plan(bases, plan))] += 1  # anything but RpkFormatError fails the test

    run()
    # the mutants were neither all rejected nor all accepted: both paths were exercised
    assert sum(outcomes.values()) >= EXAMPLES * 0.9, outcomes
    assert outcomes["format-error"] > EXAMPLES // 10, outcomes
    assert outcomes["ok"] > 10, outcomes
    print(dict(outcomes))
