"""``imx500-sam run``: prompt PicoSAM3 by the on-sensor ROI, on the AI Camera (--rpk) or emulated (--emulate)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from imx500_sam.cli.app import app

if TYPE_CHECKING:
    from imx500_sam.runtime.session import MaskResult


@app.command("run")
def run(
    rpk: Path = typer.Option(None, "--rpk", help="network.rpk: run on the Raspberry Pi AI Camera (picamera2)."),
    emulate: Path = typer.Option(None, "--emulate", help="A convert output directory: run the emulated IMX500."),
    source: str = typer.Option(None, "--source", help="Emulator frames: image, folder, video file or webcam index."),
    box: list[str] = typer.Option(
        None, "--box", help="Prompt box x,y,w,h in output-image pixels; repeat for several objects (round robin)."
    ),
    select: bool = typer.Option(False, "--select", help="Draw the prompt box on the first frame (needs a GUI)."),
    track: bool = typer.Option(False, "--track", help="Let the ROI follow the object."),
    save: Path = typer.Option(None, "--save", help="Write the overlay: .png/.jpg (one frame) or .mp4/.avi (video)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --save file."),
    save_masks: Path = typer.Option(None, "--save-masks", help="Write each frame's mask as DIR/mask_000000.png ..."),
    frames: int = typer.Option(None, "--frames", help="Stop after N frames (default: all; 1 for a photo)."),
    threads: int = typer.Option(None, "--threads", help="Emulator: onnxruntime threads (default: up to 4)."),
    pipelined: bool = typer.Option(
        False, "--pipelined", help="Emulator: compute the next frame meanwhile, as the sensor does (ROI 1 frame late)."
    ),
    fast_int8: bool = typer.Option(
        False,
        "--fast-int8",
        help="Emulator: onnxruntime's fused INT8 kernels, ~2x faster; masks agree with MCT's network on ~99.5% "
        "of pixels instead of 99.9%.",
    ),
    crop: str = typer.Option(
        None,
        "--crop",
        help="How a box becomes the sensor ROI: shifted (square kept inside the frame) | clamped (the authors' "
        "padded square clamped to the frame). Default: the one the converted model was trained with (report.json).",
    ),
    roi_as_drawn: bool = typer.Option(
        False,
        "--roi-as-drawn",
        help="Send the box itself as the ROI, unpadded and unsquared, as the authors' demo does (for comparison: "
        "the model was not trained on such crops).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per frame."),
) -> None:
    """Segment prompted objects per frame: box -> ROI on the sensor (the model's crop) -> mask in the output image."""
    from imx500_sam.runtime.runner import RunOptions, parse_box
    from imx500_sam.runtime.runner import run as run_prompts

    options = RunOptions(
        rpk=rpk,
        emulate=emulate,
        source=source,
        boxes=[parse_box(b) for b in box or []],
        select=select,
        track=track,
        save=save,
        save_masks=save_masks,
        frames=frames,
        threads=threads,
        pipelined=pipelined,
        fast_int8=fast_int8,
        crop=crop,
        roi_as_drawn=roi_as_drawn,
        overwrite=overwrite,
    )

    def emit(result: MaskResult) -> None:
        if as_json:
            typer.echo(json.dumps(result.to_json()))

    summary = run_prompts(options, on_result=emit)
    dnn = f"{summary.mean_dnn_ms:.2f} ms" if summary.mean_dnn_ms is not None else "n/a"
    fps = f"{summary.fps:.1f}" if summary.fps else "n/a"
    print(f"imx500-sam run: {summary.frames} frame(s), mean DNN {dnn}, {fps} fps", file=sys.stderr)
