"""Long differential fuzz of the .rpk reader/writer against picamera2's own parser (libarchive), recorded as JSON.

    nice -n 19 .venv/bin/python benchmarks/rpk_fuzz.py --examples 100000 --seed 20261203 [--resume]

Same mutations and bases as tests/test_rpk_fuzz.py (tests/support/rpk_fuzz.py: the real fixtures plus re-packs
whose firmware blocks end off a 4-byte boundary; structure-aware mutations of network_info.txt lines,
network_intrinsics keys and CPIO members, then byte-level ones). Mutant ``i`` of seed ``S`` is drawn from its own
generator (``random.Random(f"{S}:{i}")``), so the run is reproducible mutant by mutant and resumable: the JSON
(``benchmarks/results/rpk_fuzz.json``) is rewritten every ``--save-every`` mutants with ``next_index`` and the
counts so far, and ``--resume`` continues from there (same seed and examples; ``runs`` lists each session's
commit and mutant range, ``commit`` is the latest session's). Every mutant must either parse or
raise RpkFormatError, and both directions are checked against picamera2 0.3.38 (``IMX500.__ni_from_network``
with libarchive-c over the system libarchive): a mutant picamera2 accepts must be accepted by us with the same
entries, input tensor, network sections and intrinsics, and a mutant we accept must be accepted by picamera2
likewise; our rewrite of an accepted mutant must read back in picamera2 with the new intrinsics.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
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

from benchmarks._common import machine, toolkit_commit  # noqa: E402
from firmware_packaging import rpk as R  # noqa: E402
from imx500_sam.procs import deferred_stop, pending_signal, take_pending  # noqa: E402
from tests.conftest import rpk_fixture_dir  # noqa: E402
from tests.support.rpk_fuzz import AGREE, apply_plan, differential, exercise, fuzz_bases, plan_for  # noqa: E402

KEEP = 50  # failures / disagreements kept in the JSON


def _save(path: Path, record: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "rpk_fuzz.json")
    ap.add_argument("--resume", action="store_true", help="Continue the run recorded in --out (same seed).")
    ap.add_argument("--save-every", type=int, default=500)
    args = ap.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)  # picamera2's jsonschema metaschema guess
    logging.getLogger("libarchive").disabled = True

    bases = fuzz_bases({p.name: R.read_rpk(p) for p in sorted(rpk_fixture_dir().glob("*.rpk"))})
    record: dict = {
        "benchmark": "rpk_fuzz",
        "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/rpk_fuzz.py", *sys.argv[1:]]),
        "commit": toolkit_commit(),
        "machine": machine(),
        "seed": args.seed,
        "examples": args.examples,
        "bases": {name: rpk.cpio_offset % 4 for name, rpk in bases.items()},  # archive offset modulo 4
        "next_index": 0,
        "runs": [],  # one per session: its commit and the mutants it ran
        "seconds": 0.0,
        "outcomes": {},
        "op_counts": {},
        "picamera2_differential": {},
        "accepted_by_archive_offset_mod4": {},
        "failures": [],
        "picamera2_disagreements": [],
    }
    if args.resume and args.out.is_file():
        old = json.loads(args.out.read_text(encoding="utf-8"))
        if old.get("seed") != args.seed or old.get("examples") != args.examples:
            print(f"{args.out}: a run with seed {old.get('seed')} / {old.get('examples')} examples", file=sys.stderr)
            return 2
        record.update({k: old[k] for k in record if k in old and k not in ("command", "machine", "commit")})
        if not record["runs"] and old.get("next_index"):  # a record from before ``runs``: its last commit only
            record["runs"] = [{"commit": old.get("commit"), "from_index": None, "to_index": old["next_index"]}]
    run = {"commit": record["commit"], "from_index": record["next_index"], "to_index": record["next_index"]}
    record["runs"].append(run)
    outcomes = Counter(record["outcomes"])
    ops = Counter(record["op_counts"])
    diff = Counter(record["picamera2_differential"])
    offsets = Counter(record["accepted_by_archive_offset_mod4"])
    failures, disagreements = record["failures"], record["picamera2_disagreements"]
    shm = Path("/dev/shm")  # the mutant is written for libarchive to read: memory, not disk, where there is one
    tmp_dir = Path(tempfile.mkdtemp(prefix="rpk-fuzz-", dir=shm if shm.is_dir() else None))
    tmp = tmp_dir / "m.rpk"

    def flush(seconds: float) -> None:
        run["to_index"] = record["next_index"]
        record.update(
            seconds=round(seconds, 1),
            outcomes=dict(outcomes),
            op_counts=dict(ops),
            picamera2_differential=dict(diff),
            accepted_by_archive_offset_mod4={str(k): v for k, v in sorted(offsets.items(), key=lambda kv: str(kv))},
            date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            examples_run=record["next_index"],
            examples_per_s=round(record["next_index"] / seconds, 1) if seconds else None,
            finished=record["next_index"] >= args.examples,
            passed=outcomes["other-exception"] == 0 and sum(diff[o] for o in AGREE) == sum(diff.values()),
        )
        _save(args.out, record)

    t0, before = time.perf_counter(), float(record["seconds"])
    # SIGINT / SIGTERM / SIGHUP wait (imx500_sam.procs): this mutant is finished, the record saved, then it ends
    with deferred_stop(hold=True):
        try:
            for i in range(record["next_index"], args.examples):
                if pending_signal() is not None:
                    break
                plan = plan_for(args.seed, i, bases)
                ops.update(op for op, _, _ in plan[1])
                data = apply_plan(bases, plan)
                try:
                    outcomes[exercise(data)] += 1
                except Exception as exc:  # the bug class we look for: record it, keep going
                    outcomes["other-exception"] += 1
                    if len(failures) < KEEP:
                        failures.append({"index": i, "plan": repr(plan)[:400], "error": repr(exc)[:300],
                                         "trace": traceback.format_exc(limit=3)[-1200:]})  # fmt: skip
                else:
                    outcome, detail = differential(data, tmp)
                    diff[outcome] += 1
                    if outcome == "both-accept":
                        offsets[R.parse_rpk(data).cpio_offset % 4] += 1
                    if outcome not in AGREE and len(disagreements) < KEEP:
                        disagreements.append({"index": i, "plan": repr(plan)[:400], "outcome": outcome,
                                              "detail": detail[:600]})  # fmt: skip
                record["next_index"] = i + 1
                if (i + 1) % args.save_every == 0:
                    flush(before + time.perf_counter() - t0)
        finally:
            flush(before + time.perf_counter() - t0)
            shutil.rmtree(tmp_dir, ignore_errors=True)
        signum = take_pending()
    print(json.dumps({k: v for k, v in record.items() if k not in ("failures", "picamera2_disagreements")}, indent=2))
    if signum is not None:
        print(f"stopped at mutant {record['next_index']}: continue with --resume", file=sys.stderr)
        return 128 + signum
    return 0 if record["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
