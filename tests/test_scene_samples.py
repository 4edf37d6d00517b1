"""Training crops from crowded composite scenes (``SceneSampler``) and ``distill --scene-frac``."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from imx500_sam.data.composite import Background, Cutout
from imx500_sam.prompt import CLAMPED, SHIFTED, crop, prompt_roi
from imx500_sam.train.scene_samples import TRAIN_SCENE_SEED, SceneSampler

COLOURS = {"red.png": (220, 30, 30), "green.png": (30, 200, 40), "blue.png": (40, 50, 210)}


def _cutout(colour: tuple[int, int, int], shape: str) -> np.ndarray:
    rgba = np.zeros((70, 90, 4), np.uint8)
    if shape == "disc":
        cv2.ellipse(rgba, (45, 35), (42, 32), 0, 0, 360, (*colour, 255), -1)
    else:
        cv2.rectangle(rgba, (5, 5), (84, 64), (*colour, 255), -1)
    return rgba


def _inputs() -> tuple[list[Cutout], list[Background]]:
    shapes = ("disc", "box", "disc")
    cuts = [Cutout.of(n, _cutout(c, s)) for (n, c), s in zip(COLOURS.items(), shapes, strict=True)]
    bg = np.random.default_rng(1).integers(0, 255, (360, 500, 3), dtype=np.uint8)
    return cuts, [Background("noise.png", bg), Background("grey.png", np.full((300, 400, 3), 128, np.uint8))]


@pytest.mark.parametrize("convention", [SHIFTED, CLAMPED])
def test_scene_crops_are_prompt_crops_of_exact_visible_masks(convention: str) -> None:
    """Every crop is the prompt crop (the model's convention) of one visible instance of a live scene, and its
    target is the same crop of that instance's exact visible mask; several objects show in the crops."""
    sampler = SceneSampler(*_inputs(), convention=convention, pool=3)
    rng = np.random.default_rng(0)
    crowded = 0
    for _ in range(40):
        im, teacher, conf, gt, has = sampler.sample(rng, jitter=0.0)
        assert im.shape == (96, 96, 3) and im.dtype == np.uint8
        assert gt.shape == teacher.shape == (96, 96) and gt.dtype == teacher.dtype == np.float32
        assert set(np.unique(gt)) <= {0.0, 1.0} and gt.mean() > 0.05 and has == 1.0
        assert conf == 0.0 and not teacher.any()  # no teacher target on composites: the loss's teacher term is off
        matches = []
        for slot in sampler._slots:
            if slot is None:
                continue
            frame = slot.scene.rgb
            for inst in slot.scene.instances:
                roi = prompt_roi(inst.bbox, (frame.shape[1], frame.shape[0]), convention)
                if np.array_equal(crop(frame, roi, 96), im):
                    exact = (crop(inst.mask.astype(np.uint8) * 255, roi, 96) > 127).astype(np.float32)
                    matches.append(np.array_equal(exact, gt))
                    crowded += inst.neighbours > 0
        assert matches and all(matches)
    assert crowded >= 10  # neighbours inside the prompt crop, the point of these scenes
    assert sampler.scenes_composed < 40  # a scene serves several crops


def test_scene_sampler_is_deterministic_by_generator_and_reset() -> None:
    """The same generator gives the same crops; after ``reset`` the same crops again (what --resume relies on);
    another generator other crops."""
    cuts, bgs = _inputs()

    def draw(sampler: SceneSampler, seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [np.concatenate([a.ravel() for a in sampler.sample(rng)[::3]]) for _ in range(12)]

    a, b = SceneSampler(cuts, bgs), SceneSampler(cuts, bgs)
    first = draw(a, 5)
    assert all(np.array_equal(x, y) for x, y in zip(first, draw(b, 5), strict=True))
    a.reset()
    assert all(np.array_equal(x, y) for x, y in zip(first, draw(a, 5), strict=True))
    a.reset()
    assert not all(np.array_equal(x, y) for x, y in zip(first, draw(a, 6), strict=True))
    other = SceneSampler(cuts, bgs, seed=TRAIN_SCENE_SEED + 1)
    assert not all(np.array_equal(x, y) for x, y in zip(first, draw(other, 5), strict=True))


def test_scenes_use_only_train_cutouts_and_backgrounds(tmp_path: Path) -> None:
    """--default-data --scene-frac 1: the scenes' cut-outs and backgrounds are all train pictures (none is an
    evaluate, select or calibrate one by name or pixels), drawn with a seed other than the evaluation set's, and the
    sidecar's records list them."""
    from imx500_sam.data import catalogue
    from imx500_sam.data.composite_set import COMPOSITE_SEED
    from imx500_sam.data.fingerprint import cutout_pixels, pixel_sha256
    from imx500_sam.data.roles import REGISTERED, Role, load_index, role_of
    from imx500_sam.data.sources import fetch_cutouts
    from imx500_sam.train.distill import DistillOptions
    from imx500_sam.train.training_data import build_samplers

    opts = DistillOptions(
        out=tmp_path / "out", default_photos=True, default_cutouts=True, scene_frac=1.0, teacher="none"
    )
    logs: list[str] = []
    data = build_samplers(opts, log=logs.append, crop=CLAMPED)
    ((scenes, weight),) = data.samplers
    assert isinstance(scenes, SceneSampler) and weight == 1.0 and scenes.convention == CLAMPED
    assert scenes.seed == TRAIN_SCENE_SEED != COMPOSITE_SEED
    assert any(line.startswith("composite scenes:") for line in logs)
    train_cutouts = {p.name for p in fetch_cutouts() if "cartoon" not in p.name}
    cut_names = {c.name for c in scenes.cutouts}
    assert cut_names and cut_names <= train_cutouts and not cut_names & set(catalogue.EVALUATE_CUTOUTS)
    assert all(role_of(b.name) is Role.TRAIN for b in scenes.backgrounds)
    registered = {r.name for r in REGISTERED if r.role is not Role.TRAIN}
    assert not ({b.name for b in scenes.backgrounds} | cut_names) & registered
    others = {i.fingerprint.sha256 for i in load_index() if i.role is not Role.TRAIN}
    assert others and not {pixel_sha256(cutout_pixels(c.rgba)) for c in scenes.cutouts} & others
    assert not {pixel_sha256(b.rgb) for b in scenes.backgrounds} & others
    recorded = {r.name for r in data.training}
    assert cut_names | {b.name for b in scenes.backgrounds} <= recorded


def _files(tmp_path: Path) -> tuple[Path, Path]:
    cut, bg = tmp_path / "cutouts", tmp_path / "bg"
    cut.mkdir()
    bg.mkdir()
    for (name, colour), shape in zip(COLOURS.items(), ("disc", "box", "disc"), strict=True):
        cv2.imwrite(str(cut / name), cv2.cvtColor(_cutout(colour, shape), cv2.COLOR_RGBA2BGRA))
    cv2.imwrite(str(bg / "bg.png"), np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    return cut, bg


def test_scene_frac_mixes_with_cut_and_paste(tmp_path: Path) -> None:
    """--scene-frac F: the other sources keep their proportions in the remaining 1 - F."""
    from imx500_sam.train.distill import DistillOptions
    from imx500_sam.train.samples import PasteSampler
    from imx500_sam.train.training_data import build_samplers

    cut, bg = _files(tmp_path)
    opts = DistillOptions(out=tmp_path / "out", photos=bg, cutouts=cut, scene_frac=0.25, teacher="none")
    (paste, wp), (scenes, ws) = build_samplers(opts, log=lambda _: None).samplers
    assert isinstance(paste, PasteSampler) and isinstance(scenes, SceneSampler)
    assert (wp, ws) == (0.75, 0.25)


def test_distill_on_scenes_only_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A tiny run on composite scenes alone (teacher none) trains on ground truth, records its images and the
    option; stopped mid-epoch and resumed it ends with the uninterrupted run's weights (the scene cache restarts
    with each epoch); --scene-frac without cut-outs is refused (exit 2)."""
    import torch

    from imx500_sam.cli import main
    from imx500_sam.errors import ExitCode
    from imx500_sam.train.distill import DistillOptions, run_distill

    cut, bg = _files(tmp_path)

    def opts(out: str, **kw: object) -> DistillOptions:
        base = dict(
            out=tmp_path / out, photos=bg, cutouts=cut, scene_frac=1.0, teacher="none", epochs=2,
            steps_per_epoch=2, batch=2, warmup_steps=1, low_res=32, low_res_epochs=2, threads=2, quiet=True,
        )  # fmt: skip
        return DistillOptions(**{**base, **kw})  # type: ignore[arg-type]

    full = run_distill(opts("full"))
    assert len(full.history) == 2 and full.history[0]["gt"] > 0 and full.history[0]["teacher"] == 0
    side = json.loads(full.checkpoint.with_suffix(".json").read_text())
    assert {r["name"] for r in side["training"]["images"]} == {"bg.png", *COLOURS}
    assert side["training"]["options"]["scene_frac"] == 1.0
    run_distill(opts("part", max_steps=3))
    resumed = run_distill(opts("part", resume=True))
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in full.history], rel=1e-4)
    a = torch.load(full.checkpoint, weights_only=True)
    b = torch.load(resumed.checkpoint, weights_only=True)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)

    rc = main(["distill", "-o", str(tmp_path / "x"), "--photos", str(bg), "--scene-frac", "0.5", "--teacher", "none"])
    assert rc == ExitCode.BAD_INPUT and "--scene-frac needs cut-outs" in capsys.readouterr().err
    assert not list((tmp_path / "x").glob("*"))  # no checkpoint, no history
