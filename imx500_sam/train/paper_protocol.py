"""``eval --protocol paper``: the PicoSAM3 authors' evaluation, step for step as their published code does it.

Their code (github.com/pbonazzi/picosam3: ``model_compression/dataset.py`` ``PicoSAMDataset``,
``model_compression/utils.py`` ``pad_bbox_to_square``, ``model_compression/picosam2/benchmark.py``
``evaluate_picosam`` / ``calc_miou`` / ``calc_map_iou_range``; shared/notes/picosam3.md), read 2026-12-03:

1. instances: every annotation with a ``segmentation`` key and ``iscrowd == 0`` (missing = 0) on an image whose file
   exists (no ``file_name``, as in LVIS: ``{id:012d}.jpg``); images in JSON order, annotations in JSON order;
2. ground truth: pycocotools' ``annToMask`` at the JSON's height and width;
3. crop box: ``pad_bbox_to_square(bbox, W, H, 0.1)``: grow 10% of width and height on each side, square of the
   larger side about the centre, clamped to the image (so edge boxes give stretched non-square crops), ``int()`` of
   each corner;
4. Pillow crop of the image and of the mask; image resized to the input size with ``BILINEAR``, mask with
   ``NEAREST``; ground truth = mask > 0.5;
5. input: ``ToTensor`` then ImageNet ``Normalize``; prediction: ``sigmoid(logits) > 0.5`` (logits bilinearly
   resized to the mask's size: the identity at 96x96);
6. IoU in crop space; an empty union scores 1.0; mIoU = plain mean over instances (one instance per batch);
7. their "mAP@[.5:.95]": instances with an empty ground-truth crop dropped, IoU = inter / (union + 1e-8), for each
   threshold in ``np.arange(0.5, 1.0, 0.05)`` the share of instances at or above it, averaged.

Where this differs from theirs (README "The paper's protocol"): an INT8 network from ``convert`` gets what the sensor
feeds it (``evaluate.int8_predictor``: the pixels through its input preprocessor; pixels / 256 with the normalisation
inside the graph for the default), not ``Normalize(pixels / 255)``; an instance whose
padded box truncates to an empty rectangle (a box under about 1 px) is skipped and counted, where their code stops.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imx500_sam import preprocessor
from imx500_sam.errors import BadInputError

PADDING = 0.1
IMAGENET_MEAN = np.array(preprocessor.IMAGENET_MEAN, np.float32).reshape(3, 1, 1)  # torchvision Normalize's
IMAGENET_STD = np.array(preprocessor.IMAGENET_STD, np.float32).reshape(3, 1, 1)
MAP_THRESHOLDS = np.arange(0.5, 1.0, 0.05)  # their np.arange, floating-point steps included

# uint8 HxWx3 RGB crops (N, S, S, 3) -> logits (N, 1, S, S) or (N, S, S)
CropLogits = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PaperInstance:
    """One annotation the authors' protocol scores."""

    image_id: int
    ann_id: int
    path: Path
    height: int  # from the JSON (annToMask's size)
    width: int
    bbox: tuple[float, float, float, float]
    segmentation: Any


def paper_instances(ann_file: Path, images_dir: Path, limit: int | None = None) -> list[PaperInstance]:
    """Step 1: the instances in the authors' order (the first ``limit`` of them when given)."""
    from imx500_sam.data.coco import check_paths, image_path

    ann_file, images_dir = check_paths(ann_file, images_dir)
    try:
        data = json.loads(ann_file.read_text())
        imgs: dict[int, dict[str, Any]] = {}
        for info in data["images"]:
            imgs[int(info["id"])] = info  # pycocotools' index: a dict by id, JSON order
        by_image: dict[int, list[dict[str, Any]]] = {}
        for ann in data.get("annotations", []):
            by_image.setdefault(int(ann["image_id"]), []).append(ann)
        out: list[PaperInstance] = []
        for image_id, info in imgs.items():
            path = image_path(info, images_dir)
            if not path.exists():
                continue
            for ann in by_image.get(image_id, []):
                if "segmentation" not in ann or ann.get("iscrowd", 0) != 0:
                    continue
                bbox = tuple(float(v) for v in ann["bbox"])
                out.append(
                    PaperInstance(
                        image_id, int(ann.get("id", 0)), path, int(info["height"]), int(info["width"]), bbox,
                        ann["segmentation"],
                    )
                )  # fmt: skip
                if limit is not None and len(out) >= limit:
                    return out
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"{ann_file}: not a COCO instance file ({exc!r}).", hint="Check its format.") from exc
    return out


def gt_mask(inst: PaperInstance) -> np.ndarray:
    """Step 2: pycocotools' ``annToMask`` (uint8 HxW)."""
    from pycocotools import mask as mask_utils

    seg, h, w = inst.segmentation, inst.height, inst.width
    if isinstance(seg, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    elif isinstance(seg.get("counts"), list):
        rle = mask_utils.frPyObjects(seg, h, w)
    else:
        rle = seg
    return mask_utils.decode(rle)


def pad_bbox_to_square(
    bbox: tuple[float, float, float, float], width: int, height: int, padding: float = PADDING
) -> tuple[int, int, int, int]:
    """Step 3: the padded square box, clamped, as ``int()`` corners (x1, y1, x2, y2)."""
    x, y, w, h = bbox
    x, y = x - w * padding, y - h * padding
    w, h = w + 2 * w * padding, h + 2 * h * padding
    side = max(w, h)
    x1, y1 = x + w / 2 - side / 2, y + h / 2 - side / 2
    x2, y2 = x1 + side, y1 + side
    return int(max(0, x1)), int(max(0, y1)), int(min(width, x2)), int(min(height, y2))


def crop_pair(image: Any, mask: np.ndarray, box: tuple[int, int, int, int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Step 4: (uint8 SxSx3 image crop, bool SxS ground truth) from a Pillow RGB image and a uint8 mask."""
    from PIL import Image

    rgb = image.crop(box).resize((size, size), Image.BILINEAR)
    gt = Image.fromarray(mask).crop(box).resize((size, size), Image.NEAREST)
    return np.asarray(rgb, np.uint8), np.asarray(gt) > 0.5


def normalise(crops: np.ndarray) -> np.ndarray:
    """Step 5's input: ``Normalize(ImageNet)(ToTensor(crop))`` for uint8 (N, S, S, 3) -> float32 (N, 3, S, S)."""
    x = crops.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    return ((x - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)


def predicted_masks(logits: np.ndarray, size: int) -> np.ndarray:
    """Step 5's output: bilinear resize to the ground truth's size (as their ``F.interpolate``), sigmoid > 0.5."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.asarray(logits, np.float32).reshape(len(logits), 1, *np.shape(logits)[-2:]))
    t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    return (torch.sigmoid(t) > 0.5).numpy()[:, 0]


def crop_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Step 6: IoU in crop space, 1.0 when both masks are empty."""
    union = int(np.logical_or(pred, gt).sum())
    return int(np.logical_and(pred, gt).sum()) / union if union else 1.0


def paper_map(inter: list[int], union: list[int], gt_area: list[int]) -> float:
    """Step 7: their mAP@[.5:.95] from each instance's intersection, union and ground-truth area."""
    aps = []
    for thr in MAP_THRESHOLDS:
        hits = [1.0 if i / (u + 1e-8) >= thr else 0.0 for i, u, a in zip(inter, union, gt_area, strict=True) if a]
        if hits:
            aps.append(np.mean(hits))
    return float(np.mean(aps)) if aps else 0.0


@dataclass
class PaperResult:
    """One model under the authors' protocol."""

    model: str
    miou: float
    map_50_95: float
    instances: int
    skipped_empty_crop: int
    images: int
    seconds: float
    ious: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "model": self.model,
            "miou": round(self.miou, 4),
            "map_50_95": round(self.map_50_95, 4),
            "instances": self.instances,
            "skipped_empty_crop": self.skipped_empty_crop,
            "images": self.images,
            "seconds": round(self.seconds, 2),
            "ious": [round(v, 4) for v in self.ious],
        }


def iter_crops(
    instances: list[PaperInstance], size: int, advance: Callable[[], None] | None = None
) -> Iterator[tuple[PaperInstance, np.ndarray | None, np.ndarray | None]]:
    """Steps 2-4 per instance: (instance, image crop, ground truth); crops None for an empty rectangle."""
    from PIL import Image

    current: tuple[Path, Any] | None = None
    for inst in instances:
        if current is None or current[0] != inst.path:
            with Image.open(inst.path) as im:
                current = (inst.path, im.convert("RGB"))
        image = current[1]
        box = pad_bbox_to_square(inst.bbox, image.size[0], image.size[1])
        if box[2] <= box[0] or box[3] <= box[1]:
            yield inst, None, None
        else:
            yield inst, *crop_pair(image, gt_mask(inst), box, size)
        if advance is not None:
            advance()


def evaluate_paper(
    name: str,
    instances: list[PaperInstance],
    logits: CropLogits,
    size: int = 96,
    advance: Callable[[], None] | None = None,
) -> PaperResult:
    """mIoU and their mAP@[.5:.95] of one model over ``instances`` (one crop at a time, as their batch size 1)."""
    t0 = time.perf_counter()
    ious: list[float] = []
    inter: list[int] = []
    union: list[int] = []
    area: list[int] = []
    skipped = 0
    for _, crop, gt in iter_crops(instances, size, advance):
        if crop is None or gt is None:
            skipped += 1
            continue
        pred = predicted_masks(logits(crop[None]), size)[0]
        ious.append(crop_iou(pred, gt))
        inter.append(int(np.logical_and(pred, gt).sum()))
        union.append(int(np.logical_or(pred, gt).sum()))
        area.append(int(gt.sum()))
    return PaperResult(
        name,
        float(np.mean(ious)) if ious else 0.0,
        paper_map(inter, union, area),
        len(ious),
        skipped,
        len({i.path for i in instances}),
        time.perf_counter() - t0,
        ious,
    )


def float_logits(model: Any) -> CropLogits:
    """A PicoSAM checkpoint's network on ``Normalize(crop / 255)``, as the authors feed it (no sensor wrapper)."""
    import torch

    from imx500_sam.model import bare_network

    net = bare_network(model).eval()

    def run(crops: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(normalise(crops))).numpy()

    return run


def sensor_logits(predict: Callable[[np.ndarray], np.ndarray]) -> CropLogits:
    """A crop predictor on model-input batches (pixels / 256, ``prompt.to_model_input``; e.g. convert's INT8 with the
    sensor's preprocessor in front, ``evaluate.int8_predictor``) as crop logits."""
    from imx500_sam.prompt import to_model_input

    return lambda crops: predict(np.stack([to_model_input(c) for c in crops]))


def run_paper_eval(
    instances: list[PaperInstance],
    model: Path | None = None,
    int8_out: Path | None = None,
    float_model: bool = True,
    progress: bool = False,
) -> list[PaperResult]:
    """The authors' protocol over ``instances`` for the float checkpoint and optionally a convert output's INT8."""
    from imx500_sam.progress import item_bar
    from imx500_sam.train.evaluate import int8_predictor

    results = []
    if float_model:
        from imx500_sam.defaults import DEFAULT_CHECKPOINT
        from imx500_sam.model import load_checkpoint

        path = Path(model) if model else DEFAULT_CHECKPOINT
        net = load_checkpoint(path)
        with item_bar(len(instances), f"float:{path.name}", progress) as advance:
            results.append(
                evaluate_paper(f"float:{path.name}", instances, float_logits(net), net.config.input_size, advance)
            )
    if int8_out is not None:
        from imx500_sam.convert_output import ConvertOutputDir

        out = ConvertOutputDir.load(int8_out)
        predict, size = int8_predictor(out)  # the sensor's preprocessor in front, as eval --int8 and the emulator
        with item_bar(len(instances), f"int8:{out.out_dir.name}", progress) as advance:
            results.append(evaluate_paper(f"int8:{out.out_dir.name}", instances, sensor_logits(predict), size, advance))
    return results
