"""Prompt geometry (numpy + OpenCV only): box (clamped to its frame) -> ROI -> model crop (stretched to the input
size) -> mask back.

Boxes and ROIs are ``(x, y, w, h)`` in pixels of the image they refer to. The ROI is the
prompt: PicoSAM3 segments the object at the centre of the crop. How a box becomes its ROI is the model's
*crop convention*, the one it was trained with (kept in its JSON sidecar, see ``imx500_sam.model``):

- ``shifted``: imx500-sam's (the bundled model's training): a square of side 1.1 x the box's longer side about
  the box's centre, *shifted* to lie inside the image (always square; at an edge the object is off-centre);
- ``clamped``: the authors' ``pad_bbox_to_square`` (their training and evaluation crop): the box padded by 10% of
  its width and height on each side, made square about its centre, *clamped* to the image and truncated to whole
  pixels (at an edge the crop is not square and is stretched to the input size; the object stays near its centre);
- ``as-drawn``: the box itself, unpadded and unsquared (the authors' IMX500 demo; for comparison only).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from imx500_sam.errors import BadInputError

GROW = 0.10  # shifted: the square's side is 1.1 x the box's longer side
AUTHORS_PADDING = 0.10  # clamped: the authors' pad_bbox_to_square(padding=0.1), per side
SHIFTED = "shifted"
CLAMPED = "clamped"
AS_DRAWN = "as-drawn"
CROP_CONVENTIONS = (SHIFTED, CLAMPED, AS_DRAWN)


@dataclass(frozen=True)
class ROI:
    """A region of an image, integer pixels: top-left (x, y), width and height (``ROI(x, y, side)``: a square)."""

    x: int
    y: int
    w: int
    h: int = -1  # -1: the same as w

    def __post_init__(self) -> None:
        if self.h == -1:
            object.__setattr__(self, "h", self.w)

    @property
    def side(self) -> int:
        """The side of a square ROI (ValueError for a rectangle)."""
        if self.w != self.h:
            raise ValueError(f"ROI {self.xywh} is not square")
        return self.w

    @property
    def xywh(self) -> tuple[int, int, int, int]:
        """(x, y, w, h)."""
        return (self.x, self.y, self.w, self.h)


def check_convention(convention: str) -> str:
    """``convention`` if it is a known crop convention, else ValueError naming them."""
    if convention not in CROP_CONVENTIONS:
        raise ValueError(f"crop convention {convention!r}: choose one of {', '.join(CROP_CONVENTIONS)}")
    return convention


def crop_option(value: str | None, option: str = "--crop") -> str | None:
    """A crop convention given on the command line, checked (None: not given); BadInputError naming the choices."""
    if value is None:
        return None
    try:
        return check_convention(value)
    except ValueError as exc:
        raise BadInputError(f"{option}: {exc}.") from exc


def _check_box(box: tuple[float, float, float, float], image_size: tuple[int, int]) -> tuple[float, ...]:
    x, y, w, h = (float(v) for v in box)
    if int(image_size[0]) < 1 or int(image_size[1]) < 1:
        raise ValueError(f"image size must be positive, got {image_size}")
    if not (w > 0 and h > 0) or not np.isfinite([x, y, w, h]).all():
        raise ValueError(f"box must have a positive width and height, got {box}")
    return (x, y, w, h)


def clamped_roi(
    box: tuple[float, float, float, float], image_size: tuple[int, int], padding: float = AUTHORS_PADDING
) -> ROI:
    """The authors' ``pad_bbox_to_square(bbox, W, H, padding)``: padded, squared, clamped, ``int()``-truncated.

    The same arithmetic as their code (float64), so their crops are reproduced to the pixel; at least 1x1.
    """
    x, y, w, h = _check_box(box, image_size)
    img_w, img_h = int(image_size[0]), int(image_size[1])
    pw, ph = w * padding, h * padding
    x, y, w, h = x - pw, y - ph, w + 2 * pw, h + 2 * ph
    size = max(w, h)
    cx, cy = x + w / 2, y + h / 2
    x1, y1 = cx - size / 2, cy - size / 2
    x2, y2 = x1 + size, y1 + size
    x1, y1, x2, y2 = int(max(0, x1)), int(max(0, y1)), int(min(img_w, x2)), int(min(img_h, y2))
    x1, y1 = min(x1, img_w - 1), min(y1, img_h - 1)
    return ROI(x1, y1, max(1, x2 - x1), max(1, y2 - y1))


def drawn_roi(box: tuple[float, float, float, float], image_size: tuple[int, int]) -> ROI:
    """The box itself on whole pixels, inside the image (the authors' demo sends the drawn rectangle as is)."""
    x, y, w, h = _check_box(box, image_size)
    img_w, img_h = int(image_size[0]), int(image_size[1])
    x0, y0 = min(max(round(x), 0), img_w - 1), min(max(round(y), 0), img_h - 1)
    x1, y1 = min(max(round(x + w), x0 + 1), img_w), min(max(round(y + h), y0 + 1), img_h)
    return ROI(x0, y0, x1 - x0, y1 - y0)


def prompt_roi(
    box: tuple[float, float, float, float], image_size: tuple[int, int], convention: str = SHIFTED, grow: float = GROW
) -> ROI:
    """The ROI of a prompt box under a crop convention (see the module docstring); ``grow``: ``shifted`` only."""
    if check_convention(convention) == CLAMPED:
        return clamped_roi(box, image_size)
    if convention == AS_DRAWN:
        return drawn_roi(box, image_size)
    return square_roi(box, image_size, grow)


def _fmt(box: tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" for v in box)


def clip_box_to_frame(
    box: tuple[float, ...] | list[float], frame: tuple[int, int], what: str = "box"
) -> tuple[tuple[float, float, float, float], str | None]:
    """The one rule for a prompt box and its frame (``run``, ``serve``, the API, ``eval``).

    ``box`` (x, y, w, h) and ``frame`` (w, h) in pixels of the same image. A box inside the frame comes back as
    it is with no notice; a box partly outside is clamped to the frame and comes back with a one-line notice
    saying so; a box with less than one pixel inside (or not four finite numbers, or no positive size) is a
    BadInputError.
    """
    if len(box) != 4:
        raise BadInputError(f"{what} {tuple(box)}: give four numbers x,y,w,h.")
    x, y, w, h = (float(v) for v in box)
    if not np.isfinite([x, y, w, h]).all() or w <= 0 or h <= 0:
        raise BadInputError(f"{what} {_fmt((x, y, w, h))}: width and height must be positive numbers.")
    fw, fh = int(frame[0]), int(frame[1])
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(fw), x + w), min(float(fh), y + h)
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise BadInputError(
            f"{what} {_fmt((x, y, w, h))} lies outside the {fw}x{fh} frame.",
            hint="Boxes are x,y,w,h in pixels of the output image, with the top-left corner at 0,0.",
        )
    clipped = (x0, y0, x1 - x0, y1 - y0)
    if clipped == (x, y, w, h):
        return clipped, None
    return clipped, f"{what} {_fmt((x, y, w, h))} reaches outside the {fw}x{fh} frame: clamped to {_fmt(clipped)}."


def clamp_prompt_box(
    box: tuple[float, ...] | list[float], frame: tuple[int, int], what: str, notices: list[str]
) -> tuple[float, float, float, float]:
    """``clip_box_to_frame`` for a run over many boxes (``eval``): a clamp notice goes to ``notices``."""
    clipped, notice = clip_box_to_frame(box, frame, what=what)
    if notice:
        notices.append(notice)
    return clipped


def clamped_summary(notices: list[str], total: int) -> list[str]:
    """One line for the boxes of a run that were clamped (the first as an example); none when none were."""
    if not notices:
        return []
    return [f"{len(notices)} of {total} boxes reach outside their image and were clamped to it ({notices[0]})"]


def square_roi(box: tuple[float, float, float, float], image_size: tuple[int, int], grow: float = GROW) -> ROI:
    """Square ROI around ``box`` (x, y, w, h), grown by ``grow``, clamped to ``image_size`` (w, h).

    The side is the larger of the grown width and height. The square is shifted to lie inside
    the image; if it is larger than the image's short side it shrinks to that side.
    """
    x, y, w, h = _check_box(box, image_size)
    img_w, img_h = int(image_size[0]), int(image_size[1])
    side = max(w, h) * (1.0 + grow)
    side_i = int(min(max(round(side), 1), img_w, img_h))
    cx, cy = x + w / 2.0, y + h / 2.0
    x0 = int(round(cx - side_i / 2.0))
    y0 = int(round(cy - side_i / 2.0))
    x0 = min(max(x0, 0), img_w - side_i)
    y0 = min(max(y0, 0), img_h - side_i)
    return ROI(x0, y0, side_i)


def crop_rect(image: np.ndarray, rect: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """Crop integer ``rect`` (x, y, w, h) from an HxW(xC) image and resize it to ``size`` (w, h), same dtype.

    Parts of ``rect`` outside the image are black (a region the image does not cover). Area averaging
    when shrinking, bilinear when enlarging. The one crop of the toolkit: prompt crops and the emulator's.
    """
    x, y, w, h = (int(v) for v in rect)
    if w < 1 or h < 1:
        raise ValueError(f"empty crop rectangle {rect}")
    ih, iw = image.shape[:2]
    xa, ya, xb, yb = max(x, 0), max(y, 0), min(x + w, iw), min(y + h, ih)
    if xa == x and ya == y and xb == x + w and yb == y + h:
        patch = image[y : y + h, x : x + w]
    else:
        patch = np.zeros((h, w, *image.shape[2:]), dtype=image.dtype)
        if xb > xa and yb > ya:
            patch[ya - y : yb - y, xa - x : xb - x] = image[ya:yb, xa:xb]
    interp = cv2.INTER_AREA if (w > size[0] or h > size[1]) else cv2.INTER_LINEAR
    return cv2.resize(patch, (int(size[0]), int(size[1])), interpolation=interp)


def crop(image: np.ndarray, roi: ROI, size: int = 96) -> np.ndarray:
    """Crop ``roi`` (inside the image) from an HxWxC image and resize (stretch) it to ``size`` x ``size``."""
    ih, iw = image.shape[:2]
    if roi.x < 0 or roi.y < 0 or roi.x + roi.w > iw or roi.y + roi.h > ih:
        raise ValueError(f"ROI {roi.xywh} is not inside the image of shape {image.shape}")
    return crop_rect(image, roi.xywh, (size, size))


def to_model_input(crop_rgb: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 RGB crop -> float32 (3, H, W) in [0, 1), quantised as the IMX500 does (x/256)."""
    if crop_rgb.dtype != np.uint8 or crop_rgb.ndim != 3 or crop_rgb.shape[2] != 3:
        raise ValueError(f"expected a uint8 HxWx3 RGB crop, got {crop_rgb.dtype} {crop_rgb.shape}")
    return np.ascontiguousarray(crop_rgb.transpose(2, 0, 1), dtype=np.float32) / 256.0


def paste_rect(mask: np.ndarray, rect: tuple[int, int, int, int], image_size: tuple[int, int]) -> np.ndarray:
    """Resize a model-resolution mask (probabilities or logits) onto integer ``rect`` (x, y, w, h) of an image.

    Returns float32 (h, w) of ``image_size`` (w, h), zero outside ``rect``; a ``rect`` partly outside the image
    is clipped, not squeezed. Bilinear. The one paste of the toolkit: prompt masks and the runtime's.
    """
    m = np.asarray(mask, dtype=np.float32).squeeze()
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {np.shape(mask)}")
    img_w, img_h = int(image_size[0]), int(image_size[1])
    out = np.zeros((img_h, img_w), dtype=np.float32)
    x, y, w, h = (int(v) for v in rect)
    x0, y0, x1, y1 = max(0, x), max(0, y), min(img_w, x + w), min(img_h, y + h)
    if x1 <= x0 or y1 <= y0:
        return out
    resized = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    out[y0:y1, x0:x1] = resized[y0 - y : y1 - y, x0 - x : x1 - x]
    return out


def paste_mask(mask: np.ndarray, roi: ROI, image_size: tuple[int, int]) -> np.ndarray:
    """Resize a model-resolution mask into the ROI of an image: float32 (h, w) of ``image_size``, zero outside."""
    return paste_rect(mask, roi.xywh, image_size)


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box (x, y, w, h) of the nonzero pixels of a binary mask, or None if empty."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    return (x0, y0, x1 - x0 + 1, y1 - y0 + 1)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two binary masks (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)
