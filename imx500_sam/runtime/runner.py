"""``imx500-sam run``: open a sensor (camera or emulator), prompt it, save overlays / masks, report per frame."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from imx500_sam.errors import BadInputError, ToolchainMissingError
from imx500_sam.outputs import dir_mode, file_mode, refuse_existing
from imx500_sam.procs import deferred_stop, make_work_dir, publish_dir, remove_stale_work_dirs, remove_work_dir
from imx500_sam.runtime.geometry import Box
from imx500_sam.runtime.overlay import draw_overlay, status_text
from imx500_sam.runtime.sensor import Sensor
from imx500_sam.runtime.session import MaskResult, PromptSession

IMAGE_OUT = (".png", ".jpg", ".jpeg", ".bmp")
VIDEO_OUT = {".mp4": "mp4v", ".avi": "MJPG"}


@dataclass
class RunOptions:
    """Everything ``imx500-sam run`` takes (either ``rpk`` or ``emulate``)."""

    rpk: Path | None = None
    emulate: Path | None = None
    source: str | None = None
    boxes: list[Box] = field(default_factory=list)
    select: bool = False
    track: bool = False
    save: Path | None = None
    save_masks: Path | None = None
    frames: int | None = None
    threads: int | None = None
    fast_int8: bool = False
    pipelined: bool = False
    crop: str | None = None  # crop convention (imx500_sam.prompt); None: the converted model's
    roi_as_drawn: bool = False  # the authors' demo: the drawn box is the ROI (no padding, not square)
    overwrite: bool = False  # replace an existing --save file


@dataclass
class RunSummary:
    """What a run did: frame count, mean sensor DNN time and mean frame rate."""

    frames: int
    mean_dnn_ms: float | None
    fps: float | None
    saved: Path | None
    masks_dir: Path | None


def parse_box(text: str) -> Box:
    """'x,y,w,h' -> (x, y, w, h) floats; BadInputError otherwise."""
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        vals = ()
    if len(vals) != 4 or vals[2] <= 0 or vals[3] <= 0:
        raise BadInputError(f"--box {text!r}: expected x,y,w,h with a positive width and height.")
    return vals  # type: ignore[return-value]


def open_sensor(
    options: RunOptions, loop: bool = False, frame_rate: float | None = None, images: bool = True
) -> Sensor:
    """The IMX500 (``--rpk``) or the emulated IMX500 (``--emulate``).

    ``loop``: repeat the emulator's source (a photo, a video) without end; ``frame_rate``: frames per second (the
    camera's default: the network's ``inference_rate``; the emulator's: as fast as it computes); ``images=False``:
    the camera streams the smallest image picamera2 allows and no image is read (masks only).
    """
    if (options.rpk is None) == (options.emulate is None):
        raise BadInputError("give exactly one of --rpk network.rpk (camera) or --emulate CONVERT_DIR (emulator).")
    if options.rpk is not None:
        if options.source is not None or options.pipelined or options.fast_int8:
            raise BadInputError(
                "--source, --pipelined and --fast-int8 are for the emulator; with --rpk the AI Camera runs the network."
            )
        from imx500_sam.runtime.picamera import IMX500Sensor

        return IMX500Sensor(options.rpk, frame_rate=frame_rate, images=images)
    if options.source is None:
        raise BadInputError("--emulate needs --source PATH (image, folder, video) or a webcam index.")
    from imx500_sam.runtime.emulator import EmulatedIMX500
    from imx500_sam.runtime.sources import FrameSource

    source = FrameSource(options.source)
    if loop or (source.is_still and (options.frames or 1) > 1):
        source.repeat = True
    return EmulatedIMX500(
        options.emulate,
        source,
        threads=options.threads,
        pipelined=options.pipelined,
        fast_int8=options.fast_int8,
        frame_rate=frame_rate,
    )


def crop_convention(options: RunOptions, sensor: Sensor) -> str:
    """The ROI convention of a run: ``--roi-as-drawn``, ``--crop``, else the converted model's training crop
    (``convert_output.converted_prompt_crop``: the emulator's convert output, the report.json beside the .rpk)."""
    from imx500_sam.convert_output import converted_prompt_crop
    from imx500_sam.prompt import AS_DRAWN, crop_option

    if options.roi_as_drawn:
        if options.crop is not None:
            raise BadInputError("--roi-as-drawn and --crop exclude each other.")
        return AS_DRAWN
    return crop_option(options.crop) or converted_prompt_crop(getattr(sensor, "convert_out", None), options.rpk)


def select_box(image: np.ndarray) -> Box:
    """Let a person draw the box on ``image`` (needs an OpenCV built with GUI support)."""
    try:
        x, y, w, h = cv2.selectROI("imx500-sam: draw a box, then ENTER", image, showCrosshair=True)
        cv2.destroyAllWindows()
    except cv2.error as exc:
        raise ToolchainMissingError(
            "--select needs an OpenCV with GUI support (this one has none).",
            hint="Install opencv-python (not -headless) or python3-opencv, or pass --box x,y,w,h.",
        ) from exc
    if w <= 0 or h <= 0:
        raise BadInputError("--select: no box drawn.", hint="Drag a box around the object, then press ENTER.")
    return (float(x), float(y), float(w), float(h))


class _Outputs:
    """Overlay image/video and mask PNGs, written to temporary paths and renamed at the end."""

    def __init__(self, save: Path | None, masks_dir: Path | None, fps: float, overwrite: bool = False) -> None:
        self.save, self.masks_dir, self.fps = save, masks_dir, fps
        self._writer: cv2.VideoWriter | None = None
        self._last: np.ndarray | None = None
        self._tmp_save: Path | None = None
        self._tmp_masks: Path | None = None
        self._box: Path | None = None  # the owner-marked work folder around _tmp_masks
        self._save_box: Path | None = None  # the one around _tmp_save
        if save is not None:
            suffix = save.suffix.lower()
            if suffix not in IMAGE_OUT and suffix not in VIDEO_OUT:
                raise BadInputError(f"--save {save}: use .png/.jpg for one frame or .mp4/.avi for video.")
            if not save.parent.is_dir():
                raise BadInputError(f"--save {save}: folder {save.parent} does not exist.")
            if save.is_dir():
                raise BadInputError(f"--save {save}: is a folder.", hint="Give a file name, e.g. overlay.png.")
            refuse_existing(save, option="--save FILE", overwrite=overwrite)
            # written inside an owner-marked folder beside it (imx500_sam.procs): a killed run's goes next time
            remove_stale_work_dirs(save.parent, f".{save.name}.tmp-*")
            self._save_box = make_work_dir(save.parent, f".{save.name}.tmp-")
            self._tmp_save = self._save_box / f"overlay{save.suffix}"
        if masks_dir is not None:
            if masks_dir.exists() and (not masks_dir.is_dir() or any(masks_dir.iterdir())):
                raise BadInputError(f"--save-masks {masks_dir}: exists and is not an empty folder.")
            parent = masks_dir.resolve().parent
            if not parent.is_dir():
                raise BadInputError(f"--save-masks {masks_dir}: folder {parent} does not exist.")
            # owner-marked (imx500_sam.procs): one left by a killed run is removed by the next
            remove_stale_work_dirs(parent, f".{masks_dir.name}.tmp-*")
            self._box = make_work_dir(parent, f".{masks_dir.name}.tmp-")
            self._tmp_masks = self._box / "masks"
            self._tmp_masks.mkdir()
            self._tmp_masks.chmod(dir_mode())

    def add(self, result: MaskResult, overlay: np.ndarray | None) -> None:
        if self._tmp_masks is not None:
            name = self._tmp_masks / f"mask_{result.frame:06d}.png"
            if not cv2.imwrite(str(name), result.mask.astype(np.uint8) * 255):
                raise BadInputError(f"cannot write {name}.")
        if overlay is None or self._tmp_save is None:
            return
        if self.save is not None and self.save.suffix.lower() in VIDEO_OUT:
            if self._writer is None:
                fourcc = cv2.VideoWriter_fourcc(*VIDEO_OUT[self.save.suffix.lower()])
                size = (overlay.shape[1], overlay.shape[0])
                self._writer = cv2.VideoWriter(str(self._tmp_save), fourcc, self.fps, size)
                if not self._writer.isOpened():
                    raise ToolchainMissingError(f"--save {self.save}: OpenCV cannot write this video format here.")
            self._writer.write(overlay)
        else:
            self._last = overlay

    def finish(self) -> None:
        if self._writer is not None:
            self._writer.release()
        if self._tmp_save is not None and self.save is not None:
            if self._last is not None and not cv2.imwrite(str(self._tmp_save), self._last):
                raise BadInputError(f"--save {self.save}: cannot write the image.")
            os.chmod(self._tmp_save, file_mode())  # an ordinary file's mode
            with deferred_stop():
                os.replace(self._tmp_save, self.save)
            self._tmp_save = None
            if self._save_box is not None:
                remove_work_dir(self._save_box)
        if self._tmp_masks is not None and self.masks_dir is not None:
            if self.masks_dir.is_dir():
                self.masks_dir.rmdir()  # empty, checked at the start
            publish_dir(self._tmp_masks, self.masks_dir)
            if self._box is not None:
                remove_work_dir(self._box)
            self._tmp_masks = None

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.release()
        if self._save_box is not None:
            remove_work_dir(self._save_box)
        if self._box is not None:
            remove_work_dir(self._box)


def run(options: RunOptions, on_result: Callable[[MaskResult], None] | None = None) -> RunSummary:
    """Run prompts on a sensor for ``options.frames`` frames (default: all; one for a still image).

    A live camera run (the AI Camera, a webcam) without ``--frames`` ends with Ctrl-C, keeping its outputs;
    for files, Ctrl-C aborts and leaves nothing partial.
    """
    if options.frames is not None and options.frames < 1:
        raise BadInputError("--frames must be at least 1.")
    if not options.boxes and not options.select:
        raise BadInputError("no prompt given.", hint="Give --box x,y,w,h (repeat for several objects) or --select.")
    sensor = open_sensor(options)
    outputs: _Outputs | None = None
    try:
        boxes: list[Sequence[float]] = list(options.boxes)
        if options.select:
            peek = getattr(sensor, "peek_image", None)
            image = peek() if callable(peek) else sensor.capture().image  # type: ignore[union-attr]
            boxes.append(select_box(image))
        session = PromptSession(sensor, boxes, track=options.track, convention=crop_convention(options, sensor))
        for notice in session.notices:
            print(f"imx500-sam run: {notice}", file=sys.stderr, flush=True)
        source = getattr(sensor, "source", None)
        limit = options.frames
        if limit is None and source is not None and source.is_still:
            limit = 1
        fps_out = float(getattr(source, "fps", None) or 10.0)
        outputs = _Outputs(options.save, options.save_masks, fps_out, options.overwrite)
        last: dict[int, MaskResult] = {}
        count, dnn_total, dnn_n = 0, 0.0, 0
        live = options.rpk is not None or getattr(source, "kind", None) == "camera"
        results = iter(session)
        while limit is None or count < limit:
            try:
                result = next(results, None)
            except KeyboardInterrupt:
                if not live:
                    raise
                break  # Ctrl-C ends a live camera run normally: what was recorded is kept
            if result is None:
                break
            last[result.prompt] = result
            overlay = None
            if options.save is not None:
                n = len(session.prompts)
                overlay = draw_overlay(
                    result.image,
                    [last[i].mask if i in last else None for i in range(n)],
                    [last[i].roi_output if i in last else None for i in range(n)],
                    [last[i].lost if i in last else False for i in range(n)],
                    status_text(result.fps, result.dnn_ms, result.dsp_ms),
                    boxes=[session.prompts[i].box for i in range(n)],
                )
            outputs.add(result, overlay)
            if on_result is not None:
                on_result(result)
            count += 1
            if result.dnn_ms is not None:
                dnn_total += result.dnn_ms
                dnn_n += 1
        if count == 0:
            raise BadInputError(f"{options.source}: the source gave no frames.")
        outputs.finish()
        return RunSummary(
            frames=count,
            mean_dnn_ms=dnn_total / dnn_n if dnn_n else None,
            fps=session.fps,
            saved=options.save,
            masks_dir=options.save_masks,
        )
    except BaseException:
        if outputs is not None:
            outputs.abort()
        raise
    finally:
        sensor.close()
