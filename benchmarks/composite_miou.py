"""mIoU on our composite evaluation set (role evaluate: cut-outs and photos nothing trained on, exact masks).

What ``imx500-sam eval --composite [--protocol paper] --int8 DIR [--teacher mobilesam] --json`` prints, under both
protocols, plus the 95% bootstrap confidence interval of each mIoU (instances resampled; its half-width says what
change the set can resolve between figures measured apart), the paired interval of float - INT8, and mIoU by
neighbours in the prompt crop (0 / 1-2 / 3+ other objects inside the box grown by 10%, as the PicoSAM3 authors'
rebuttal splits COCO). Two models compared on the same instances differ by less noise than two figures measured
apart: ``paired`` scores the float model once more with the other edge-crop convention (a small real change,
``imx500_sam.prompt``) and gives the paired interval of the difference.

    .venv/bin/python -m benchmarks.composite_miou --convert-dir DIR [--model PT] [--teacher] [--name NAME]

Writes benchmarks/results/eval_composite.json (``--name`` for another file).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks._common import convert_provenance, model_arguments, write_result

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0


def bootstrap_ci(values: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> dict:
    """Mean and the 95% percentile bootstrap interval of the mean (instances resampled with replacement)."""
    v = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), (samples, len(v)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mean": round(float(v.mean()), 4), "ci95": [round(float(lo), 4), round(float(hi), 4)],
            "half_width": round(float(hi - lo) / 2, 4)}  # fmt: skip


def by_neighbours(ious: list[float], neighbours: list[int]) -> dict:
    """mIoU and count by other objects in the prompt crop: 0, 1-2, 3+."""
    out = {}
    for label, lo, hi in (("0", 0, 0), ("1-2", 1, 2), ("3+", 3, 10**9)):
        sel = [v for v, n in zip(ious, neighbours, strict=True) if lo <= n <= hi]
        out[label] = {"instances": len(sel), "miou": round(float(np.mean(sel)), 4) if sel else None}
    return out


def summarise(report: dict, neighbours: list[int]) -> dict:
    """Bootstrap intervals and the neighbour split of each result, and the paired float - INT8 interval."""
    stats = {}
    for r in report["results"]:
        ious = r["ious"]
        if len(ious) != len(neighbours):
            raise RuntimeError(f"{r['model']}: {len(ious)} IoUs for {len(neighbours)} instances")
        stats[r["model"]] = {
            "bootstrap": bootstrap_ci(np.asarray(ious)),
            "by_neighbours": by_neighbours(ious, neighbours),
        }
    float_r = [r for r in report["results"] if r["model"].startswith("float:")]
    int8_r = [r for r in report["results"] if r["model"].startswith("int8:")]
    if float_r and int8_r:
        diff = np.asarray(float_r[0]["ious"]) - np.asarray(int8_r[0]["ious"])
        stats["float_minus_int8"] = bootstrap_ci(diff)
    return stats


def paired_crop_change(coco: Path, images: Path, model: Path | None, image_report: dict) -> dict:
    """The float model with the other crop convention (clamped <-> shifted) on the same instances: both mIoUs and
    the paired bootstrap interval of the difference."""
    from imx500_sam.defaults import DEFAULT_CHECKPOINT
    from imx500_sam.model import prompt_crop_of, read_checkpoint
    from imx500_sam.prompt import CLAMPED, SHIFTED
    from imx500_sam.train.eval_set import evaluate_set

    own = prompt_crop_of(read_checkpoint(Path(model) if model else DEFAULT_CHECKPOINT))
    other = CLAMPED if own == SHIFTED else SHIFTED
    base = next(r for r in image_report["results"] if r["model"].startswith("float:"))
    alt = evaluate_set(coco, images, "composite", "image", model, crop=other).to_json()["results"][0]
    diff = np.asarray(alt["ious"]) - np.asarray(base["ious"])
    return {
        "what": f"float model, crop {other} minus its own {own}, same instances (protocol image)",
        "own_crop": own,
        "other_crop": other,
        "miou_own": base["miou"],
        "miou_other": alt["miou"],
        "difference": bootstrap_ci(diff),
    }


def measure(model: Path | None, convert_dir: Path | None, teacher: bool) -> dict:
    """Both protocols' reports on the composite set, with their statistics and the set's provenance."""
    from imx500_sam.data.composite_set import composite_set_name, fetch_composite_coco
    from imx500_sam.train.eval_set import evaluate_set

    coco, images = fetch_composite_coco()
    meta = json.loads((coco.parent / "set.json").read_text())
    anns = json.loads(coco.read_text())["annotations"]  # written in image order: the order both protocols score
    neighbours = [int(a["neighbours"]) for a in anns]
    out: dict = {
        "what": "composite evaluation set (role evaluate; cut-outs and backgrounds nothing trained on, exact "
        "visible masks): eval's report under both protocols, 95% bootstrap intervals, mIoU by neighbours",
        "composite_set": meta,
        "protocols": {},
    }
    for protocol in ("image", "paper"):
        report = evaluate_set(
            coco, images, composite_set_name(), protocol, model, convert_dir,
            "mobilesam" if teacher and protocol == "image" else None, progress=True,
        )  # fmt: skip
        data = report.to_json()
        data["stats"] = summarise(data, neighbours)
        out["protocols"][protocol] = data
    out["paired"] = paired_crop_change(coco, images, model, out["protocols"]["image"])
    out["int8_convert"] = convert_provenance(convert_dir)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model_arguments(ap)
    ap.add_argument("--teacher", action="store_true", help="also the MobileSAM teacher (--protocol image)")
    ap.add_argument("--name", default="eval_composite", help="result file name (without .json)")
    args = ap.parse_args()
    data = measure(args.model, args.convert_dir, args.teacher)
    path = write_result(args.name, data)
    for protocol, rep in data["protocols"].items():
        for r in rep["results"]:
            b = rep["stats"][r["model"]]["bootstrap"]
            print(f"{protocol}: {r['model']}: mIoU {r['miou']:.4f} (95% CI +-{b['half_width']:.4f}, {r['instances']})")
    print(path)


if __name__ == "__main__":
    main()
