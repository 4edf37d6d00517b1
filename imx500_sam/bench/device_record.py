"""The device bench's typed record: one row per frame, one summary per phase, the sweep, and their JSON.

``bench_device.json`` is written from these records (``DeviceBenchRecord.to_json``) as the run goes; the
summary, the plots and the CLI read the records by attribute, never the JSON back by key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imx500_sam.bench.record import header, stats, write_json
from imx500_sam.runtime.sensor import sensor_to_mask_ms

CHECKPOINT_FRAMES = 200  # frames between JSON rewrites (a rewrite delays the next frame by its write time)
JSON_NAME = "bench_device.json"

DEFINITIONS = {
    "dnn_ms / dsp_ms": "CnnKpiInfo per frame (picamera2 IMX500.get_kpi_info): the sensor's own timing",
    "latency_ms": "mask ready on the CPU (time.monotonic_ns) minus the frame's SensorTimestamp "
    "(start of exposure): exposure + readout + DNN + transfer + host decode/paste",
    "rps": "sensor frames (libcamera requests) per second, frames dropped while an ROI settles included",
    "fps": "frames received by the bench per second",
    "dps": "frames carrying an output tensor per second",
    "rates": "per second of sensor time (SensorTimestamp span of the phase); received_per_wall_s beside",
}


def phase_label(mode: str, rate: float | None, sweep: bool) -> str:
    """The phase's name in the JSON and the summary: the ROI mode, with the frame rate in a sweep."""
    return f"{mode}@{rate:g}" if sweep and rate is not None else mode


@dataclass(frozen=True, kw_only=True)
class FrameRow:
    """One frame of a phase: the sensor's timing, whether it carried a tensor, and the latency to its mask."""

    phase: str
    rate: float | None
    frame: int
    timestamp_ns: int
    has_tensor: bool
    dnn_ms: float | None
    dsp_ms: float | None
    latency_ms: float | None
    host_ms: float
    prompt: int
    roi: list[float]
    requests: int

    @classmethod
    def from_result(cls, phase: str, rate: float | None, result: Any, ready_ns: int, requests: int) -> FrameRow:
        """The row of one ``PromptSession`` result, ``ready_ns`` the monotonic time its mask was ready."""
        f = result.sensor_frame
        has = f.outputs is not None
        latency = sensor_to_mask_ms(f, ready_ns)
        return cls(
            phase=phase,
            rate=rate,
            frame=f.index,
            timestamp_ns=int(f.timestamp_ns),
            has_tensor=has,
            dnn_ms=None if f.dnn_ms is None else round(f.dnn_ms, 3),
            dsp_ms=None if f.dsp_ms is None else round(f.dsp_ms, 3),
            latency_ms=None if latency is None else round(latency, 3),
            host_ms=round(result.host_ms, 3),
            prompt=result.prompt,
            roi=list(result.roi.xywh),
            requests=requests,
        )


@dataclass(frozen=True, kw_only=True)
class PhaseSummary:
    """RPS / FPS / DPS and the timing statistics (``record.stats`` dicts) of one phase."""

    phase: str
    mode: str
    frame_rate_set: float | None
    frames: int
    frames_with_tensor: int
    every_frame_has_mask: bool
    requests: int
    wall_s: float
    sensor_span_s: float
    rps: float | None
    fps: float | None
    dps: float | None
    received_per_wall_s: float | None
    frame_period_ms: dict[str, float] | None
    dnn_ms: dict[str, float] | None
    dsp_ms: dict[str, float] | None
    latency_ms: dict[str, float] | None
    negative_latencies: int  # would mean the clocks differ
    host_ms: dict[str, float] | None

    @classmethod
    def of(
        cls, phase: str, mode: str, rate: float | None, rows: list[FrameRow], wall_s: float, requests: int
    ) -> PhaseSummary:
        """Summarise ``rows``: rates over the sensor's own time (n frames span n frame periods), so a backlog
        of queued frames at the start of a phase does not inflate them; the wall time is kept beside."""
        n = len(rows)
        with_tensor = [r for r in rows if r.has_tensor]
        ts = np.array([r.timestamp_ns for r in rows], np.int64)
        periods = np.diff(ts) / 1e6 if ts.size > 1 else np.zeros(0)
        latencies = [r.latency_ms for r in with_tensor if r.latency_ms is not None]
        span = (ts[-1] - ts[0]) / 1e9 * n / (n - 1) if n > 1 and ts[0] > 0 and ts[-1] > ts[0] else wall_s
        return cls(
            phase=phase,
            mode=mode,
            frame_rate_set=rate,
            frames=n,
            frames_with_tensor=len(with_tensor),
            every_frame_has_mask=n > 0 and len(with_tensor) == n,
            requests=requests,
            wall_s=round(wall_s, 3),
            sensor_span_s=round(span, 3),
            rps=round(requests / span, 3) if span > 0 else None,
            fps=round(n / span, 3) if span > 0 else None,
            dps=round(len(with_tensor) / span, 3) if span > 0 else None,
            received_per_wall_s=round(n / wall_s, 3) if wall_s > 0 else None,
            frame_period_ms=stats(list(periods)),
            dnn_ms=stats([r.dnn_ms for r in with_tensor]),
            dsp_ms=stats([r.dsp_ms for r in with_tensor]),
            latency_ms=stats(latencies),
            negative_latencies=sum(1 for v in latencies if v < 0),
            host_ms=stats([r.host_ms for r in rows]),
        )


def _median(s: dict[str, float] | None) -> float | None:
    return None if not s else s.get("median")


@dataclass(frozen=True, kw_only=True)
class SweepRate:
    """One rate of a frame-rate sweep."""

    frame_rate_set: float
    fps: float | None
    dps: float | None
    rps: float | None
    frames: int
    frames_with_tensor: int
    dnn_ms_median: float | None
    latency_ms_median: float | None


@dataclass(frozen=True, kw_only=True)
class SweepSummary:
    """Per rate: FPS / DPS; the highest rate at which every frame carried a mask."""

    rates: list[SweepRate]
    highest_rate_every_frame_has_mask: float | None

    @classmethod
    def of(cls, phases: list[PhaseSummary]) -> SweepSummary:
        swept = [p for p in phases if p.frame_rate_set is not None]
        rows = [
            SweepRate(
                frame_rate_set=p.frame_rate_set,
                fps=p.fps,
                dps=p.dps,
                rps=p.rps,
                frames=p.frames,
                frames_with_tensor=p.frames_with_tensor,
                dnn_ms_median=_median(p.dnn_ms),
                latency_ms_median=_median(p.latency_ms),
            )
            for p in swept
        ]
        ok = [p.frame_rate_set for p in swept if p.every_frame_has_mask]
        return cls(rates=rows, highest_rate_every_frame_has_mask=max(ok) if ok else None)


@dataclass(kw_only=True)
class DeviceBenchRecord:
    """What a device bench measured, written to ``out`` as it comes (atomic JSON, ``status`` how it ended)."""

    out: Path
    header: dict[str, Any]
    sensor: str
    network: str
    options: dict[str, Any]
    status: str = "running"
    network_name: str | None = None
    input_size: list[int] | None = None
    prompt_crop: str | None = None  # the crop convention the prompts' ROIs follow (imx500_sam.prompt)
    prompts: dict[str, list[list[float]]] | None = None
    idle_frame_rate: float | None = None
    idle_frames: int | None = None
    phases: list[PhaseSummary] = field(default_factory=list)
    sweep: SweepSummary | None = None
    power: dict[str, Any] | None = None  # PowerSampler.summary() plus its samples
    frames: list[FrameRow] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    close_error: str | None = None
    plot_error: str | None = None
    _since_write: int = 0

    @classmethod
    def start(cls, out: Path, options: Any, command: str | None = None) -> DeviceBenchRecord:
        """A new record for ``options`` (``DeviceBenchOptions``)."""
        return cls(
            out=Path(out),
            header=header("bench_device", command),
            sensor="IMX500 (picamera2)" if options.rpk else "emulated IMX500 (host)",
            network=str(options.rpk or options.emulate),
            options={
                "frames": options.frames,
                "frame_rate": options.frame_rate,
                "sweep": list(options.sweep_rates) if options.sweep else None,
                "warmup": options.warmup,
                "roi": options.roi,
                "power": options.power,
                "power_rate_hz": options.power_rate_hz if options.power else None,
                "idle_s": options.idle_s if options.power else None,
            },
        )

    def add_frame(self, row: FrameRow) -> None:
        self.frames.append(row)
        self._since_write += 1
        if self._since_write >= CHECKPOINT_FRAMES:
            self.write_json()

    def to_json(self) -> dict[str, Any]:
        """The JSON document (the keys of ``bench_device.json``)."""
        data: dict[str, Any] = dict(self.header)
        data.update(
            status=self.status,
            sensor=self.sensor,
            network=self.network,
            options=self.options,
            definitions=DEFINITIONS,
            phases=[asdict(p) for p in self.phases],
            sweep=asdict(self.sweep) if self.sweep else None,
            power=self.power,
            frames=[asdict(r) for r in self.frames],
        )
        optional = {
            "network_name": self.network_name,
            "input_size": self.input_size,
            "prompt_crop": self.prompt_crop,
            "prompts": self.prompts,
            "idle_frame_rate": self.idle_frame_rate,
            "idle_frames": self.idle_frames,
            "close_error": self.close_error,
            "plot_error": self.plot_error,
        }
        data.update({k: v for k, v in optional.items() if v is not None})
        if self.files:
            data["files"] = self.files
        return data

    def write_json(self) -> None:
        self._since_write = 0
        write_json(self.out / JSON_NAME, self.to_json())
