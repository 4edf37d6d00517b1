"""Frame sources for the emulated IMX500: an image, a folder of images, a video file or a webcam (OpenCV).

Frames are BGR uint8 (OpenCV's order), like picamera2's ``RGB888`` main stream; treat them as read-only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from imx500_sam.errors import BadInputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class FrameSource:
    """Iterates BGR frames; ``fps`` is the source's frame rate (None for stills), ``kind`` what it is."""

    def __init__(self, spec: str | int | Path, repeat: bool = False) -> None:
        self.spec = spec
        self.repeat = repeat
        self.fps: float | None = None
        self._cap: cv2.VideoCapture | None = None
        self._files: list[Path] = []
        self._still: np.ndarray | None = None
        text = str(spec)
        if isinstance(spec, int) or text.isdigit():
            self.kind = "camera"
            self._cap = cv2.VideoCapture(int(text))
            if not self._cap.isOpened():
                raise BadInputError(f"camera {text}: cannot be opened.", hint="Check the camera index (0, 1, ...).")
            self.fps = self._cap.get(cv2.CAP_PROP_FPS) or None
            return
        path = Path(spec)
        if path.is_dir():
            self.kind = "folder"
            self._files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._files:
                raise BadInputError(f"{path}: no images in this folder ({', '.join(IMAGE_SUFFIXES)}).")
        elif path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            self.kind = "image"
            self._files = [path]
        elif path.is_file():
            self.kind = "video"
            self._cap = cv2.VideoCapture(str(path))
            if not self._cap.isOpened():
                raise BadInputError(f"{path}: OpenCV cannot read it as an image or a video.")
            self.fps = self._cap.get(cv2.CAP_PROP_FPS) or None
        else:
            raise BadInputError(
                f"{path}: no such image, folder or video.", hint="Give --source PATH or a camera index."
            )

    @property
    def is_still(self) -> bool:
        """True for a single image (one frame unless repeated)."""
        return self.kind == "image"

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            if self.kind == "image":
                if self._still is None:
                    self._still = read_image(self._files[0])
                    self._still.flags.writeable = False  # the same array every frame: read-only
                yield self._still
            elif self._files:
                for f in self._files:
                    yield read_image(f)
            else:
                assert self._cap is not None
                while True:
                    ok, frame = self._cap.read()
                    if not ok:
                        break
                    yield frame
                if self.kind == "camera":
                    raise BadInputError(f"camera {self.spec}: stopped delivering frames.")
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            if not self.repeat:
                return

    def close(self) -> None:
        """Release the video capture, if any."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def read_image(path: Path) -> np.ndarray:
    """Read an image as BGR uint8 (grey and 16-bit images converted); BadInputError if unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise BadInputError(f"{path}: OpenCV cannot read this image.")
    return img
