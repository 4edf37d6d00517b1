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
  ``CnnKpiInfo`` (measured host time, microseconds), ``ScalerCrop``, ``SensorTimestamp``.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from converter.artifacts import INTRINSICS_JSON, ConvertOutput
from imx500_sam.errors import BadInputError
from imx500_sam.facts import SENSOR_FULL_SIZE
from imx500_sam.prompt import ROI
from imx500_sam.runtime import metadata as md
from imx500_sam.runtime.geometry import SensorGeometry, crop_source, roi_source_rect
from imx500_sam.runtime.sensor import Sensor, SensorFrame, check_segmentation_intrinsics
from imx500_sam.runtime.sources import FrameSource

_RoiSetting = tuple[ROI | None, tuple[int, int, int, int], Any]  # square ROI (if any), rectangle, tag


class EmulatedIMX500(Sensor):
    """The IMX500 emulated with a convert output directory and an OpenCV frame source."""

    def __init__(
        self,
        convert_out: str | Path | ConvertOutput,
        source: FrameSource | str | int | Path,
        output_size: tuple[int, int] | None = None,
        threads: int | None = None,
        repeat: bool = False,
        pipelined: bool = False,
    ) -> None:
        out = convert_out if isinstance(convert_out, ConvertOutput) else ConvertOutput.load(convert_out)
        check_segmentation_intrinsics(out.intrinsics, str(out.out_dir / INTRINSICS_JSON))
        spec = out.dnn_params.input
        where = str(out.dnn_params.path)
        if spec.bits != 8 or spec.signed or spec.shift != 0 or len(spec.shape) != 3 or spec.shape[0] != 3:
            raise BadInputError(
                f"{where}: input {spec.shape} {'signed' if spec.signed else 'unsigned'} {spec.bits}-bit "
                f"shift {spec.shift}: the emulator runs 3-channel unsigned 8-bit inputs with shift 0.",
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

        self.network = QdqNetwork(out.qdq_onnx, threads=threads)
        self._check_network()
        self.source = source if isinstance(source, FrameSource) else FrameSource(source, repeat=repeat)
        self._frames = iter(self.source)
        self._output_size = tuple(int(v) for v in output_size) if output_size else None
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

    def peek_image(self) -> np.ndarray:
        """The next frame's image, read now and kept for the next ``capture``."""
        if self._pending is None:
            first = next(self._frames, None)
            if first is None:
                raise BadInputError(f"{self.source.spec}: the source has no frames.")
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
        timestamp = time.monotonic_ns()
        if self._output_size is None:
            self._output_size = (image.shape[1], image.shape[0])
        if (image.shape[1], image.shape[0]) != self._output_size:
            image = cv2.resize(image, self._output_size, interpolation=cv2.INTER_AREA)
        geometry = self.geometry
        t1 = time.perf_counter()
        tensor = self.input_tensor(image, geometry, setting)
        t2 = time.perf_counter()
        raw = self.network(tensor)
        t3 = time.perf_counter()
        outputs = self._split_outputs(raw)
        metadata = self.metadata(outputs, geometry, dnn_us=(t3 - t2) * 1e6, dsp_us=(t2 - t1) * 1e6, ts=timestamp)
        t4 = time.perf_counter()
        decoded = md.decode_outputs(metadata)
        kpi = md.decode_kpi(metadata)
        frame = SensorFrame(
            index=self._index,
            image=image,
            metadata=metadata,
            geometry=geometry,
            roi=setting[0],
            outputs=decoded,
            dnn_ms=kpi[0] if kpi else None,
            dsp_ms=kpi[1] if kpi else None,
            timestamp_ns=timestamp,
            tag=setting[2],
            extra={
                "source_ms": (t1 - t0) * 1e3,
                "crop_quantise_ms": (t2 - t1) * 1e3,
                "network_ms": (t3 - t2) * 1e3,
                "metadata_ms": (t4 - t3) * 1e3,
                "decode_ms": (time.perf_counter() - t4) * 1e3,
            },
        )
        self._index += 1
        return frame

    def input_tensor(
        self, image: np.ndarray, geometry: SensorGeometry, setting: _RoiSetting | None = None
    ) -> np.ndarray:
        """The network input for an ROI (default: the current one): crop, scale, RGB, quantise (1xCxHxW)."""
        roi, full_rect, _ = setting or self._setting
        if roi is not None:
            rect = roi_source_rect(geometry, roi)
        else:
            x, y, w, h = geometry.sensor_to_output(full_rect)
            rect = (round(x), round(y), max(1, round(x + w) - round(x)), max(1, round(y + h) - round(y)))
        crop = crop_source(image, rect, self.input_size)
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)  # the network's input format is RGB
        # The sensor hands the network its 8-bit pixels with dnnParams' scale: value = q * scale.
        return np.multiply(rgb.transpose(2, 0, 1)[None], self.input_scale, dtype=np.float32)

    def _split_outputs(self, raw: np.ndarray) -> list[np.ndarray]:
        arr = np.asarray(raw, dtype=np.float32)[0]
        want = self.output_shapes[0]
        if arr.size != int(np.prod(want)):
            raise BadInputError(f"{self.network.path}: output {arr.shape} does not match dnnParams.xml {want}.")
        return [arr.reshape(want)]

    def metadata(
        self, outputs: list[np.ndarray], geometry: SensorGeometry, dnn_us: float, dsp_us: float, ts: int
    ) -> dict[str, Any]:
        """libcamera's per-frame IMX500 metadata for ``outputs``."""
        info = md.pack_output_tensor_info(self.network_name, [o.shape for o in outputs], self._index)
        return {
            md.OUTPUT_TENSOR: md.encode_output_tensor(outputs),
            md.OUTPUT_TENSOR_INFO: tuple(info),
            md.KPI_INFO: md.kpi_value(dnn_us, dsp_us),
            md.SCALER_CROP: tuple(geometry.scaler_crop),
            md.SENSOR_TIMESTAMP: ts,
        }

    def close(self) -> None:
        """Stop the pipelined worker and release the frame source."""
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._worker = None
            self._next = None
        self.source.close()
