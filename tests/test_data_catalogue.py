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
