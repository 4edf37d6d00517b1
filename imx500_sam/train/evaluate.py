"""mIoU on ground-truth instances: box -> prompt crop -> mask -> pasted back -> IoU in image coordinates.

Every instance of a COCO file counts once (mIoU = mean over instances). The float PyTorch model, the
INT8 host network of a convert output (derived from its MCTQ file; onnxruntime) and a SAM teacher
(given the same box on the whole image) are evaluated the same way, so their numbers compare directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imx500_sam.data.coco import CocoImage, CocoInstance, load_coco
from imx500_sam.prompt import (
    SHIFTED,
    clamped_summary,
    crop,
    iou,
    paste_mask,
    prompt_roi,
    to_model_input,
)

if TYPE_CHECKING:
    from imx500_sam.convert_output import ConvertOutputDir
    from imx500_sam.train.overlays import OverlayWriter

# crops (N, 3, S, S) float32 in [0, 1) -> logits (N, 1, S, S) or (N, S, S)
CropPredictor = Callable[[np.ndarray], np.ndarray]


@dataclass
class EvalResult:
    """mIoU of one model over all instances of a COCO file."""

    model: str
    miou: float
    instances: int
    images: int
    seconds: float
    ious: list[float] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # e.g. boxes clamped to their image

    def to_json(self) -> dict:
        """The ``--json`` form."""
        return {
            "model": self.model,
            "miou": round(self.miou, 4),
            "instances": self.instances,
            "images": self.images,
            "seconds": round(self.seconds, 2),
            "ious": [round(v, 4) for v in self.ious],
        }


def read_image(path: Path) -> np.ndarray:
    """An image of the evaluated set as uint8 RGB; BadInputError (one line) if it is not a picture."""
    from imx500_sam.data.sources import read_rgb
    from imx500_sam.errors import BadInputError

    try:
        return read_rgb(path)
    except ValueError as exc:
        raise BadInputError(str(exc) + ".", hint="The COCO file's images must be photos (PNG, JPEG, ...).") from None


def _read(img: CocoImage) -> np.ndarray:
    from imx500_sam.errors import BadInputError

    rgb = read_image(img.path)
    if rgb.shape[:2] != (img.height, img.width):
        raise BadInputError(f"{img.path}: size {rgb.shape[1]}x{rgb.shape[0]} differs from the COCO file's.")
    return rgb


def _score(
    name: str, img: CocoImage, inst: CocoInstance, rgb: np.ndarray, pred: np.ndarray, overlays: OverlayWriter | None
) -> float:
    """IoU of a predicted mask (image-sized, bool) with the instance's ground truth; the mask to ``overlays``."""
    gt = inst.mask(img.height, img.width)
    score = iou(pred, gt)
    if overlays is not None:
        overlays.add(name, img.path.name, inst.id, rgb, inst.bbox, gt, pred, score)
    return score


def limit_instances(images: list[CocoImage], limit: int | None) -> list[CocoImage]:
    """The first ``limit`` instances in file order (images cut short, later images dropped); all when None."""
    if limit is None:
        return images
    out: list[CocoImage] = []
    left = limit
    for img in images:
        if left <= 0:
            break
        out.append(CocoImage(img.id, img.path, img.width, img.height, img.instances[:left]))
        left -= len(out[-1].instances)
    return out


def _result(name: str, ious: list[float], images: int, t0: float, notices: list[str]) -> EvalResult:
    """The run's ``EvalResult``: mean IoU, counts, seconds since ``t0``, and one line for the boxes clamped in it
    (the first of them as an example)."""
    mean = float(np.mean(ious)) if ious else 0.0
    return EvalResult(
        name, mean, len(ious), images, time.perf_counter() - t0, ious, clamped_summary(notices, len(ious))
    )


def evaluate_crops(
    name: str,
    images: list[CocoImage],
    predict: CropPredictor,
    size: int = 96,
    overlays: OverlayWriter | None = None,
    convention: str = SHIFTED,
    advance: Callable[[], None] | None = None,
) -> EvalResult:
    """mIoU of a crop model (float or INT8) over every instance; each mask also to ``overlays`` if given.

    ``convention``: the prompt crop (``imx500_sam.prompt``), the one the model was trained with.
    """
    t0 = time.perf_counter()
    ious: list[float] = []
    notices: list[str] = []
    for img in images:
        rgb = _read(img)
        rois = [prompt_roi(img.prompt_box(a, notices), (img.width, img.height), convention) for a in img.instances]
        batch = np.stack([to_model_input(crop(rgb, r, size)) for r in rois])
        logits = np.asarray(predict(batch), np.float32).reshape(len(rois), size, size)
        for a, r, lg in zip(img.instances, rois, logits, strict=True):
            ious.append(_score(name, img, a, rgb, paste_mask(lg, r, (img.width, img.height)) > 0, overlays))
            if advance is not None:
                advance()
    return _result(name, ious, len(images), t0, notices)


def evaluate_teacher(
    name: str,
    images: list[CocoImage],
    teacher: object,
    overlays: OverlayWriter | None = None,
    advance: Callable[[], None] | None = None,
) -> EvalResult:
    """mIoU of a SAM teacher given each instance's box on the whole image; masks to ``overlays`` if given."""
    t0 = time.perf_counter()
    ious: list[float] = []
    notices: list[str] = []
    for img in images:
        rgb = _read(img)
        teacher.set_image(rgb)  # type: ignore[attr-defined]
        boxes = np.asarray([img.prompt_box(a, notices) for a in img.instances], np.float32)
        probs, _ = teacher.predict_boxes(boxes)  # type: ignore[attr-defined]
        for a, p in zip(img.instances, probs, strict=True):
            ious.append(_score(name, img, a, rgb, p > 0.5, overlays))
            if advance is not None:
                advance()
    return _result(name, ious, len(images), t0, notices)


def torch_predictor(model: object, batch_size: int = 32) -> CropPredictor:
    """A float PyTorch model as a crop predictor."""
    import torch

    def predict(batch: np.ndarray) -> np.ndarray:
        outs = []
        with torch.inference_mode():
            for s in range(0, len(batch), batch_size):
                outs.append(model(torch.from_numpy(batch[s : s + batch_size])).numpy())  # type: ignore[operator]
        return np.concatenate(outs)

    return predict


def onnx_predictor(onnx_path: Path) -> tuple[CropPredictor, int]:
    """A QDQ ONNX network (onnxruntime) as a crop predictor, and its input size."""
    from imx500_sam.int8 import QdqNetwork

    net = QdqNetwork(onnx_path)
    fixed = isinstance(net.input_shape[0], int)
    size = int(net.input_shape[-1]) if isinstance(net.input_shape[-1], int) else 96

    def predict(batch: np.ndarray) -> np.ndarray:
        if fixed and net.input_shape[0] == 1:
            return np.concatenate([net(batch[i : i + 1]) for i in range(len(batch))])
        return net(batch)

    return predict, size


def int8_predictor(out: ConvertOutputDir) -> tuple[CropPredictor, int]:
    """A convert output's host INT8 network as a crop predictor, with the sensor's input preprocessor in front
    (``imx500_sam.preprocessor``: the same integers the emulator and the camera feed), and its input size."""
    predict, size = onnx_predictor(out.qdq_onnx)
    pre = out.input_preprocessor
    if pre is None:
        return predict, size
    from imx500_sam.preprocessor import network_input, pixels_of

    scale = out.dnn_params.input.scale
    return (lambda batch: predict(network_input(pre, pixels_of(batch), scale))), size


def run_eval(coco: Path, images: Path, limit: int | None = None, **models: Any) -> list[EvalResult]:
    """``evaluate_models`` over the first ``limit`` instances (all when None) of a COCO file; ``models`` are its
    keyword arguments (``model``, ``int8_out``, ``teacher``, ``float_model``, ``overlays``, ``crop``, ``progress``)."""
    return evaluate_models(limit_instances(load_coco(coco, images), limit), **models)


def evaluate_models(
    data: list[CocoImage],
    model: Path | None = None,
    int8_out: Path | None = None,
    teacher: str | None = None,
    float_model: bool = True,
    overlays: Path | None = None,
    crop: str | None = None,
    progress: bool = False,
) -> list[EvalResult]:
    """Evaluate the float checkpoint, optionally a convert output's INT8 network and a teacher, on ``data``.

    Each network is prompted with the crop it was trained with (its sidecar / report.json), unless ``crop`` says.
    ``overlays``: a new folder for one picture per instance with every evaluated model side by side.
    ``progress``: a progress bar per model on an interactive stderr.
    """
    from imx500_sam.progress import item_bar
    from imx500_sam.train.overlays import OverlayWriter

    writer = OverlayWriter(overlays) if overlays is not None else None
    total = sum(len(im.instances) for im in data)
    results = []
    if float_model:
        from imx500_sam.defaults import DEFAULT_CHECKPOINT
        from imx500_sam.model import prompt_crop_of, read_checkpoint

        path = Path(model) if model else DEFAULT_CHECKPOINT
        ckpt = read_checkpoint(path)
        name = f"float:{path.name}"
        with item_bar(total, name, progress) as advance:
            results.append(
                evaluate_crops(
                    name,
                    data,
                    torch_predictor(ckpt.module),
                    ckpt.config.input_size,
                    writer,
                    crop or prompt_crop_of(ckpt),
                    advance,
                )
            )
    if int8_out is not None:
        from imx500_sam.convert_output import ConvertOutputDir

        out = ConvertOutputDir.load(int8_out)
        predict, size = int8_predictor(out)
        name = f"int8:{out.out_dir.name}"
        with item_bar(total, name, progress) as advance:
            results.append(evaluate_crops(name, data, predict, size, writer, crop or out.prompt_crop, advance))
    if teacher:
        from imx500_sam.train.teachers import load_teacher

        with item_bar(total, f"teacher:{teacher}", progress) as advance:
            results.append(evaluate_teacher(f"teacher:{teacher}", data, load_teacher(teacher), writer, advance))
    if writer is not None:
        writer.write()
    return results
