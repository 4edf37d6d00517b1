"""Prompt geometry properties (hypothesis): box -> square sensor ROI -> crop -> mask pasted back."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imx500_sam.facts import SENSOR_FULL_SIZE
from imx500_sam.prompt import ROI, crop, crop_rect, paste_mask, square_roi
from imx500_sam.runtime.geometry import SensorGeometry
from tests.support.picamera2_host import import_imx500_module

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def image_and_box(draw, min_side: int = 16, max_side: int = 1600):
    w = draw(st.integers(min_side, max_side))
    h = draw(st.integers(min_side, max_side))
    bw = draw(st.floats(1.0, float(w)))
    bh = draw(st.floats(1.0, float(h)))
    x = draw(st.floats(0.0, w - bw))
    y = draw(st.floats(0.0, h - bh))
    return (w, h), (x, y, bw, bh)


def ramp(size: tuple[int, int], a: float, b: float) -> np.ndarray:
    """An affine image f(x, y) = a x + b y (bilinear and area resampling reproduce it exactly)."""
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float64)
    return (a * xs + b * ys).astype(np.float32)


@SETTINGS
@given(image_and_box())
def test_box_gives_square_roi_inside_sensor_holding_grown_box(case):
    size, box = case
    geo = SensorGeometry.for_output(size)
    roi = geo.prompt_roi(box)
    fw, fh = SENSOR_FULL_SIZE
    assert roi.side >= 1 and roi.x >= 0 and roi.y >= 0 and roi.x + roi.side <= fw and roi.y + roi.side <= fh
    # the ScalerCrop keeps the output's aspect ratio and lies inside the sensor
    cx, cy, cw, ch = geo.scaler_crop
    assert cx >= 0 and cy >= 0 and cx + cw <= fw and cy + ch <= fh
    assert abs(cw / ch - size[0] / size[1]) <= 2 / min(cw, ch) + 1 / min(size) * cw / ch
    # the box grown 10% around its centre, in sensor pixels
    sx, sy, sw, sh = geo.output_to_sensor(box)
    gw, gh = sw * 1.1, sh * 1.1
    gx, gy = sx + sw / 2 - gw / 2, sy + sh / 2 - gh / 2
    if max(gw, gh) <= min(fw, fh) - 1 and gx >= 0 and gy >= 0 and gx + gw <= fw and gy + gh <= fh:
        tol = 1.0  # rounding of the side and of the corner to whole sensor pixels
        assert roi.x <= gx + tol and roi.y <= gy + tol
        assert roi.x + roi.side >= gx + gw - tol and roi.y + roi.side >= gy + gh - tol


@SETTINGS
@given(image_and_box(), st.floats(-3, 3), st.floats(-3, 3))
def test_paste_back_inverts_the_emulator_crop(case, a, b):
    size, box = case
    geo = SensorGeometry.for_output(size)
    roi = geo.prompt_roi(box)
    img = ramp(size, a, b)
    rect = geo.roi_rect(roi)
    tensor = crop_rect(img, rect, (96, 96))
    back = geo.paste_mask(tensor, roi)
    x, y, w, h = geo.sensor_to_output(roi.xywh)
    # interior of the ROI that lies inside the image; one input pixel and one image pixel from the edges
    m = max(w / 96, 1.0) + 1.0
    x0, y0 = max(int(np.ceil(x + m)), 0), max(int(np.ceil(y + m)), 0)
    x1, y1 = min(int(x + w - m), size[0]), min(int(y + h - m), size[1])
    if x1 <= x0 or y1 <= y0 or rect[0] < 0 or rect[1] < 0:
        return
    if rect[0] + rect[2] > size[0] or rect[1] + rect[3] > size[1]:
        return  # part of the crop is black padding; covered by test_crop_outside_source_is_black
    err = np.abs(back[y0:y1, x0:x1] - img[y0:y1, x0:x1]).max()
    # crop and paste use the same whole-pixel rectangle: only resampling differs (area at a non-integer ratio)
    assert err <= (abs(a) + abs(b)) * 0.25 + 1e-3
    # outside the ROI the pasted mask is zero
    assert np.all(back[:, : max(0, int(np.floor(x - 0.5)))] == 0)


@SETTINGS
@given(image_and_box(min_side=96, max_side=800), st.floats(-3, 3), st.floats(-3, 3))
def test_prompt_paste_mask_inverts_prompt_crop(case, a, b):
    size, box = case
    roi = square_roi(box, size)
    img = ramp(size, a, b)
    back = paste_mask(crop(img, roi, 96), roi, size)
    m = max(roi.side / 96, 1.0) + 1.0
    x0, y0 = int(np.ceil(roi.x + m)), int(np.ceil(roi.y + m))
    x1, y1 = int(roi.x + roi.side - m), int(roi.y + roi.side - m)
    if x1 > x0 and y1 > y0:
        # area resampling at a non-integer ratio is not exactly linear: a quarter pixel
        assert np.abs(back[y0:y1, x0:x1] - img[y0:y1, x0:x1]).max() <= (abs(a) + abs(b)) * 0.25 + 1e-3


def test_identity_geometry_paste_is_prompt_paste():
    """When output pixels are sensor pixels, the runtime paste equals prompt.paste_mask."""
    geo = SensorGeometry((4056, 3040), (0, 0, 4056, 3040))
    rng = np.random.default_rng(0)
    mask = rng.normal(size=(96, 96)).astype(np.float32)
    roi = ROI(1000, 700, 500)
    ours = geo.paste_mask(mask, roi)
    ref = paste_mask(mask, roi, (4056, 3040))
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_crop_outside_source_is_black():
    img = np.full((10, 10, 3), 200, np.uint8)
    out = crop_rect(img, (-10, 0, 20, 10), (20, 10))
    assert (out[:, :10] == 0).all() and (out[:, 10:] == 200).all()


@pytest.mark.parametrize(
    ("output", "crop"),
    [((640, 480), None), ((1920, 1080), None), ((500, 375), None), ((800, 600), (1000, 800, 2000, 1500))],
)
def test_roi_in_output_matches_picamera2_get_roi_scaled(output, crop):
    """Our ROI -> output mapping agrees with picamera2's get_roi_scaled (libcamera integer maths)."""
    import types

    mod = import_imx500_module()
    libcamera = __import__("libcamera")
    geo = SensorGeometry(output, crop) if crop else SensorGeometry.for_output(output)
    imx = mod.IMX500.__new__(mod.IMX500)
    imx.device_fd = None
    raw = (2028, 1520)
    picam2 = types.SimpleNamespace(camera_configuration=lambda: {"main": {"size": output}, "raw": {"size": raw}})
    rng = np.random.default_rng(1)
    for _ in range(50):
        x, y = rng.uniform(0, output[0] * 0.7), rng.uniform(0, output[1] * 0.7)
        box = (x, y, rng.uniform(8, 200), rng.uniform(8, 200))
        roi = geo.prompt_roi(box)
        imx._IMX500__cfg = {"network_file": "", "input_tensor": {}, "roi": libcamera.Rectangle(*roi.xywh)}
        request = types.SimpleNamespace(picam2=picam2, get_metadata=lambda: {"ScalerCrop": geo.scaler_crop})
        theirs = imx.get_roi_scaled(request)
        ours = geo.roi_output_rect(roi)
        # picamera2 truncates (x and width separately) where we round: at most 2 output pixels apart
        assert np.abs(np.array(theirs) - np.array(ours)).max() <= 2, (roi, theirs, ours)


@SETTINGS
@given(st.integers(1, 40), st.integers(1, 40), st.integers(0, 2**32 - 1), st.floats(0, 1))
def test_fast_bbox_is_mask_bbox(h, w, seed, density):
    from imx500_sam.prompt import mask_bbox
    from imx500_sam.runtime.session import fast_bbox

    m = np.random.default_rng(seed).random((h, w)) < density
    assert fast_bbox(m) == mask_bbox(m)


def test_overlay_tints_mask_boxes_roi_and_keeps_the_rest():
    from imx500_sam.runtime.overlay import colour, draw_overlay, status_text

    img = np.full((120, 160, 3), 100, np.uint8)
    img.flags.writeable = False  # frames are shared: drawing must copy
    mask = np.zeros((120, 160), bool)
    mask[40:80, 50:100] = True
    out = draw_overlay(img, [mask, None], [(45, 35, 60, 50), (0, 0, 10, 10)], [False, True], status_text(30.0, 11.8))
    assert out.shape == img.shape and (img == 100).all()
    inner = out[50:70, 60:90].reshape(-1, 3)
    expected = (np.array([100, 100, 100]) * 0.55 + np.array(colour(0)) * 0.45).astype(np.uint8)
    assert (np.abs(inner.astype(int) - expected).max(axis=1) <= 1).all()
    assert (out[100:118, 120:158] == 100).all()  # far from mask, ROI and text: untouched
    assert tuple(out[35, 70]) == colour(0)  # the ROI's top edge
    assert tuple(out[9, 5]) == (0, 0, 255)  # a lost prompt's ROI is red


def test_overlay_draws_the_prompt_box_inside_its_roi():
    from imx500_sam.runtime.overlay import colour, draw_overlay

    img = np.full((120, 160, 3), 100, np.uint8)
    out = draw_overlay(img, [None], [(20, 10, 100, 100)], [False], boxes=[(40.2, 30.0, 50.0, 60.0)])
    assert tuple(out[10, 60]) == colour(0)  # the ROI's top edge (1 px)
    assert tuple(out[11, 60]) == (100, 100, 100)
    assert tuple(out[30, 60]) == colour(0) and tuple(out[31, 60]) == colour(0)  # the prompt box's top edge (2 px)
    assert tuple(out[60, 40]) == colour(0)  # its left edge, rounded to the pixel
    assert tuple(out[60, 65]) == (100, 100, 100)  # inside the box: untouched (no mask)
