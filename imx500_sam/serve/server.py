"""``imx500-sam serve`` from start to stop: sensor, web server thread, camera loop, clean stop.

The camera loop runs in the main thread, as ``run``'s does, so Ctrl-C / SIGTERM (``imx500_sam.procs``) interrupt it
there; the ``finally`` stops the web server (streams ended), the power sampler and releases the camera, and the CLI
exits 130 / 143. The web server (aiohttp) runs its event loop in a daemon thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imx500_sam.errors import BadInputError, ImxSamError, ToolchainMissingError
from imx500_sam.serve.engine import MAX_PROMPTS, ServeEngine

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8500
EMULATOR_FRAME_RATE = 30.0  # the emulator's default frame clock for photos: a camera's rate, not as fast as it can
POWER_PERIOD_S = 2.0


@dataclass
class ServeOptions:
    """Everything ``imx500-sam serve`` takes (either ``rpk`` or ``emulate`` + ``source``)."""

    rpk: Path | None = None
    emulate: Path | None = None
    source: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    masks_only: bool = False
    max_prompts: int = MAX_PROMPTS
    frame_rate: float | None = None
    threads: int | None = None
    fast_int8: bool = False


@dataclass(frozen=True)
class ServeAddress:
    """Where the page is: the URL to open (with the token when there is one)."""

    url: str
    host: str
    port: int
    token: str | None


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def access_token(host: str, token: str | None) -> str | None:
    """The token to require: the one given, a new one for a non-loopback ``host``, else None."""
    if token is not None:
        if not token or any(c.isspace() for c in token) or len(token) < 8:
            raise BadInputError("--token: give at least 8 characters without spaces.")
        return token
    return None if is_loopback(host) else secrets.token_urlsafe(24)


@dataclass(frozen=True)
class PowerState:
    """The power shown in ``/api/state``: watts (None when not readable) and how it was measured."""

    watts: float | None
    note: str


class PowerMonitor:
    """The PMIC's power (``vcgencmd pmic_read_adc``, a Raspberry Pi 5) every few seconds when readable: the device
    bench's ``PowerSampler``, keeping its newest sample only."""

    def __init__(self, period_s: float = POWER_PERIOD_S) -> None:
        from imx500_sam.bench.power import PowerSampler

        self.period_s = period_s
        self._sampler: PowerSampler | None = PowerSampler(rate_hz=1.0 / period_s, keep=1)
        try:
            self._first = self._sampler.probe().watts
        except ImxSamError:
            self._sampler = None
            return
        self._sampler.start()

    def __call__(self) -> PowerState:
        sampler = self._sampler
        if sampler is None:
            return PowerState(None, "PMIC not readable here (a Raspberry Pi 5 has one: vcgencmd pmic_read_adc)")
        if sampler.error is not None:
            return PowerState(None, f"PMIC reading stopped: {sampler.error}")
        latest = sampler.samples[-1:]
        watts = latest[0].watts if latest else self._first
        return PowerState(round(watts, 3), f"PMIC rails (V x I summed), every {self.period_s:g} s")

    def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()


class WebServer:
    """An aiohttp application on its own event loop in a daemon thread."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        from aiohttp import web

        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, host, port)  # the runner's shutdown_timeout applies
        try:
            self.loop.run_until_complete(site.start())
        except OSError as exc:
            self.loop.run_until_complete(self.runner.cleanup())
            self.loop.close()
            raise BadInputError(
                f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}).",
                hint="Pick another --port (0: any free one) or --host.",
            ) from None
        self.port = int(self.runner.addresses[0][1])
        self._thread = threading.Thread(target=self.loop.run_forever, name="imx500-sam-web", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the streams, close the listening socket, stop the loop."""
        if not self.loop.is_running():
            return
        with contextlib.suppress(Exception):  # stopping anyway
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=5.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5.0)
        if not self._thread.is_alive():
            self.loop.close()


def _url(host: str, port: int, token: str | None) -> str:
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(options: ServeOptions, on_ready: Callable[[ServeAddress], None] | None = None) -> int:
    """Serve the page until the source ends, Ctrl-C or SIGTERM; returns the frames handled."""
    try:
        from imx500_sam.serve.app import AppConfig, make_app
    except ImportError as exc:
        raise ToolchainMissingError(
            f"imx500-sam serve needs aiohttp ({exc}).",
            hint='pip install "imx500-sam[serve]" (on Raspberry Pi OS also: sudo apt install python3-aiohttp).',
        ) from exc
    from imx500_sam.runtime.runner import RunOptions, crop_convention, open_sensor

    if not 0 <= options.port <= 65535:
        raise BadInputError(f"--port {options.port}: give 0..65535 (0: any free port).")
    if options.frame_rate is not None and not 0 < options.frame_rate <= 1000:
        raise BadInputError(f"--frame-rate {options.frame_rate}: give a rate above 0 and at most 1000.")
    token = access_token(options.host, options.token)
    if options.rpk is not None and (options.threads is not None or options.fast_int8):
        raise BadInputError("--threads and --fast-int8 are for the emulator; with --rpk the camera runs the network.")
    run_options = RunOptions(
        rpk=options.rpk, emulate=options.emulate, source=options.source, threads=options.threads,
        fast_int8=options.fast_int8,
    )  # fmt: skip
    frame_rate = options.frame_rate
    if frame_rate is None and options.emulate is not None:
        frame_rate = EMULATOR_FRAME_RATE
    sensor = open_sensor(run_options, loop=True, frame_rate=frame_rate, images=not options.masks_only)
    web_server: WebServer | None = None
    power: PowerMonitor | None = None
    try:
        source = getattr(sensor, "source", None)
        if frame_rate == EMULATOR_FRAME_RATE and options.frame_rate is None and getattr(source, "fps", None):
            sensor.set_frame_rate(float(source.fps))  # a video plays at its own rate
        engine = ServeEngine(
            sensor,
            masks_only=options.masks_only,
            max_prompts=options.max_prompts,
            convention=crop_convention(run_options, sensor),  # the model's training crop, as run
        )
        power = PowerMonitor()
        config = AppConfig(
            token=token,
            masks_only=options.masks_only,
            source="camera" if options.rpk is not None else "emulator",
            power=power,
        )
        web_server = WebServer(make_app(engine, config), options.host, options.port)
        if on_ready is not None:
            on_ready(ServeAddress(_url(options.host, web_server.port, token), options.host, web_server.port, token))
        return engine.run()
    finally:
        if web_server is not None:
            web_server.stop()
        if power is not None:
            power.stop()
        sensor.close()
