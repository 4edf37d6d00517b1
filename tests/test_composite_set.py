"""The composite evaluation set: deterministic, exact visible masks, readable COCO, and its pictures kept out of
training by the data-role registry."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from imx500_sam.data.composite import (
    ALPHA_HALF,
    Background,
    CompositeParams,
    Cutout,
    Placement,
    compose_scene,
    paste,
    visible_masks,
)
from imx500_sam.data.composite_set import evaluate_inputs, write_composite_coco


@pytest.fixture(scope="module")
def inputs() -> tuple[list[Cutout], list[Background], dict]:
    """The evaluate role's real cut-outs and backgrounds (fetched into the cache as a user's first run would)."""
    return evaluate_inputs()


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path: Path, inputs) -> None:
    """Two builds with one seed write identical files; another seed draws other scenes; scene k does not depend on
    how many scenes are drawn."""
    cutouts, backgrounds, prov = inputs
    a = write_composite_coco(tmp_path / "a", cutouts, backgrounds, 7, 3, provenance=prov)[0].parent
    b = write_composite_coco(tmp_path / "b", cutouts, backgrounds, 7, 3, provenance=prov)[0].parent
    c = write_composite_coco(tmp_path / "c", cutouts, backgrounds, 8, 2)[0].parent
    fa = _files(a)
    assert fa == _files(b) and len([k for k in fa if k.startswith("images/")]) == 3
    assert (a / "images" / "scene_0000.png").read_bytes() != (c / "images" / "scene_0000.png").read_bytes()
    first = compose_scene(cutouts, backgrounds, 7, 2)
    assert np.array_equal(first.rgb, cv2.cvtColor(cv2.imread(str(a / "images" / "scene_0002.png")), cv2.COLOR_BGR2RGB))
    meta = json.loads((a / "set.json").read_text())
    assert meta["seed"] == 7 and meta["role"] == "evaluate" and len(meta["cutouts"]) == len(cutouts)


def _square(name: str, side: int, colour: tuple[int, int, int], soft: bool = False) -> Cutout:
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[:, :, :3] = colour
    rgba[:, :, 3] = 255
    if soft:  # a one-pixel rim below half alpha and one above: only the rim above half belongs to the object
        rgba[0, :, 3] = ALPHA_HALF - 1
        rgba[-1, :, 3] = ALPHA_HALF
    return Cutout(name, rgba)


def test_masks_are_the_visible_alpha_exactly() -> None:
    """Hand-placed squares (one reaching outside the frame, one over two others, one with a soft rim): each mask is
    its alpha >= half inside the frame minus every later paste's, and the pixels show the topmost object."""
    p = CompositeParams(width=64, height=48)
    cutouts = [
        _square("red", 20, (255, 0, 0)),
        _square("green", 16, (0, 255, 0), soft=True),
        _square("blue", 12, (0, 0, 255)),
    ]
    placements = [
        Placement("red", 10, 10, 20, 20, False, 1.0),
        Placement("green", 22, 18, 16, 16, False, 1.0),  # covers red's lower right
        Placement("blue", 56, -4, 12, 12, False, 1.0),  # cut by the frame's top-right corner
        Placement("red", 0, 30, 20, 20, True, 1.0),  # cut by the bottom edge
        Placement("blue", 16, 14, 12, 12, False, 1.0),  # over both red (first) and green
    ]
    frame = np.full((48, 64, 3), 128, np.uint8)
    canvas, full, areas = paste(frame, cutouts, placements, p)
    vis = visible_masks(full)
    expected = [np.zeros((48, 64), bool) for _ in placements]
    expected[0][10:30, 10:30] = True
    expected[1][19:34, 22:38] = True  # rows 18 (alpha 127) excluded, 33 (alpha 128) included
    expected[2][0:8, 56:64] = True
    expected[3][30:48, 0:20] = True
    expected[4][14:26, 16:28] = True
    for i, e in enumerate(expected):
        assert np.array_equal(full[i], e), i
    occluded = [e.copy() for e in expected]
    for i in range(len(expected)):
        for j in range(i + 1, len(expected)):
            occluded[i] &= ~expected[j]
    for i, e in enumerate(occluded):
        assert np.array_equal(vis[i], e), i
    assert not vis[0][20:26, 22:28].any() and vis[0][10:14, 10:30].all()  # red lost what green and blue cover
    assert areas == [400, 240, 144, 400, 144]  # pasted pixels, inside the frame or not (green: 15 rows of 16)
    assert (canvas[vis[4]] == (0, 0, 255)).all() and (canvas[19:33][vis[1][19:33]] == (0, 255, 0)).all()
    assert not np.logical_and(vis[0], vis[1]).any()


def test_scene_instances_are_exact_and_disjoint(inputs) -> None:
    """On real cut-outs: instances are disjoint, each is its object's alpha minus later pastes (re-pasted from the
    recorded placements), boxes are tight, and scenes hold neighbours."""
    cutouts, backgrounds, _ = inputs
    p = CompositeParams()
    neighbours = []
    for k in range(3):
        scene = compose_scene(cutouts, backgrounds, 19, k, p)
        assert scene.rgb.shape == (p.height, p.width, 3) and scene.rgb.dtype == np.uint8
        _, full, _ = paste(np.zeros((p.height, p.width, 3), np.uint8), cutouts, scene.placements, p)
        union = np.zeros((p.height, p.width), bool)
        for inst in scene.instances:
            later = np.logical_or.reduce(full[inst.order + 1 :]) if inst.order + 1 < len(full) else False
            assert np.array_equal(inst.mask, full[inst.order] & ~later)
            assert not (union & inst.mask).any()
            union |= inst.mask
            ys, xs = np.nonzero(inst.mask)
            assert inst.bbox == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
            assert inst.cutout == scene.placements[inst.order].cutout
            neighbours.append(inst.neighbours)
    assert max(neighbours) >= 2


def test_set_loads_through_coco(tmp_path: Path, inputs) -> None:
    """The written set reads back through imx500_sam.data.coco: every instance, masks equal to the scene's."""
    from imx500_sam.data.coco import load_coco

    cutouts, backgrounds, _ = inputs
    ann, images = write_composite_coco(tmp_path / "set", cutouts, backgrounds, 19, 2)
    data = load_coco(ann, images)
    assert [im.path.name for im in data] == ["scene_0000.png", "scene_0001.png"]
    for k, im in enumerate(data):
        scene = compose_scene(cutouts, backgrounds, 19, k)
        assert len(im.instances) == len(scene.instances) > 0
        for a, inst in zip(im.instances, scene.instances, strict=True):
            assert np.array_equal(a.mask(im.height, im.width).astype(bool), inst.mask)
            assert a.bbox == inst.bbox


def test_eval_composite_flag_scores_the_set(tmp_path: Path, monkeypatch, capsys) -> None:
    """eval --composite scores the composite set (a small one here) as role evaluate, with its name."""
    from imx500_sam.cli import main
    from imx500_sam.data import composite_set

    monkeypatch.setattr(composite_set, "COMPOSITE_SCENES", 1)
    monkeypatch.setattr("imx500_sam.data.composite_set.cache_dir", lambda: tmp_path)
    rc = main(["eval", "--composite", "--limit", "3", "--json"])
    out = capsys.readouterr().out
    assert rc == 0, out
    report = json.loads(out)
    assert report["set"]["role"] == "evaluate" and "composite" in report["set"]["name"]
    assert report["results"][0]["instances"] == 3


def test_distill_refuses_an_evaluate_cutout(tmp_path: Path, capsys) -> None:
    """An evaluate cut-out among distill's --cutouts (renamed, resized, its transparent pixels recoloured): exit 2,
    naming both roles, before any training."""
    from imx500_sam.cli import main
    from imx500_sam.data.roles import Kind, Role, load_role
    from imx500_sam.data.sources import read_rgba
    from imx500_sam.errors import ExitCode

    cut = load_role(Role.EVALUATE, Kind.CUTOUT)[4]
    rgba = cv2.resize(read_rgba(cut.path), None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA)
    rgba[rgba[:, :, 3] == 0, :3] = (255, 0, 255)
    (tmp_path / "cutouts").mkdir()
    cv2.imwrite(str(tmp_path / "cutouts" / "mine.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    rc = main(["distill", "-o", str(tmp_path / "out"), "--cutouts", str(tmp_path / "cutouts"), "--teacher", "none"])
    err = capsys.readouterr().err
    assert rc == ExitCode.BAD_INPUT, err
    assert "mine.png (role train)" in err and cut.record.name in err and "role evaluate" in err
    assert not list((tmp_path / "out").glob("*"))


def test_the_evaluate_pictures_are_none_the_default_trained_on() -> None:
    """The training cut-outs (tuxpaint's, role train) are no registered cut-out of another role (the check that
    refuses the planted one above lets them through), and the bundled default's sidecar lists none of the
    evaluate cut-outs and backgrounds among its training images (by name or pixels)."""
    from imx500_sam.data.roles import Kind, Role, check_against_registry, load_role, model_training_images, named_cutout
    from imx500_sam.data.sources import fetch_cutouts, read_rgba
    from imx500_sam.defaults import DEFAULT_CHECKPOINT

    check_against_registry(Role.TRAIN, [named_cutout(p.name, read_rgba(p)) for p in fetch_cutouts()])
    trained = model_training_images(DEFAULT_CHECKPOINT)
    assert len(trained) > 200
    evaluate = load_role(Role.EVALUATE, Kind.CUTOUT) + load_role(Role.EVALUATE, Kind.BACKGROUND)
    assert len(evaluate) == 120
    names = {Path(r.name).name for r in trained}
    shas = {r.sha256 for r in trained}
    for im in evaluate:
        assert im.record.name not in names and im.record.sha256 not in shas
        assert im.path.name not in names
