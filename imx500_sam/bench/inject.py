"""Tensor injection and ``imx500-sam eval --device``: on-sensor accuracy on known images.

Each ground-truth instance's prompt crop (``prompt.square_roi`` + ``prompt.crop``, as ``imx500-sam eval``
makes it) is injected into the sensor in picamera2's injection format, the frame whose ``frameCount``
is the driver's comparison frame carries its mask (a missed frame re-injects, as picamera2's demo does),
and the mask is pasted back and scored against the ground truth. Beside it, the emulator's network on the
same crop (the convert output's QDQ ONNX) gives the emulated mIoU and the per-pixel agreement between the
two masks at the network's resolution. With input readback the crop the network saw is compared with the
crop sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from imx500_sam.bench import plot
from imx500_sam.bench.record import header, recorded_run, stats, write_atomic, write_json
from imx500_sam.errors import BadInputError, ToolFailedError
from imx500_sam.outputs import clear_dir, refuse_existing
from imx500_sam.runtime import metadata as md
from imx500_sam.runtime.sensor import Sensor, SensorFrame

MAX_FRAMES_PER_INJECTION = 60
JSON_NAME, MD_NAME, PNG_NAME = "eval_device.json", "eval_device.md", "eval_device.png"


def run_injected(sensor: Sensor, rgb: np.ndarray, max_frames: int = MAX_FRAMES_PER_INJECTION) -> SensorFrame:
    """Inject an HxWx3 uint8 RGB crop and return the frame that carries its output."""
    tensor = md.pack_injection_tensor(rgb, sensor.input_format, sensor.input_signed)
    target = sensor.inject(tensor)
    for _ in range(max_frames):
        frame = sensor.capture()
        if frame is None:
            raise BadInputError("the sensor stopped delivering frames during tensor injection.")
        count = md.frame_count(frame.metadata)
        if count is None or frame.outputs is None:
            continue
        diff = (count - target) & 0xFF
        if diff > 0x7F:
            diff -= 0x100
        if diff == 0:
            return frame
        if diff > 0:  # the comparison frame went by: inject again (picamera2's demo does the same)
            target = sensor.inject(tensor)
    raise ToolFailedError(
        f"no frame carried the injected tensor's output within {max_frames} frames.",
        hint="Check that picamera2 >= 0.3.32 and the IMX500 driver support tensor injection (sudo apt full-upgrade).",
    )


def _mask_logits(frame: SensorFrame, where: str) -> np.ndarray:
    if not frame.outputs:
        raise BadInputError(f"{where}: the frame carries no output tensor.")
    logits = np.asarray(frame.outputs[0], np.float32).squeeze()
    if logits.ndim != 2:
        raise BadInputError(
            f"{where}: output tensor {tuple(np.shape(frame.outputs[0]))} is not one mask (H x W).",
            hint="Evaluate a PicoSAM3 .rpk: one mask-logit output.",
        )
    return logits


def eval_device(
    sensor: Sensor,
    coco: Path,
    images: Path,
    out: Path,
    reference: Callable[[np.ndarray], np.ndarray] | None = None,
    reference_name: str | None = None,
    readback: bool = True,
    command: str | None = None,
    log: Callable[[str], None] = lambda s: None,
    convention: str = "shifted",
    overwrite: bool = False,
) -> dict[str, Any]:
    """On-sensor mIoU by tensor injection; ``reference``: the emulator's logits for an RGB crop (optional).

    ``convention``: the prompt crop (``imx500_sam.prompt.CROP_CONVENTIONS``), the one the model was trained with.

    Writes ``eval_device.json`` (as it goes), ``eval_device.md`` and ``eval_device.png`` to ``out`` (an existing
    ``out`` is refused unless ``overwrite``); an error keeps what was measured (``status``).
    """
    from imx500_sam.data.coco import load_coco
    from imx500_sam.data.sources import read_rgb
    from imx500_sam.prompt import (
        check_convention,
        clamped_summary,
        crop,
        iou,
        paste_mask,
        prompt_roi,
    )

    w, h = sensor.input_size
    if w != h:
        raise BadInputError(f"network input {w}x{h}: a prompt network takes a square crop.")
    data_set = load_coco(coco, images)
    out = Path(out)
    refuse_existing(out, option="--out DIR", overwrite=overwrite)
    clear_dir(out, JSON_NAME)
    data: dict[str, Any] = header("eval_device", command)
    data.update(
        status="running",
        network_name=sensor.network_name,
        input_size=[w, h],
        sensor=type(sensor).__name__,
        reference=reference_name,
        coco=str(coco),
        prompt_crop=check_convention(convention),
        instances=[],
        method="prompt crop (the model's crop convention, prompt_crop) of each instance injected into the sensor "
        "(picamera2's injection "
        "format), the frame with the driver's comparison frameCount read back; IoU after pasting the mask "
        "into the image (logit > 0); agreement = fraction of equal mask pixels at the network's resolution",
    )
    notices: list[str] = []

    def _finish(status: str) -> None:
        data["status"] = status
        data["notices"] = clamped_summary(notices, len(data["instances"]))
        data["summary"] = summarise(data["instances"], readback)
        try:
            _plot(data, out / PNG_NAME)
        except Exception as exc:  # a plot must not lose the numbers
            data["plot_error"] = f"{type(exc).__name__}: {exc}"
        write_json(out / JSON_NAME, data)
        write_atomic(out / MD_NAME, _markdown(data))

    with recorded_run(_finish):
        for img in data_set:
            rgb = read_rgb(img.path)
            for inst in img.instances:
                roi = prompt_roi(img.prompt_box(inst, notices), (img.width, img.height), convention)
                crop_rgb = crop(rgb, roi, w)
                t0 = time.perf_counter()
                frame = run_injected(sensor, crop_rgb)
                wall_ms = (time.perf_counter() - t0) * 1e3
                logits = _mask_logits(frame, sensor.network_name)
                gt = inst.mask(img.height, img.width)
                row: dict[str, Any] = {
                    "image": img.path.name,
                    "instance": inst.id,
                    "roi": list(roi.xywh),
                    "iou_device": round(iou(paste_mask(logits, roi, (img.width, img.height)) > 0, gt), 4),
                    "dnn_ms": frame.dnn_ms,
                    "dsp_ms": frame.dsp_ms,
                    "injection_ms": round(wall_ms, 2),
                }
                if reference is not None:
                    ref = np.asarray(reference(crop_rgb), np.float32).squeeze()
                    row["iou_reference"] = round(iou(paste_mask(ref, roi, (img.width, img.height)) > 0, gt), 4)
                    if ref.shape == logits.shape:
                        row["agreement"] = round(float(np.mean((ref > 0) == (logits > 0))), 5)
                        row["max_abs_logit_diff"] = round(float(np.abs(ref - logits).max()), 4)
                if readback:
                    seen = sensor.input_image(frame)
                    if seen is not None:
                        sent = cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2BGR).astype(np.int16)
                        diff = np.abs(np.asarray(seen, np.int16) - sent)
                        row["readback_mean_abs_diff"] = round(float(diff.mean()), 4)
                        row["readback_max_abs_diff"] = int(diff.max())
                data["instances"].append(row)
                log(f"{img.path.name} #{inst.id}: IoU {row['iou_device']:.3f}")
            write_json(out / JSON_NAME, data)
    return data


def summarise(rows: list[dict[str, Any]], readback: bool) -> dict[str, Any]:
    """mIoU on the sensor and in the emulator, agreement, readback and DNN time over the instances."""
    out: dict[str, Any] = {"instances": len(rows)}
    if not rows:
        return out
    out["miou_device"] = round(float(np.mean([r["iou_device"] for r in rows])), 4)
    if "iou_reference" in rows[0]:
        out["miou_reference"] = round(float(np.mean([r["iou_reference"] for r in rows])), 4)
    agree = [r["agreement"] for r in rows if "agreement" in r]
    if agree:
        out["agreement_mean"] = round(float(np.mean(agree)), 5)
        out["agreement_min"] = round(float(np.min(agree)), 5)
    out["dnn_ms"] = stats([r["dnn_ms"] for r in rows if r["dnn_ms"] is not None])
    rb = [r["readback_mean_abs_diff"] for r in rows if "readback_mean_abs_diff" in r]
    out["readback"] = (
        {
            "instances": len(rb),
            "mean_abs_diff": round(float(np.mean(rb)), 4),
            "max_abs_diff": max(r["readback_max_abs_diff"] for r in rows if "readback_max_abs_diff" in r),
        }
        if rb
        else ("not available (network converted with --no-input-persistency?)" if readback else "off")
    )
    return out


def _plot(data: dict[str, Any], path: Path) -> None:
    rows = data["instances"]
    if not rows:
        return
    idx = list(range(len(rows)))
    series = [plot.Series("on sensor (injected)", idx, [r["iou_device"] for r in rows], "points")]
    if "iou_reference" in rows[0]:
        series.append(plot.Series("emulator (same crop)", idx, [r["iou_reference"] for r in rows], "rings"))
    s = data.get("summary", {})
    hl = [(s["miou_device"], f"mIoU on sensor {s['miou_device']:.3f}")] if "miou_device" in s else []
    plot.save_png(path, plot.plot(series, "IoU per instance", "instance", "IoU", ylim=(0.0, 1.0), hlines=hl))


def _markdown(data: dict[str, Any]) -> str:
    s = data.get("summary", {})
    lines = [
        f"# eval --device: {data['network_name']}",
        "",
        f"- command: `{data['command']}`",
        f"- date: {data['date']}; machine: {data['machine'].get('board') or data['machine'].get('cpu')}",
        f"- sensor: {data['sensor']}; status: **{data['status']}**",
        f"- instances: {s.get('instances')}; mIoU on sensor: **{s.get('miou_device')}**; "
        f"emulator ({data.get('reference') or 'none'}): {s.get('miou_reference')}",
        f"- per-pixel agreement sensor vs emulator: mean {s.get('agreement_mean')}, min {s.get('agreement_min')}",
        f"- input readback: {s.get('readback')}",
        f"- DNN ms: {(s.get('dnn_ms') or {}).get('median')} (median)",
        f"- method: {data['method']}",
        "",
    ]
    return "\n".join(lines)
