"""Picture identity by decoded pixels (numpy + OpenCV): two files of the same picture, or a crop or resize of it,
are one image whatever their names.

- ``pixel_sha256``: exact identity, the sha256 of the decoded RGB pixels (what records carry);
- ``Fingerprint.phash``: a 64-bit DCT hash of the 32x32 grey picture (survives resizing and re-encoding);
- ``Fingerprint.thumb``: a grey thumbnail (longest side ``THUMB``), for a crop-tolerant check: the smaller picture,
  scaled to each candidate share of the larger one's width, is template-matched inside it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import cv2
import numpy as np

THUMB = 48  # longest side of the stored grey thumbnail
PHASH_MAX_DISTANCE = 10  # of 64 bits: a resize or re-encode of one picture stays well under this
CROP_MIN_CORRELATION = 0.93  # normalised cross-correlation of a crop inside its source (grey thumbnails)
CROP_SHARES = tuple(float(s) for s in np.geomspace(0.3, 1.0, 12))  # crop width / source width tried
_MIN_TEMPLATE = 12  # px: a smaller template says nothing
_MIN_TEMPLATE_STD = 6.0  # grey levels: a flat template matches anything


def pixel_sha256(rgb: np.ndarray) -> str:
    """sha256 of the decoded RGB pixels (uint8 HxWx3, row-major)."""
    arr = np.ascontiguousarray(rgb, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected uint8 HxWx3 RGB pixels, got {arr.shape}")
    return hashlib.sha256(arr.tobytes()).hexdigest()


CUTOUT_GREY = 128  # what a cut-out is seen against for its identity (its transparent pixels' colours are arbitrary)


def cutout_pixels(rgba: np.ndarray) -> np.ndarray:
    """A cut-out's picture for identity: its RGB composited by its alpha over mid-grey (uint8 HxWx3).

    Two files of one cut-out match whatever colours their transparent pixels hold; a silhouette on black would
    make every round object look alike."""
    a = np.asarray(rgba)
    if a.ndim != 3 or a.shape[2] != 4:
        raise ValueError(f"expected uint8 HxWx4 RGBA pixels, got {a.shape}")
    alpha = a[:, :, 3:4].astype(np.uint16)
    return ((a[:, :, :3].astype(np.uint16) * alpha + CUTOUT_GREY * (255 - alpha) + 127) // 255).astype(np.uint8)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb[:, :, :3], dtype=np.uint8), cv2.COLOR_RGB2GRAY)


def phash(rgb: np.ndarray) -> int:
    """64-bit perceptual hash: DCT of the 32x32 grey picture, the 8x8 lowest frequencies against their median."""
    small = cv2.resize(_grey(rgb), (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].ravel()
    bits = low > np.median(low[1:])
    return int("".join("1" if b else "0" for b in bits), 2)


def thumbnail(rgb: np.ndarray, side: int = THUMB) -> np.ndarray:
    """Grey uint8 thumbnail whose longest side is ``side`` (never enlarged)."""
    g = _grey(rgb)
    h, w = g.shape
    s = min(1.0, side / max(h, w))
    return cv2.resize(g, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class Fingerprint:
    """What identifies a picture: exact pixel hash, perceptual hash, size and a grey thumbnail."""

    sha256: str
    phash: int
    width: int
    height: int
    thumb: np.ndarray

    @classmethod
    def of(cls, rgb: np.ndarray) -> Fingerprint:
        """Fingerprint of uint8 HxWx3 RGB pixels."""
        return cls(pixel_sha256(rgb), phash(rgb), int(rgb.shape[1]), int(rgb.shape[0]), thumbnail(rgb))

    def to_json(self) -> dict:
        """JSON-ready fields (the thumbnail as base64 PNG)."""
        ok, png = cv2.imencode(".png", self.thumb)
        assert ok
        return {
            "sha256": self.sha256,
            "phash": f"{self.phash:016x}",
            "width": self.width,
            "height": self.height,
            "thumb_png": base64.b64encode(png.tobytes()).decode(),
        }

    @classmethod
    def from_json(cls, d: dict) -> Fingerprint:
        """Inverse of ``to_json``."""
        thumb = cv2.imdecode(np.frombuffer(base64.b64decode(d["thumb_png"]), np.uint8), cv2.IMREAD_GRAYSCALE)
        return cls(d["sha256"], int(d["phash"], 16), int(d["width"]), int(d["height"]), thumb)


def hamming(a: int, b: int) -> int:
    """Bits that differ between two 64-bit hashes."""
    return (a ^ b).bit_count()


def _match(big: np.ndarray, small: np.ndarray, share: float) -> float:
    """Best normalised correlation of ``small`` scaled to ``share`` of ``big``'s width, inside ``big`` (-1: no fit)."""
    lh, lw = big.shape
    sh, sw = small.shape
    tw = round(share * lw)
    th = round(tw * sh / sw)
    if min(tw, th) < _MIN_TEMPLATE or th > lh or tw > lw:
        return -1.0
    tmpl = cv2.GaussianBlur(cv2.resize(small, (tw, th), interpolation=cv2.INTER_AREA), (3, 3), 0)
    if float(tmpl.std()) < _MIN_TEMPLATE_STD:
        return -1.0
    return float(cv2.matchTemplate(big, tmpl, cv2.TM_CCOEFF_NORMED).max())


def _is_crop_of(small: np.ndarray, large: np.ndarray) -> bool:
    """``small`` (grey thumbnail) is a crop, maybe resized, of ``large``: template matching over crop shares,
    coarse then fine about the best one."""
    big = cv2.GaussianBlur(large, (3, 3), 0)
    scores = [(_match(big, small, share), share) for share in CROP_SHARES]
    best, share = max(scores)
    if best >= CROP_MIN_CORRELATION:
        return True
    if best < CROP_MIN_CORRELATION - 0.15:
        return False
    return any(_match(big, small, share * f) >= CROP_MIN_CORRELATION for f in (0.97, 0.985, 1.015, 1.03))


def same_picture(a: Fingerprint, b: Fingerprint, crops: bool = True) -> bool:
    """Whether two fingerprints are one picture: equal pixels, near-equal perceptual hash, or (``crops``) one a crop
    of the other."""
    if a.sha256 == b.sha256 or hamming(a.phash, b.phash) <= PHASH_MAX_DISTANCE:
        return True
    return crops and (_is_crop_of(a.thumb, b.thumb) or _is_crop_of(b.thumb, a.thumb))  # a crop may be enlarged
