"""The web side of ``imx500-sam serve``: an aiohttp application over a ``ServeEngine``.

aiohttp: a maintained asyncio HTTP server (wheels for aarch64, Debian/Raspberry Pi OS package
``python3-aiohttp``), streaming responses for MJPEG, middlewares for the token; a few MB, no torch.

Endpoints (JSON errors: ``{"error": "one line"}`` with a 4xx/5xx status; the loop goes on):

- ``GET /`` the page; ``GET /app.js``, ``GET /style.css`` its code (package data, read once; no other file);
- ``GET /api/state``: network, mode, rates, KPIs, prompts;
- ``POST /api/prompts`` ``{"box": [x, y, w, h]}`` (stream pixels) -> 201 ``{"id": n}``; ``DELETE /api/prompts``
  (all); ``DELETE /api/prompts/{id}``; ``GET /api/prompts/{id}/mask.png`` (latest mask, stream size, 0/255);
- ``PUT /api/track`` ``{"track": true}``;
- ``GET /stream.mjpg`` (frames with masks), ``GET /api/overlay.jpg`` (one such frame): 403 in masks-only mode;
- ``GET /masks.mjpg``: the masks and their ROIs on black (no frame pixel).

Safety: a token (query ``?token=``, header ``Authorization: Bearer``, or the cookie the page sets) is required
when one is configured, else 401; without a token only loopback ``Host`` names are accepted (DNS rebinding);
request bodies must be JSON (``Content-Type: application/json``: a cross-site form cannot post) and small. A
stream client gets the newest frame each time it is ready for one: a slow client skips frames, nothing queues.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import web

from imx500_sam.serve.engine import (
    RequestError,
    ServeEngine,
    Snapshot,
    encode_jpeg,
    encode_mask_png,
    parse_box,
    render,
)
from imx500_sam.serve.server import PowerState

MAX_BODY = 16 * 1024
MAX_STREAM_CLIENTS = 16
COMMAND_TIMEOUT_S = 10.0
ASSETS = {
    "/": ("index.html", "text/html"),
    "/app.js": ("app.js", "text/javascript"),
    "/style.css": ("style.css", "text/css"),
}
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
BOUNDARY = "imx500samframe"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class AppConfig:
    """What the web side needs besides the engine."""

    token: str | None
    masks_only: bool
    source: str  # "camera" / "emulator"
    power: Callable[[], PowerState]
    cookie: str = "imx500_sam_token"


class FrameHub:
    """The newest snapshot, on the event loop; stream clients wait for the next one."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.latest: Snapshot | None = None
        self.closed = False
        self._event = asyncio.Event()
        self._pending: Snapshot | None = None

    def offer(self, snap: Snapshot) -> None:
        """From the camera thread: hand over a snapshot (at most one call waits on the loop at a time)."""
        first = self._pending is None
        self._pending = snap
        if first and not self.closed:
            self.loop.call_soon_threadsafe(self._take)

    def _take(self) -> None:
        snap, self._pending = self._pending, None
        if snap is not None:
            self.latest = snap
            self._wake()

    def close(self) -> None:
        """End every stream (from the loop)."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def next_after(self, seq: int) -> Snapshot | None:
        """The first snapshot newer than ``seq`` (None once closed)."""
        while not self.closed:
            if self.latest is not None and self.latest.seq > seq:
                return self.latest
            await self._event.wait()
        return None


def error(status: int, reason: str) -> web.Response:
    """A JSON error with a one-line reason."""
    return web.json_response({"error": " ".join(reason.split())}, status=status)


def _given_token(request: web.Request, cookie: str) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[7:].strip()
    return request.query.get("token") or request.cookies.get(cookie)


def _host_name(request: web.Request) -> str:
    host = request.host or ""
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def make_app(engine: ServeEngine, config: AppConfig) -> web.Application:
    """The aiohttp application over ``engine`` (its ``FrameHub`` is made when it starts on its event loop)."""
    assets = {path: (resources.files("imx500_sam.serve").joinpath("static").joinpath(name).read_bytes(), kind)
              for path, (name, kind) in ASSETS.items()}  # fmt: skip

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if config.token is not None:
            given = _given_token(request, config.cookie)
            if not given or not hmac.compare_digest(given.encode(), config.token.encode()):
                return error(401, "missing or wrong token: open the URL imx500-sam serve printed (with ?token=...).")
        elif _host_name(request) not in LOOPBACK_NAMES:
            return error(403, f"Host {request.host!r} refused: without --token only loopback names are served.")
        try:
            return await handler(request)
        except RequestError as exc:
            return error(exc.status, exc.reason)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            known = {404: "no such endpoint.", 405: f"{request.method} is not allowed here."}
            reason = known.get(exc.status, exc.reason)
            return error(exc.status, f"{request.path}: {reason}")

    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY)
    hub: dict[str, FrameHub] = {}

    async def on_startup(app: web.Application) -> None:
        hub["h"] = FrameHub(asyncio.get_running_loop())
        engine.listeners.append(hub["h"].offer)

    async def on_shutdown(app: web.Application) -> None:
        hub["h"].close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)

    def asset(path: str) -> Handler:
        body, kind = assets[path]

        async def handle(request: web.Request) -> web.Response:
            resp = web.Response(body=body, content_type=kind, headers={"Cache-Control": "no-cache"})
            if path == "/" and config.token is not None and request.query.get("token"):
                resp.set_cookie(config.cookie, config.token, httponly=True, samesite="Strict")
            return resp

        return handle

    async def command(kind: str, *args: Any) -> Any:
        future = engine.submit(kind, *args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), COMMAND_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise RequestError(503, "the camera loop did not answer in time; try again.") from None

    async def body_json(request: web.Request) -> dict[str, Any]:
        if request.content_type != "application/json":
            raise RequestError(415, "send the body as JSON (Content-Type: application/json).")
        try:
            data = json.loads(await request.read())
        except web.HTTPRequestEntityTooLarge:
            raise RequestError(413, f"body too large (at most {MAX_BODY} bytes).") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(400, f"body is not valid JSON ({exc}).") from None
        if not isinstance(data, dict):
            raise RequestError(400, "body must be a JSON object.")
        return data

    def prompt_id(request: web.Request) -> int:
        try:
            return int(request.match_info["id"])
        except ValueError:
            raise RequestError(404, f"no prompt {request.match_info['id']!r}.") from None

    def snapshot() -> Snapshot:
        snap = engine.snapshot
        if snap is None:
            raise RequestError(503, "no frame yet; try again in a moment.")
        return snap

    async def state(request: web.Request) -> web.Response:
        snap = engine.snapshot
        power = config.power()
        return web.json_response(
            {
                "network": engine.network_name,
                "source": config.source,
                "masks_only": config.masks_only,
                "stream_size": list(engine.output_size),
                "frame": None if snap is None else snap.frame,
                "frames_served": 0 if snap is None else snap.seq,
                "fps": None if snap is None or snap.fps is None else round(snap.fps, 2),
                "dnn_ms": _r(snap and snap.dnn_ms),
                "dsp_ms": _r(snap and snap.dsp_ms),
                "latency_ms": _r(snap and snap.latency_ms),
                "roi": list(snap.roi) if snap is not None and snap.roi else None,
                "power_w": power.watts,
                "power_note": power.note,
                "track": engine.session.track if snap is None else snap.track,
                "max_prompts": engine.max_prompts,
                "stream_clients": sum(engine.watchers.values()),
                "prompts": [] if snap is None else [p.to_json() for p in snap.prompts],
            },
            headers={"Cache-Control": "no-store"},
        )

    async def add_prompt(request: web.Request) -> web.Response:
        data = await body_json(request)
        box = parse_box(data.get("box"), engine.output_size)
        new_id = await command("add", box)
        return web.json_response({"id": new_id}, status=201)

    async def remove_prompt(request: web.Request) -> web.Response:
        removed = await command("remove", prompt_id(request))
        return web.json_response({"removed": removed})

    async def clear(request: web.Request) -> web.Response:
        removed = await command("clear")
        return web.json_response({"removed": removed})

    async def set_track(request: web.Request) -> web.Response:
        data = await body_json(request)
        if not isinstance(data.get("track"), bool):
            raise RequestError(400, 'give {"track": true} or {"track": false}.')
        return web.json_response({"track": await command("track", data["track"])})

    async def mask_png(request: web.Request) -> web.Response:
        pid = prompt_id(request)
        view = snapshot().prompt(pid)
        if view is None:
            raise RequestError(404, f"no prompt {pid}.")
        if view.mask is None:
            raise RequestError(404, f"prompt {pid} has no mask yet (prompts take turns: it comes within a few frames).")
        body = await asyncio.get_running_loop().run_in_executor(None, encode_mask_png, view.mask)
        return web.Response(body=body, content_type="image/png", headers=_download(f"mask_{pid}.png"))

    async def overlay_jpg(request: web.Request) -> web.Response:
        if config.masks_only:
            raise RequestError(403, "masks-only mode: no frame is encoded or served.")
        snap = snapshot()
        body = await asyncio.get_running_loop().run_in_executor(
            None, lambda: encode_jpeg(render(snap, "overlay", text=True))
        )
        return web.Response(body=body, content_type="image/jpeg", headers=_download(f"overlay_{snap.frame}.jpg"))

    def stream(view: str) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            if view == "overlay" and config.masks_only:
                raise RequestError(403, "masks-only mode: no frame is encoded or served; the masks are at /masks.mjpg.")
            h = hub["h"]
            if sum(engine.watchers.values()) >= MAX_STREAM_CLIENTS:
                raise RequestError(503, f"too many stream clients (at most {MAX_STREAM_CLIENTS}).")
            resp = web.StreamResponse(
                headers={
                    "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                    "Cache-Control": "no-store",
                }
            )
            engine.watchers[view] += 1
            try:
                await resp.prepare(request)
                seq = -1
                while True:
                    snap = await h.next_after(seq)
                    if snap is None:
                        break
                    seq = snap.seq
                    jpeg = snap.jpegs.get(view)
                    if jpeg is None:
                        continue  # published before this client was counted: the next one has it
                    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                    await resp.write(head.encode() + jpeg + b"\r\n")  # waits while the client is slow
            except (ConnectionResetError, ConnectionError):
                pass
            finally:
                engine.watchers[view] -= 1
            return resp

        return handle

    for path in ASSETS:
        app.router.add_get(path, asset(path))
    app.router.add_get("/api/state", state)
    app.router.add_post("/api/prompts", add_prompt)
    app.router.add_delete("/api/prompts", clear)
    app.router.add_delete("/api/prompts/{id}", remove_prompt)
    app.router.add_get("/api/prompts/{id}/mask.png", mask_png)
    app.router.add_put("/api/track", set_track)
    app.router.add_get("/api/overlay.jpg", overlay_jpg)
    app.router.add_get("/stream.mjpg", stream("overlay"))
    app.router.add_get("/masks.mjpg", stream("masks"))
    return app


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _download(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
