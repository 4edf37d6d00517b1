"""Long differential fuzz of the .rpk reader/writer against picamera2's own parser, recorded as JSON.

    .venv/bin/python benchmarks/rpk_fuzz.py --examples 3000 [--seed N] [--out benchmarks/results/rpk_fuzz.json]

Same mutations and bases as tests/test_rpk_fuzz.py (tests/support/rpk_fuzz.py: the real fixtures plus re-packs
whose firmware blocks end off a 4-byte boundary), not derandomised. Every mutant must either parse or raise
RpkFormatError, and both directions are checked against picamera2 0.3.38 (``IMX500.__ni_from_network`` with
its libarchive reader): a mutant picamera2 accepts must be accepted by us with the same entries, input tensor,
network sections and intrinsics, and a mutant we accept must be accepted by picamera2 likewise; our rewrite
of an accepted mutant must read back in picamera2 with the new intrinsics.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

from firmware_packaging import rpk as R  # noqa: E402
from tests.conftest import rpk_fixture_dir  # noqa: E402
from tests.support.rpk_fuzz import AGREE, apply_plan, differential, exercise, fuzz_bases, mutation_plans  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "rpk_fuzz.json")
    args = ap.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)  # picamera2's jsonschema metaschema guess
    logging.getLogger("libarchive").disabled = True

    bases = fuzz_bases({p.name: R.read_rpk(p) for p in sorted(rpk_fixture_dir().glob("*.rpk"))})
    outcomes: Counter[str] = Counter()
    differential_outcomes: Counter[str] = Counter()
    accepted_by_offset: Counter[int] = Counter()
    failures: list[dict[str, str]] = []
    disagreements: list[dict[str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="rpk-fuzz-")) / "m.rpk"

    @seed(args.seed)
    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(mutation_plans(bases))
    def run(plan: tuple) -> None:
        data = apply_plan(bases, plan)
        try:
            outcomes[exercise(data)] += 1
        except Exception as exc:  # the bug class we look for: record it, keep going
            outcomes["other-exception"] += 1
            if len(failures) < 20:
                failures.append({"plan": repr(plan)[:300], "error": repr(exc), "trace": traceback.format_exc(limit=3)})
            return
        outcome, detail = differential(data, tmp)
        differential_outcomes[outcome] += 1
        if outcome == "both-accept":
            accepted_by_offset[R.parse_rpk(data).cpio_offset % 4] += 1
        if outcome not in AGREE and len(disagreements) < 20:
            disagreements.append({"plan": repr(plan)[:300], "outcome": outcome, "detail": detail[:500]})

    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    total = sum(outcomes.values())
    agreeing = sum(differential_outcomes[o] for o in AGREE)
    result = {
        "benchmark": "rpk_fuzz",
        "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/rpk_fuzz.py", *sys.argv[1:]]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "seed": args.seed,
        "bases": {name: rpk.cpio_offset % 4 for name, rpk in bases.items()},  # archive offset modulo 4
        "examples_run": total,
        "seconds": round(seconds, 1),
        "examples_per_s": round(total / seconds, 1) if seconds else None,
        "outcomes": dict(outcomes),
        "failures": failures,
        "picamera2_differential": dict(differential_outcomes),
        "accepted_by_archive_offset_mod4": {str(k): v for k, v in sorted(accepted_by_offset.items())},
        "picamera2_disagreements": disagreements,
        "passed": outcomes["other-exception"] == 0 and agreeing == sum(differential_outcomes.values()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k not in ("failures",)}, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
