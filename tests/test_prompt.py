"""Prompt geometry: examples worked by hand (property tests live with the runtime tests)."""

from __future__ import annotations

import numpy as np
import pytest

from imx500_sam.prompt import ROI, crop, iou, mask_bbox, paste_mask, square_roi, to_model_input


def test_square_roi_grows_10_percent_around_centre() -> None:
    # box 100x50 centred at (250, 225): side = 110, top-left = (195, 170)
    assert square_roi((200, 200, 100, 50), (1000, 1000)) == ROI(195, 170, 110)


def test_square_roi_is_clamped_into_the_image() -> None:
    assert square_roi((0, 0, 40, 40), (100, 80)) == ROI(0, 0, 44)
    assert square_roi((90, 70, 10, 10), (100, 80)) == ROI(89, 69, 11)
    # larger than the short side: shrinks to it
    assert square_roi((0, 0, 100, 80), (100, 80)) == ROI(10, 0, 80)


def test_bad_boxes() -> None:
    with pytest.raises(ValueError):
        square_roi((0, 0, 0, 10), (100, 100))
    with pytest.raises(ValueError):
        square_roi((0, 0, float("nan"), 10), (100, 100))


def test_crop_to_model_input_and_back() -> None:
    img = np.zeros((200, 300, 3), np.uint8)
    img[50:150, 100:200] = 255
    roi = square_roi((100, 50, 100, 100), (300, 200))
    c = crop(img, roi, 96)
    assert c.shape == (96, 96, 3)
    x = to_model_input(c)
    assert x.shape == (3, 96, 96) and x.dtype == np.float32 and x.max() == 255 / 256
    # a "perfect" model: mask = bright pixels of the crop; pasted back it is the square
    back = paste_mask((c[..., 0] > 127).astype(np.float32), roi, (300, 200)) > 0.5
    truth = np.zeros((200, 300), bool)
    truth[50:150, 100:200] = True
    assert iou(back, truth) > 0.97
    assert mask_bbox(truth) == (100, 50, 100, 100)
    assert mask_bbox(np.zeros((4, 4))) is None


def test_crop_option_checks_the_value_once_for_every_command() -> None:
    from imx500_sam.errors import BadInputError
    from imx500_sam.prompt import CLAMPED, crop_option

    assert crop_option(None) is None and crop_option(CLAMPED) == CLAMPED
    with pytest.raises(BadInputError, match=r"^--crop: crop convention 'square': choose one of shifted, clamped"):
        crop_option("square")
