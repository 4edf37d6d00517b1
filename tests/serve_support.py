"""Helpers for the ``imx500-sam serve`` tests: the server as a real process, plain HTTP, MJPEG parts, the browser."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"  # Debian's chromium and chromium-driver (make test-deps)
CHROMEDRIVER = "/usr/bin/chromedriver"


class ServeProcess:
    """``python -m imx500_sam serve ...`` in its own process; ``url`` is what it printed (token included)."""

    def __init__(self, *args: str, startup_s: float = 120.0) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        cmd = [sys.executable, "-m", "imx500_sam", "serve", "--port", "0", *args]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + startup_s
        line = ""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                line = self.proc.stdout.readline()  # type: ignore[union-attr]
                break
            if self.proc.poll() is not None:
                break
        match = re.search(r"http://\S+", line)
        if not match:
            err = self.stop()[1]
            raise AssertionError(f"serve did not start: {line!r} {err}")
        self.url = match.group(0)
        self.base = self.url.split("?")[0]
        self.token = re.search(r"token=([^&\s]+)", self.url).group(1) if "token=" in self.url else None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> tuple[int, str]:
        """Send ``sig`` and wait: (exit code, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request: (status, headers, body); a JSON ``body`` is sent as application/json."""
    data, hdrs = raw, dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def jget(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    status, _, body = http("GET", url, headers=headers)
    assert status == 200, (status, body)
    return json.loads(body)


def iter_mjpeg(resp: Any, chunk: int = 65536) -> Iterator[bytes]:
    """The JPEG parts of an open multipart/x-mixed-replace response as they arrive (``chunk``: bytes per read; a
    small one reads like a slow client); ends with the stream."""
    buf = b""
    while True:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            length = int(re.search(rb"Content-Length: (\d+)", buf[:head_end]).group(1))  # type: ignore[union-attr]
            if len(buf) >= head_end + 4 + length:
                yield buf[head_end + 4 : head_end + 4 + length]
                buf = buf[head_end + 4 + length :].lstrip(b"\r\n")
                continue
        data = resp.read1(chunk)
        if not data:
            return
        buf += data


def mjpeg_parts(url: str, count: int, timeout: float = 60.0) -> list[bytes]:
    """The first ``count`` JPEG parts of a multipart/x-mixed-replace stream."""
    parts: list[bytes] = []
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        assert resp.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        for part in iter_mjpeg(resp):
            parts.append(part)
            if len(parts) == count:
                break
    assert len(parts) == count, "stream ended"
    return parts


def wait_for(predicate, timeout: float = 60.0, every: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns something truthy (returned) or time runs out (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s")
        time.sleep(every)


def chromium(width: int = 1280, height: int = 860):  # type: ignore[no-untyped-def]
    """Headless Debian chromium through chromedriver (selenium); fails with the fix when they are missing."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            raise AssertionError(f"{path} missing: run `make test-deps` (apt: chromium chromium-driver).")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
