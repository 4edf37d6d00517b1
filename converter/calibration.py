"""Calibration data: prompt-style 96x96 crops (square, box grown 10%) cut from real photos.

Photos come from a folder the user gives, or else from the project's photo catalogue
(``imx500_sam.data.catalogue``): camera-like photographs bundled in packages the ``convert`` extra
installs (scikit-image, scikit-learn). The default held-out accuracy crops come from other photos
of the catalogue (``HELD_OUT``), never from a calibration photo.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from imx500_sam.data import catalogue
from imx500_sam.errors import BadInputError
from imx500_sam.prompt import SHIFTED, crop, prompt_roi, to_model_input

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class Photo:
    """A real RGB photo and where it came from."""

    source: str
    rgb: np.ndarray


def _read_rgb(path: Path) -> np.ndarray | None:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.shape[0] < 32 or img.shape[1] < 32:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_photos(folder: Path | None = None) -> list[Photo]:
    """Photos from ``folder`` (recursively), or the catalogue's calibration photos when ``folder`` is None."""
    photos: list[Photo] = []
    if folder is not None:
        folder = Path(folder)
        if not folder.is_dir():
            raise BadInputError(f"--calib {folder}: no such folder.", hint="Give a folder of .jpg/.png photos.")
        for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            rgb = _read_rgb(path)
            if rgb is not None:
                photos.append(Photo(str(path), rgb))
        if not photos:
            raise BadInputError(
                f"--calib {folder}: no readable photos (>= 32x32) found.",
                hint=f"Put photos ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder.",
            )
        return photos
    return bundled_photos(catalogue.CALIBRATION)


def held_out_photos() -> list[Photo]:
    """The catalogue's held-out photos: camera scenes that calibration never uses."""
    return bundled_photos(catalogue.HELD_OUT)


def bundled_photos(keys: tuple[str, ...]) -> list[Photo]:
    """Catalogue photos bundled in scikit-image / scikit-learn, by key, in the given order."""
    try:
        import skimage.data
        from sklearn.datasets import load_sample_images
    except ImportError as exc:  # pragma: no cover - the convert extra installs both
        raise BadInputError(
            "no calibration photos: scikit-image / scikit-learn are missing.",
            hint="Install the convert extra (pip install 'imx500-sam[convert]') or pass --calib PHOTOS_DIR.",
        ) from exc
    data_dir = Path(skimage.data.__file__).parent
    sklearn_images = None
    photos: list[Photo] = []
    for key in keys:
        entry = catalogue.bundled(key)
        if entry.package == "scikit-learn":
            if sklearn_images is None:
                ds = load_sample_images()
                sklearn_images = {Path(f).name: img for f, img in zip(ds.filenames, ds.images, strict=True)}
            photos.append(Photo(f"sklearn.datasets/{key}", np.ascontiguousarray(sklearn_images[key])))
        else:
            rgb = _read_rgb(data_dir / key)
            if rgb is None:
                raise BadInputError(f"skimage.data/{key}: missing or unreadable.", hint="Reinstall scikit-image.")
            photos.append(Photo(f"skimage.data/{key}", rgb))
    return photos


def prompt_crops(
    photos: list[Photo], count: int, size: int | tuple[int, int] = 96, seed: int = 0, convention: str = SHIFTED
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
