"""Power on a Raspberry Pi 5: the PMIC's rail readings from ``vcgencmd pmic_read_adc``.

The output has one line per reading, e.g. ``  VDD_CORE_A current(7)=1.42880000A`` and
``     EXT5V_V volt(24)=5.05716000V``: a rail name with ``_A`` (current) or ``_V`` (voltage), the ADC
channel in brackets, the value and its unit. 12 rails have both; ``EXT5V`` (the 5 V input) and ``BATT``
have a voltage only. The PMIC-visible power is the sum of V x I over the rails that have both; the board's
input power is not visible to the PMIC (no 5 V input current): a USB power meter gives the whole-board figure.

Each sample spawns ``vcgencmd`` (tens of ms): sample at a few Hz. ``PowerSampler`` samples in a thread and
tags each sample with the current phase (``idle`` baseline, then the run), so the difference of the phase
means is the run's cost over the idle camera.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imx500_sam.errors import BadInputError, ToolchainMissingError, clip_words

VCGENCMD = "vcgencmd"
PMIC_COMMAND = ("pmic_read_adc",)
_LINE = re.compile(
    r"^\s*(?P<rail>[A-Za-z0-9_]+?)_(?P<kind>[AV])\s+(?:current|volt)\(\d+\)=(?P<value>[-+0-9.eE]+)[AV]\s*$"
)

METHOD = (
    "Raspberry Pi 5 PMIC via `vcgencmd pmic_read_adc`, sampled in a background thread at the rate given; "
    "power = sum of V x I over the rails that report both (12 rails); idle baseline = the camera streaming "
    "with no network loaded, then the run; reported: mean of each phase and their difference."
)
LIMITS = (
    "PMIC-visible rails only: the 5 V input (EXT5V) has no current reading, so USB/camera-connector 5 V loads, "
    "regulator losses and the camera module's own supply (the IMX500 is powered from the Pi's 3V3 via the camera "
    "connector regulators) are at best seen indirectly; 3V3_DAC/3V3_ADC may be fed from 3V3_SYS (counted twice, "
    "negligible currents); each sample spawns a process (a few Hz, and the sampling itself costs CPU power); "
    "whole-board figures need an external USB-C power meter."
)


@dataclass(frozen=True)
class PmicReading:
    """One ``pmic_read_adc`` output: current (A) and voltage (V) per rail name."""

    currents: dict[str, float]
    volts: dict[str, float]

    @property
    def rails(self) -> list[str]:
        """Rails with both a current and a voltage (their power is known)."""
        return sorted(set(self.currents) & set(self.volts))

    def rail_watts(self) -> dict[str, float]:
        """V x I per rail with both readings."""
        return {r: self.currents[r] * self.volts[r] for r in self.rails}

    @property
    def watts(self) -> float:
        """Sum of V x I over the rails with both readings."""
        return float(sum(self.rail_watts().values()))


def parse_pmic_adc(text: str) -> PmicReading:
    """Parse ``vcgencmd pmic_read_adc`` output; lines in another format are ignored."""
    currents: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        (currents if m["kind"] == "A" else volts)[m["rail"]] = float(m["value"])
    return PmicReading(currents, volts)


def read_pmic(timeout_s: float = 2.0) -> PmicReading:
    """One reading from ``vcgencmd pmic_read_adc``; an error when there is no PMIC to read (not a Pi 5)."""
    exe = shutil.which(VCGENCMD)
    if exe is None:
        raise ToolchainMissingError(
            "--power: vcgencmd not found (it comes with Raspberry Pi OS).",
            hint="Run on a Raspberry Pi 5, or drop --power and measure with a USB power meter.",
        )
    try:
        proc = subprocess.run([exe, *PMIC_COMMAND], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BadInputError(f"--power: vcgencmd pmic_read_adc failed ({exc}).") from exc
    reading = parse_pmic_adc(proc.stdout)
    if proc.returncode != 0 or not reading.rails:
        said = (proc.stdout.strip() or proc.stderr.strip() or f"exit status {proc.returncode}").splitlines()[0]
        said = clip_words(said, 120)
        raise BadInputError(
            f"--power: no PMIC rail readings from `vcgencmd pmic_read_adc` ({said}); only a Raspberry Pi 5 has them.",
            hint="Drop --power (a Pi 4 has no PMIC current sensing) and measure with a USB power meter.",
        )
    return reading


@dataclass
class PowerSample:
    """A PMIC sample: seconds since the sampler started, the phase, total and per-rail watts."""

    t_s: float
    phase: str
    watts: float
    rails: dict[str, float]


@dataclass
class PowerSampler:
    """Samples the PMIC at ``rate_hz`` in a thread; ``phase`` tags the samples taken from then on.

    ``keep``: only the newest ``keep`` samples are kept (a long-running server's live reading); None: all.
    """

    rate_hz: float = 4.0
    read: Callable[[], PmicReading] = read_pmic
    samples: list[PowerSample] = field(default_factory=list)
    phase: str = "idle"
    error: str | None = None
    keep: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.rate_hz <= 20:
            raise BadInputError(f"--power-rate {self.rate_hz}: give 0 < rate <= 20 Hz (each sample spawns vcgencmd).")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()

    def probe(self) -> PmicReading:
        """One reading now (raises when there is no PMIC): call before starting a run."""
        return self.read()

    def start(self) -> None:
        """Start sampling in the background."""
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="imx500-sam-pmic", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        period = 1.0 / self.rate_hz
        next_t = time.monotonic()
        while not self._stop.is_set():
            phase = self.phase
            try:
                reading = self.read()
            except Exception as exc:  # a failing sample ends sampling; what was sampled is kept
                self.error = str(exc)
                return
            self.samples.append(PowerSample(time.monotonic() - self._t0, phase, reading.watts, reading.rail_watts()))
            if self.keep is not None and len(self.samples) > self.keep:
                del self.samples[: len(self.samples) - self.keep]
            next_t += period
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def stop(self) -> None:
        """Stop sampling (waits for the sample in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def summary(self, idle: str = "idle", run: str = "run") -> dict[str, Any]:
        """Mean watts per phase, the run's difference over idle, per-rail differences, method and limits."""
        by: dict[str, list[PowerSample]] = {}
        for s in self.samples:
            by.setdefault(s.phase, []).append(s)
        out: dict[str, Any] = {"method": METHOD, "limits": LIMITS, "rate_hz": self.rate_hz, "phases": {}}
        for phase, ss in by.items():
            span = ss[-1].t_s - ss[0].t_s if len(ss) > 1 else 0.0
            out["phases"][phase] = {
                "samples": len(ss),
                "achieved_hz": round((len(ss) - 1) / span, 2) if span > 0 else None,
                "mean_w": round(statistics.fmean(s.watts for s in ss), 4),
                "stdev_w": round(statistics.pstdev(s.watts for s in ss), 4),
            }
        if idle in by and run in by:
            diff = out["phases"][run]["mean_w"] - out["phases"][idle]["mean_w"]
            out["run_minus_idle_w"] = round(diff, 4)
            rails = sorted(set().union(*(s.rails for s in self.samples)))
            out["rail_run_minus_idle_w"] = {
                r: round(
                    statistics.fmean(s.rails.get(r, 0.0) for s in by[run])
                    - statistics.fmean(s.rails.get(r, 0.0) for s in by[idle]),
                    4,
                )
                for r in rails
            }
        if self.error:
            out["error"] = self.error
        return out
