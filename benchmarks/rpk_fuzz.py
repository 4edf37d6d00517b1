"""Long fuzz of the .rpk reader/writer on mutated real files, recorded as JSON in benchmarks/results/.

    .venv/bin/python benchmarks/rpk_fuzz.py --examples 50000 [--seed N] [--out benchmarks/results/rpk_fuzz.json]

Same mutations as tests/test_rpk_fuzz.py (tests/support/rpk_fuzz.py), not derandomised. Every mutant must either
parse or raise RpkFormatError. Each mutant we accept is also read by picamera2's own parser (differential check):
it must load there too, with the same input tensor and intrinsics.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
import time
import traceback
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

from firmware_packaging import rpk as R  # noqa: E402
from tests.conftest import rpk_fixture_dir  # noqa: E402
from tests.support.picamera2_host import picamera2_read_rpk  # noqa: E402
from tests.support.rpk_fuzz import apply_plan, exercise, mutation_plans  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "rpk_fuzz.json")
    args = ap.parse_args()

    bases = {p.name: R.read_rpk(p) for p in sorted(rpk_fixture_dir().glob("*.rpk"))}
    outcomes: Counter[str] = Counter()
    failures: list[dict[str, str]] = []
    diff = Counter()
    disagreements: list[str] = []
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
            outcome = exercise(data)
        except Exception as exc:  # the bug class we look for: record it, keep going
            outcomes["other-exception"] += 1
            if len(failures) < 20:
                failures.append({"error": repr(exc), "trace": traceback.format_exc(limit=3)})
            return
        outcomes[outcome] += 1
        if outcome == "ok":
            rpk = R.parse_rpk(data)
            tmp.write_bytes(data)
            try:
                cfg = picamera2_read_rpk(tmp)
            except Exception as exc:  # picamera2 refuses what we accepted
                diff["picamera2-raised"] += 1
                if len(disagreements) < 20:
                    disagreements.append(repr(exc)[:300])
                return
            ni = cfg.get("intrinsics")
            same = (
                cfg["input_tensor"]["width"] == rpk.input_tensor["width"]
                and cfg["input_tensor"]["height"] == rpk.input_tensor["height"]
                and (ni.intrinsics if ni else None) == rpk.intrinsics
            )
            diff["agree" if same else "differ"] += 1
            if not same and len(disagreements) < 20:
                disagreements.append(f"input/intrinsics differ: {cfg['input_tensor']} vs {rpk.input_tensor}")

    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    total = sum(outcomes.values())
    result = {
        "benchmark": "rpk_fuzz",
        "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/rpk_fuzz.py", *sys.argv[1:]]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "seed": args.seed,
        "fixtures": sorted(bases),
        "examples_run": total,
        "seconds": round(seconds, 1),
        "examples_per_s": round(total / seconds, 1) if seconds else None,
        "outcomes": dict(outcomes),
        "failures": failures,
        "picamera2_differential": dict(diff),
        "picamera2_disagreements": disagreements,
        "passed": outcomes["other-exception"] == 0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k not in ("failures",)}, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
