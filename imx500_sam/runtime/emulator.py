"""An emulated IMX500 for any host: same interface and metadata as the camera, no camera.

- Frames come from an image, a folder, a video file or a webcam (OpenCV); each frame is the output
  image, showing the centred sensor region with its aspect ratio (``ScalerCrop``) as picamera2 does.
- The inference ROI is in full-sensor pixels (4056x3040); the emulator crops it from the frame on
  the frame's own pixel grid (the emulated sensor has the source's resolution) and scales it to the
  network's input size, as the sensor does on chip.
- The input is quantised as the convert output's ``dnnParams.xml`` says (8-bit unsigned, scale
  1/256: the network sees pixel/256), and the INT8 network is the convert output's host network:
  the standard QDQ ONNX derived from the MCTQ file imxconv-pt compiled (MCT's integer weights,
  scales and rounding), run in onnxruntime without its QDQ re-quantization (``imx500_sam.int8``).
- Each frame carries libcamera's metadata: ``CnnOutputTensor``, ``CnnOutputTensorInfo``,
  ``CnnKpiInfo`` (measured host time, microseconds), ``ScalerCrop``, ``SensorTimestamp``
  (``time.monotonic_ns``, the clock of V4L2 buffer timestamps), and ``CnnInputTensor`` when input
  readback is on (picamera2's control ``CnnEnableInputTensor``).
- With a frame rate, frames come on a frame clock (``SensorTimestamp`` = the frame's slot, ``FrameDuration``)
  and the emulated network is busy for its measured time after each frame it runs: a frame that arrives
  while it is busy carries no tensor, as on the IMX500 when the DNN takes longer than a frame (DPS < FPS);
  frames the caller is too slow to take are dropped beyond ``BUFFERS`` queued ones (RPS > FPS).
- Tensor injection (``tensor_injection=True``): ``inject`` takes the bytes picamera2's
  ``prepare_tensor_for_injection`` makes; the network runs on them from the next frame but one on, and that
  frame's ``frameCount`` is returned, as the driver's injection comparison frame.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from imx500_sam.convert_output import INTRINSICS_JSON, ConvertOutputDir
from imx500_sam.errors import BadInputError
from imx500_sam.facts import SENSOR_FULL_SIZE
from imx500_sam.preprocessor import network_input as preprocess
from imx500_sam.prompt import ROI, crop_rect
from imx500_sam.runtime import metadata as md
from imx500_sam.runtime.geometry import SensorGeometry
from imx500_sam.runtime.sensor import Sensor, SensorFrame, check_segmentation_intrinsics
from imx500_sam.runtime.sources import FrameSource

_RoiSetting = tuple[ROI | None, tuple[int, int, int, int], Any]  # square ROI (if any), rectangle, tag
BUFFERS = 12  # frames queued for a slow caller before the oldest are dropped (IMX500Sensor's buffer_count)
NO_SOURCE_SIZE = (640, 480)  # the output image without a source (tensor injection only): black frames


class EmulatedIMX500(Sensor):
    """The IMX500 emulated with a convert output directory and an OpenCV frame source."""

    def __init__(
        self,
        convert_out: str | Path | ConvertOutputDir,
        source: FrameSource | str | int | Path | None,
        output_size: tuple[int, int] | None = None,
        threads: int | None = None,
        repeat: bool = False,
        pipelined: bool = False,
        frame_rate: float | None = None,
        tensor_injection: bool = False,
        input_tensor: bool = False,
        fast_int8: bool = False,
    ) -> None:
        """``fast_int8``: onnxruntime's fused integer kernels (about twice as fast; 99.5% of mask pixels agree
        with MCT's network instead of 99.9%: benchmarks/results/int8_agreement.json)."""
        out = convert_out if isinstance(convert_out, ConvertOutputDir) else ConvertOutputDir.load(convert_out)
        check_segmentation_intrinsics(out.intrinsics, str(out.out_dir / INTRINSICS_JSON))
        spec = out.dnn_params.input
        where = str(out.dnn_params.path)
        self.preprocessor = out.input_preprocessor  # the sensor's gain/offset (report.json), None: identity
        known = self.preprocessor is not None and self.preprocessor.signed == spec.signed
        shape_ok = len(spec.shape) == 3 and spec.shape[0] == 3
        if spec.bits != 8 or (spec.signed and not known) or spec.shift != 0 or not shape_ok:
            raise BadInputError(
                f"{where}: input {spec.shape} {'signed' if spec.signed else 'unsigned'} {spec.bits}-bit "
                f"shift {spec.shift}: the emulator runs 3-channel 8-bit inputs with shift 0 (signed: with the input "
                "preprocessor's settings in report.json).",
                hint="Convert an RGB network with imx500-sam convert.",
            )
        if not out.dnn_params.outputs:
            raise BadInputError(f"{where}: lists no output tensor.", hint="Re-run imx500-sam convert.")
        self.convert_out = out
        self.input_size = (int(spec.shape[2]), int(spec.shape[1]))
        self.input_scale = float(spec.scale)
        self.output_shapes = [tuple(o.shape) for o in out.dnn_params.outputs]
        self.network_name = out.dnn_params.network_name

        from imx500_sam.int8 import QdqNetwork  # onnxruntime, imported only here

        self.network = QdqNetwork(out.qdq_onnx, threads=threads, fused=fast_int8)
        self._check_network()
        self.source: FrameSource | None
        if source is None:
            size = tuple(int(v) for v in (output_size or NO_SOURCE_SIZE))
            output_size = size
            black = np.zeros((size[1], size[0], 3), np.uint8)
            black.flags.writeable = False
            self.source, self._frames = None, itertools.repeat(black)
        else:
            self.source = source if isinstance(source, FrameSource) else FrameSource(source, repeat=repeat)
            self._frames = iter(self.source)
        self._output_size = tuple(int(v) for v in output_size) if output_size else None
        self.requests = 0
        self._period_ns: int | None = None
        self._clock0: int | None = None
        self._slot = -1  # the last frame slot handed out
        self._slot_base = 0
        self._busy_until = 0
        if frame_rate is not None:
            self.set_frame_rate(frame_rate)
        self.tensor_injection = tensor_injection
        self.input_tensor_enabled = input_tensor
        self._injected: np.ndarray | None = None
        self._inject_from = 0
        self._geometry: SensorGeometry | None = None
        # (ROI, rectangle, tag): picamera2 starts on the full sensor
        self._setting: _RoiSetting = (None, (0, 0, *SENSOR_FULL_SIZE), None)
        self._index = 0
        self._pending: np.ndarray | None = None
        self.pipelined = pipelined
        self._worker: ThreadPoolExecutor | None = None
        self._next: Future[SensorFrame | None] | None = None

    def _check_network(self) -> None:
        shape = self.network.input_shape
        want = (3, self.input_size[1], self.input_size[0])
        if len(shape) != 4 or any(isinstance(s, int) and s != w for s, w in zip(shape[1:], want, strict=True)):
            raise BadInputError(
                f"{self.network.path}: input shape {shape} does not match dnnParams.xml {want}.",
                hint="The QDQ ONNX and dnnParams.xml must come from the same imx500-sam convert run.",
            )

    @property
    def geometry(self) -> SensorGeometry:
        """The output-image <-> sensor mapping (known once the first frame is read)."""
        if self._geometry is None:
            if self._output_size is None:
                raise RuntimeError("geometry is known after the first frame; pass output_size to know it before")
            self._geometry = SensorGeometry.for_output(self._output_size)
        return self._geometry

    def set_frame_rate(self, fps: float) -> None:
        """Deliver frames on a clock of ``fps`` frames per second from now on (``FrameRate``)."""
        if not 0 < float(fps) <= 1000:
            raise BadInputError(f"frame rate {fps}: give a rate above 0 and at most 1000 frames per second.")
        self._period_ns = int(round(1e9 / float(fps)))
        self._clock0 = None  # re-anchored at the next frame

    def _next_slot(self) -> int:
        """The next frame slot's SensorTimestamp (ns); waits for it; counts the frames the sensor made."""
        assert self._period_ns is not None
        now = time.monotonic_ns()
        if self._clock0 is None:
            self._clock0, self._slot_base = now, self._slot + 1
            k = self._slot + 1
        else:
            k = self._slot + 1
            latest = self._slot_base + (now - self._clock0) // self._period_ns
            if latest - k >= BUFFERS:  # no free buffer: the sensor's older frames were dropped
                k = latest - BUFFERS + 1
        ts = self._clock0 + (k - self._slot_base) * self._period_ns
        if ts > now:
            time.sleep((ts - now) / 1e9)
        self.requests += k - self._slot
        self._slot = k
        return ts

    def inject(self, tensor: bytes) -> int:
        """Run the network on an injected tensor (picamera2's injection bytes) from the next frame but one."""
        if not self.tensor_injection:
            return super().inject(tensor)
        w, h = self.input_size
        try:
            self._injected = md.unpack_injection_tensor(tensor, w, h, self.input_format)
        except ValueError as exc:
            raise BadInputError(f"injected tensor: {exc}.") from exc
        self._inject_from = self._index + 1  # a frame may be in flight (pipelined): the one after it
        return self._inject_from & 0xFF

    def input_image(self, frame: SensorFrame) -> np.ndarray | None:
        """The frame's ``CnnInputTensor`` as an HxWx3 BGR image (identity input normalisation)."""
        tensor = frame.metadata.get(md.INPUT_TENSOR)
        if not tensor:
            return None
        return md.decode_input_tensor(tensor, self.input_size[0], self.input_size[1], self.input_format)

    def peek_image(self) -> np.ndarray:
        """The next frame's image, read now and kept for the next ``capture``."""
        if self._pending is None:
            first = next(self._frames, None)
            if first is None:
                raise BadInputError(f"{self.source.spec if self.source else 'source'}: the source has no frames.")
            self._pending = first
        if self._output_size is None:
            self._output_size = (self._pending.shape[1], self._pending.shape[0])
        return self._pending

    def peek_geometry(self) -> SensorGeometry:
        """The geometry, reading the first frame now if needed (the frame is kept)."""
        if self._geometry is None and self._output_size is None:
            self.peek_image()
        return self.geometry

    def set_roi(self, roi: ROI | tuple[int, int, int, int], tag: Any = None) -> None:
        """Set the inference ROI in full-sensor pixels, bounded to the sensor as picamera2 does.

        ``tag`` comes back on the frames computed with this ROI (``SensorFrame.tag``).
        """
        square = roi if isinstance(roi, ROI) else None
        x, y, w, h = roi.xywh if isinstance(roi, ROI) else (int(v) for v in roi)
        fw, fh = SENSOR_FULL_SIZE
        x0, y0 = min(max(x, 0), fw), min(max(y, 0), fh)
        x1, y1 = min(max(x + w, 0), fw), min(max(y + h, 0), fh)
        if x1 - x0 < 1 or y1 - y0 < 1:
            raise BadInputError(f"inference ROI {(x, y, w, h)} does not overlap the sensor {SENSOR_FULL_SIZE}.")
        self._setting = (square, (x0, y0, x1 - x0, y1 - y0), tag)

    def _next_image(self) -> np.ndarray | None:
        pending = self._pending
        if pending is not None:
            self._pending = None
            return pending
        return next(self._frames, None)

    def capture(self) -> SensorFrame | None:
        """The next frame with the network run on the ROI, and libcamera's metadata.

        Pipelined, the emulated sensor computes the next frame (with the ROI set at that moment)
        while the caller handles this one, as the IMX500 runs its network on chip: an ROI then takes
        effect one frame later, and ``SensorFrame.roi`` / ``tag`` say which ROI a frame used.
        """
        if not self.pipelined:
            return self._produce(self._setting)
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imx500-emulator")
        if self._next is None:
            self._next = self._worker.submit(self._produce, self._setting)
        frame = self._next.result()
        self._next = self._worker.submit(self._produce, self._setting) if frame is not None else None
        return frame

    def _produce(self, setting: _RoiSetting) -> SensorFrame | None:
        """Read a frame and run the network on ``setting``'s ROI."""
        t0 = time.perf_counter()
        image = self._next_image()
        if image is None:
            return None
        if self._period_ns is not None:
            timestamp = self._next_slot()
            t0 = time.perf_counter()
        else:
            timestamp = time.monotonic_ns()
            self.requests += 1
        if self._output_size is None:
            self._output_size = (image.shape[1], image.shape[0])
        if (image.shape[1], image.shape[0]) != self._output_size:
            image = cv2.resize(image, self._output_size, interpolation=cv2.INTER_AREA)
        geometry = self.geometry
        if self._period_ns is not None and timestamp < self._busy_until:
            return self._frame_without_tensor(image, geometry, setting, timestamp)  # the DNN is still busy
        t1 = time.perf_counter()
        injected = self._injected if self._injected is not None and self._index >= self._inject_from else None
        rgb = injected if injected is not None else self.input_crop(image, geometry, setting)
        tensor = self.network_input(rgb)
        t2 = time.perf_counter()
        raw = self.network(tensor)
        t3 = time.perf_counter()
        if self._period_ns is not None:
            self._busy_until = timestamp + int((t3 - t1) * 1e9)
        outputs = self._split_outputs(raw)
        metadata = self.metadata(
            outputs,
            geometry,
            dnn_us=(t3 - t2) * 1e6,
            dsp_us=(t2 - t1) * 1e6,
            ts=timestamp,
            input_rgb=rgb if self.input_tensor_enabled else None,
        )
        t4 = time.perf_counter()
        decoded = md.decode_outputs(metadata)
        kpi = md.decode_kpi(metadata)
        return self._next_frame(
            image,
            metadata,
            geometry,
            setting,
            timestamp,
            outputs=decoded,
            dnn_ms=kpi[0] if kpi else None,
            dsp_ms=kpi[1] if kpi else None,
            extra={
                "source_ms": (t1 - t0) * 1e3,
                "crop_quantise_ms": (t2 - t1) * 1e3,
                "network_ms": (t3 - t2) * 1e3,
                "metadata_ms": (t4 - t3) * 1e3,
                "decode_ms": (time.perf_counter() - t4) * 1e3,
            },
        )

    def _frame_without_tensor(
        self, image: np.ndarray, geometry: SensorGeometry, setting: _RoiSetting, timestamp: int
    ) -> SensorFrame:
        metadata = {md.SCALER_CROP: tuple(geometry.scaler_crop), md.SENSOR_TIMESTAMP: timestamp}
        if self._period_ns is not None:
            metadata[md.FRAME_DURATION] = self._period_ns // 1000
        return self._next_frame(image, metadata, geometry, setting, timestamp, outputs=None)

    def _next_frame(
        self,
        image: np.ndarray,
        metadata: dict[str, Any],
        geometry: SensorGeometry,
        setting: _RoiSetting,
        timestamp: int,
        **rest: Any,
    ) -> SensorFrame:
        """The next frame (its index counted here), with the ROI and tag of ``setting``."""
        frame = SensorFrame(
            index=self._index,
            image=image,
            metadata=metadata,
            geometry=geometry,
            roi=setting[0],
            timestamp_ns=timestamp,
            tag=setting[2],
            **rest,
        )
        self._index += 1
        return frame

    def input_crop(self, image: np.ndarray, geometry: SensorGeometry, setting: _RoiSetting | None = None) -> np.ndarray:
        """The ROI (default: the current one) cropped and scaled to the input size: HxWx3 uint8 RGB."""
        roi, full_rect, _ = setting or self._setting
        if roi is not None:
            rect = geometry.roi_rect(roi)
        else:
            x, y, w, h = geometry.sensor_to_output(full_rect)
            rect = (round(x), round(y), max(1, round(x + w) - round(x)), max(1, round(y + h) - round(y)))
        crop = crop_rect(image, rect, self.input_size)
        return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)  # the network's input format is RGB

    def network_input(self, rgb: np.ndarray) -> np.ndarray:
        """What the sensor hands the network for an HxWx3 uint8 RGB input: 1x3xHxW float32 ``t * scale``, ``t`` the
        input preprocessor's integers (``imx500_sam.preprocessor``), ``scale`` dnnParams'."""
        return preprocess(self.preprocessor, rgb, self.input_scale)[None]

    def infer(self, rgb: np.ndarray) -> list[np.ndarray]:
        """The network alone on an HxWx3 uint8 RGB input (no frame, no metadata): its output tensors."""
        return self._split_outputs(self.network(self.network_input(rgb)))

    def input_tensor(
        self, image: np.ndarray, geometry: SensorGeometry, setting: _RoiSetting | None = None
    ) -> np.ndarray:
        """The network input for an ROI (default: the current one): crop, scale, RGB, quantise (1xCxHxW)."""
        return self.network_input(self.input_crop(image, geometry, setting))

    def _split_outputs(self, raw: np.ndarray) -> list[np.ndarray]:
        arr = np.asarray(raw, dtype=np.float32)[0]
        want = self.output_shapes[0]
        if arr.size != int(np.prod(want)):
            raise BadInputError(f"{self.network.path}: output {arr.shape} does not match dnnParams.xml {want}.")
        return [arr.reshape(want)]

    def metadata(
        self,
        outputs: list[np.ndarray],
        geometry: SensorGeometry,
        dnn_us: float,
        dsp_us: float,
        ts: int,
        input_rgb: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """libcamera's per-frame IMX500 metadata for ``outputs`` (and the input tensor, when read back)."""
        info = md.pack_output_tensor_info(self.network_name, [o.shape for o in outputs], self._index)
        out = {
            md.OUTPUT_TENSOR: md.encode_output_tensor(outputs),
            md.OUTPUT_TENSOR_INFO: tuple(info),
            md.KPI_INFO: md.kpi_value(dnn_us, dsp_us),
            md.SCALER_CROP: tuple(geometry.scaler_crop),
            md.SENSOR_TIMESTAMP: ts,
        }
        if input_rgb is not None:
            out[md.INPUT_TENSOR] = md.encode_input_tensor(input_rgb, self.input_format)
        if self._period_ns is not None:
            out[md.FRAME_DURATION] = self._period_ns // 1000
        return out

    def close(self) -> None:
        """Stop the pipelined worker and release the frame source."""
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._worker = None
            self._next = None
        if self.source is not None:
            self.source.close()
