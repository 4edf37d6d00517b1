"""benchmarks.stage_curve's bookkeeping: which epochs a run kept and how many crops each had seen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.stage_curve import _figures, crops_after, run_options, snapshots


def test_crops_seen_count_the_low_resolution_epochs_apart() -> None:
    opts = {"steps_per_epoch": 500, "batch": 32, "low_res": 64, "low_res_epochs": 8}
    assert crops_after(opts, 0) == (0, 0)
    assert crops_after(opts, 3) == (48_000, 48_000)
    assert crops_after(opts, 9) == (144_000, 128_000)
    assert crops_after({**opts, "low_res": None}, 9) == (144_000, 0)


def test_kept_epochs_are_found_in_order_with_their_options(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--keep-every"):
        snapshots(tmp_path)
    kept = tmp_path / "epochs"
    kept.mkdir()
    for e in (10, 2, 4):
        (kept / f"epoch_{e:03d}.pt").write_bytes(b"")
        side = {"training": {"epoch": e, "options": {"steps_per_epoch": 7, "batch": 2}}}
        (kept / f"epoch_{e:03d}.json").write_text(json.dumps(side))
    found = snapshots(tmp_path)
    assert [e for e, _ in found] == [2, 4, 10]
    assert run_options(found[-1][1]) == {"steps_per_epoch": 7, "batch": 2}


def test_figures_of_an_eval_report_by_kind() -> None:
    report = {
        "results": [
            {"model": "float:a.pt", "miou": 0.61234, "map_50_95": 0.4, "instances": 5},
            {"model": "int8:a_imx500", "miou": 0.6, "map_50_95": 0.39, "instances": 5},
        ]
    }
    assert _figures(report) == {"float": 0.6123, "float_map": 0.4, "int8": 0.6, "int8_map": 0.39, "instances": 5}
