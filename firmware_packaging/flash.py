"""Load a network .rpk onto the IMX500: on this Pi (picamera2) or on many Pis over SSH in parallel.

Local (on a Pi): the file is validated and handed to picamera2's ``IMX500``; the camera is started (the
driver uploads the network then, with picamera2's progress bar; the camera's RP2040 caches the last network)
and frames are read until one carries an output tensor. ``verify`` checks that frame against the rpk's
network_info and that KPI timing is present.

Remote: for each host, one OpenSSH connection (``ssh`` with host-key checking on: ``BatchMode=yes``,
``StrictHostKeyChecking=yes``; an unknown or changed host key is refused, never accepted blindly) that
1. uploads to a temporary name in the remote directory (``cat >`` over the SSH channel);
2. compares the SHA-256 on the far side (``sha256sum -c``), then renames into place;
3. runs ``imx500-sam flash FILE [--verify]`` there.
Hosts run in parallel; one host's failure (down, refusing, bad checksum, flash error) never stops the others.
All processes are started with argument lists; remote commands are built with ``shlex.quote``.
"""

from __future__ import annotations

import math
import re
import secrets
import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from firmware_packaging.rpk import Rpk, read_rpk
from imx500_sam.data.fetch import sha256_file
from imx500_sam.errors import BadInputError, ToolchainMissingError, ToolFailedError, last_line
from imx500_sam.pi import require_pi
from imx500_sam.procs import map_in_threads, run_captured

# ---------------------------------------------------------------------------------------------- local (Pi)


_FLASH_REMOTE_HINT = "From here, flash Pis over SSH: imx500-sam flash FILE.rpk --host user@pi."


def _import_picamera2() -> tuple[Any, Any]:
    try:
        from picamera2 import Picamera2
        from picamera2.devices import IMX500
    except ImportError as exc:
        require_pi("`imx500-sam flash FILE.rpk` (loading onto this machine's camera)", _FLASH_REMOTE_HINT)
        raise ToolchainMissingError(
            f"picamera2 is not available here ({exc}); flashing needs a Raspberry Pi with the AI Camera.",
            hint="On Raspberry Pi OS: sudo apt install python3-picamera2 imx500-all (venv: --system-site-packages),"
            " or flash from this machine with --host user@pi.",
        ) from None
    return Picamera2, IMX500


def check_outputs(rpk: Rpk, shapes: list[tuple[int, ...]], kpi: Any) -> list[str]:
    """Problems with one frame's output tensors versus the rpk's network (empty list when all is well).

    The number of output tensors must equal ``outputTensorNum``; for a single-output network the element
    count must equal ``outputTensorDimSize1`` (as in Raspberry Pi's DeepLabV3+ file: 320x320 -> 102400).
    KPI timing (DNN and DSP milliseconds) must be present.
    """
    problems = []
    expected = rpk.output_tensor_sizes
    if expected and len(shapes) != len(expected):
        problems.append(f"{len(shapes)} output tensors, the rpk's network has {len(expected)}")
    elif len(expected) == 1 and shapes and math.prod(shapes[0]) != expected[0]:
        problems.append(f"output tensor {shapes[0]} has {math.prod(shapes[0])} elements, the rpk says {expected[0]}")
    if any(math.prod(s) == 0 for s in shapes):
        problems.append("an output tensor is empty")
    if kpi is None:
        problems.append("no KPI timing (CnnKpiInfo) in the frame metadata")
    return problems


def flash_local(
    rpk_path: str | Path,
    *,
    verify: bool = False,
    expect_sha256: str | None = None,
    progress: bool = True,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Validate ``rpk_path`` and load it onto this Pi's IMX500.

    The IMX500 driver uploads the network when the camera starts streaming, so this follows picamera2's own
    examples: ``IMX500(file)``, ``Picamera2(imx500.camera_num)``, the progress bar, ``start()``, then frames
    are read until one carries an output tensor (the network is on the sensor and running). With ``verify``
    that frame is checked against the rpk's network_info and must carry KPI timing.
    """
    rpk = read_rpk(rpk_path)
    digest = rpk.sha256()
    if expect_sha256 and digest != expect_sha256.lower():
        raise BadInputError(f"{rpk_path}: SHA-256 {digest} differs from the expected {expect_sha256}.")
    picamera2_cls, imx500_cls = _import_picamera2()
    start = time.perf_counter()
    try:
        imx = imx500_cls(str(Path(rpk_path).resolve()))
    except (RuntimeError, OSError) as exc:
        raise ToolFailedError(
            f"picamera2 could not load {rpk_path} onto the IMX500: {exc}.",
            hint="Check the AI Camera is connected and `sudo apt install imx500-all` is done (then reboot).",
        ) from None
    frame = _first_inference(imx, picamera2_cls, rpk, timeout_s, progress)
    result: dict[str, Any] = {
        "file": str(rpk_path),
        "sha256": digest,
        "input_tensor": rpk.input_tensor,
        "loaded": "output_shapes" in frame,
        "load_s": round(time.perf_counter() - start, 3),
        "frame": frame,
    }
    if not result["loaded"]:
        raise ToolFailedError(f"{rpk_path}: {frame['problems'][0]}.", hint="Check the camera with rpicam-hello.")
    if verify:
        result["verify"] = frame
        if frame["problems"]:
            raise ToolFailedError(f"{rpk_path} loaded but verification failed: {'; '.join(frame['problems'])}.")
    return result


def _first_inference(imx: Any, picamera2_cls: Any, rpk: Rpk, timeout_s: float, progress: bool) -> dict[str, Any]:
    """Start the camera, wait for a frame with an output tensor (the upload runs meanwhile), describe it."""
    picam2 = picamera2_cls(imx.camera_num)
    try:
        config = picam2.create_preview_configuration(buffer_count=12)
        if progress:
            imx.show_network_fw_progress_bar()
        picam2.start(config, show_preview=False)
        deadline = time.monotonic() + timeout_s
        frames = 0
        while time.monotonic() < deadline:
            metadata = picam2.capture_metadata()
            frames += 1
            outputs = imx.get_outputs(metadata)
            if outputs is None:
                continue
            shapes = [tuple(int(d) for d in o.shape) for o in outputs]
            kpi = imx.get_kpi_info(metadata)
            return {
                "frames_read": frames,
                "output_shapes": [list(s) for s in shapes],
                "kpi_ms": None if kpi is None else {"dnn": kpi[0], "dsp": kpi[1]},
                "problems": check_outputs(rpk, shapes, kpi),
            }
        return {"frames_read": frames, "problems": [f"no output tensor within {timeout_s:.0f} s ({frames} frames)"]}
    finally:
        picam2.stop()
        picam2.close()


# ---------------------------------------------------------------------------------------------- remote (SSH)

_HOST_RE = re.compile(
    r"^(?:(?P<user>[A-Za-z0-9._][A-Za-z0-9._-]*)@)?"
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9][A-Za-z0-9._-]*))"
    r"(?::(?P<port>[0-9]{1,5}))?$"
)


@dataclass(frozen=True)
class HostSpec:
    """``user@host[:port]`` (IPv6 as ``user@[addr]:port``)."""

    user: str | None
    host: str
    port: int | None = None

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        return (f"{self.user}@" if self.user else "") + h + (f":{self.port}" if self.port else "")


def parse_host(text: str) -> HostSpec:
    """Parse ``user@host[:port]``; refuses anything else (no options, no shell characters)."""
    m = _HOST_RE.match(text.strip())
    port = int(m.group("port")) if m and m.group("port") else None
    if not m or (port is not None and not 0 < port < 65536):
        raise BadInputError(f"bad --host {text!r}.", hint="Use user@host or user@host:port (e.g. pi@raspberrypi).")
    return HostSpec(user=m.group("user"), host=m.group("v6") or m.group("host"), port=port)


@dataclass(frozen=True)
class SshOptions:
    """How to reach the Pis. Host keys are always checked against known_hosts."""

    identity: Path | None = None
    known_hosts: Path | None = None
    config: Path | None = None
    connect_timeout_s: int = 10
    command_timeout_s: float = 900.0
    remote_dir: str = "imx500-sam/networks"  # relative to the remote home, or absolute
    remote_command: str = "imx500-sam"
    ssh: str = "ssh"


@dataclass
class HostResult:
    """The outcome for one host: ``status`` is ok, unreachable, auth-refused, host-key, checksum, flash-failed."""

    host: str
    status: str
    detail: str = ""
    seconds: float = 0.0
    remote_path: str | None = None
    output: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _remote_word(text: str) -> str:
    """Quote for the remote shell, keeping a leading ``~/`` meaning the remote home."""
    if text.startswith("~/"):
        return '"$HOME"/' + shlex.quote(text[2:])
    return shlex.quote(text)


def ssh_command(host: HostSpec, opts: SshOptions, remote: str) -> list[str]:
    """The argument list that runs ``remote`` (a remote shell command line) on ``host``."""
    cmd = [opts.ssh]
    if opts.config:
        cmd += ["-F", str(opts.config)]
    cmd += [
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"ConnectTimeout={int(opts.connect_timeout_s)}",
        "-o", "ServerAliveInterval=15",
    ]  # fmt: skip
    if opts.known_hosts:
        cmd += ["-o", f"UserKnownHostsFile={opts.known_hosts}"]
    if opts.identity:
        cmd += ["-i", str(opts.identity), "-o", "IdentitiesOnly=yes"]
    if host.port:
        cmd += ["-p", str(host.port)]
    return [*cmd, "--", host.destination, remote]


_SSH_FAILURES = (
    ("host-key", ("Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED", "No ED25519 host key")),
    ("auth-refused", ("Permission denied", "Too many authentication failures")),
    (
        "unreachable",
        (
            "Connection refused",
            "timed out",
            "No route to host",
            "Could not resolve hostname",
            "Network is unreachable",
            "Connection closed",
            "Connection reset",
        ),
    ),
)
_HINTS = {
    "host-key": "host key unknown or changed: connect once with plain `ssh` and check the fingerprint",
    "auth-refused": "the Pi refused the key: add yours with ssh-copy-id, or pass --identity",
    "unreachable": "host down or unreachable",
}


def classify_ssh_failure(stderr: str) -> str:
    """Map ssh's stderr (exit 255) to a status."""
    for status, needles in _SSH_FAILURES:
        if any(n in stderr for n in needles):
            return status
    return "ssh-error"


_EXIT_COPY = 96
_EXIT_CHECKSUM = 97


def flash_remote_one(rpk_path: Path, sha256: str, host: HostSpec, opts: SshOptions, verify: bool = False) -> HostResult:
    """Copy, checksum on the far side, flash there; every failure becomes a HostResult, never an exception."""
    start = time.perf_counter()
    name = rpk_path.name
    rdir = _remote_word(opts.remote_dir.rstrip("/") or "/")
    tmp_name = f".{name}.{secrets.token_hex(4)}.part"
    remote_path = f"{opts.remote_dir.rstrip('/')}/{name}"

    def result(status: str, detail: str, output: str = "") -> HostResult:
        return HostResult(str(host), status, detail, round(time.perf_counter() - start, 3), remote_path, output)

    def run(remote: str, stdin: Any = subprocess.DEVNULL) -> subprocess.CompletedProcess[str] | HostResult:
        # ssh in a process group of its own (imx500_sam.procs): a timeout, a stop or our death ends it
        try:
            cmd = ssh_command(host, opts, remote)
            proc = run_captured(cmd, name="ssh", timeout_s=opts.command_timeout_s, stdin=stdin)
        except FileNotFoundError:
            return result("ssh-error", f"{opts.ssh} not found: install openssh-client")
        if proc.timed_out:
            return result("unreachable", f"no answer within {opts.command_timeout_s:.0f} s")
        if proc.returncode == 255:
            status = classify_ssh_failure(proc.stderr)
            hint = _HINTS.get(status, "ssh failed")
            return result(status, f"{hint} ({last_line(proc.stderr, 300)})", proc.stderr)
        return proc

    # One connection per host: upload, compare the SHA-256 on the far side, rename into place, flash.
    # Exit codes 96/97 mark the copy and checksum stages; the flash's own exit code passes through.
    tmp_q, name_q = shlex.quote(tmp_name), shlex.quote(name)
    words = [_remote_word(w) for w in shlex.split(opts.remote_command)]
    flash_cmd = " ".join([*words, "flash", f"{rdir}/{name_q}", *(["--verify"] if verify else [])])
    script = (
        f"umask 022; mkdir -p {rdir} && cat > {rdir}/{tmp_q} || exit {_EXIT_COPY}; "
        f"cd {rdir} || exit {_EXIT_COPY}; "
        f"printf '%s  %s\\n' {sha256} {tmp_q} | sha256sum -c --status"
        f" || {{ rm -f {tmp_q}; exit {_EXIT_CHECKSUM}; }}; "
        f"mv -f {tmp_q} {name_q} || exit {_EXIT_COPY}; "
        f"cd; {flash_cmd}"
    )
    with open(rpk_path, "rb") as fh:
        proc = run(script, stdin=fh)
    if isinstance(proc, HostResult):
        return proc
    output = proc.stdout + proc.stderr
    if proc.returncode == _EXIT_COPY:
        return result("copy-failed", f"could not write {remote_path}: {last_line(proc.stderr, 300)}", output)
    if proc.returncode == _EXIT_CHECKSUM:
        return result("checksum", f"SHA-256 differs on the far side (expected {sha256[:12]}...)", output)
    if proc.returncode == 127:
        return result("flash-failed", f"{opts.remote_command} not found on the Pi (install imx500-sam there)", output)
    if proc.returncode != 0:
        return result("flash-failed", f"exit {proc.returncode}: {last_line(proc.stderr or proc.stdout, 300)}", output)
    return result("ok", last_line(proc.stdout, 300) or "flashed", output)


def flash_remote(
    rpk_path: str | Path,
    hosts: Sequence[str | HostSpec],
    opts: SshOptions | None = None,
    *,
    verify: bool = False,
    jobs: int = 8,
    on_result: Callable[[HostResult], None] | None = None,
) -> list[HostResult]:
    """Validate ``rpk_path``, then copy and flash it on every host in parallel; results in host order."""
    opts = opts or SshOptions()
    path = Path(rpk_path)
    read_rpk(path)  # never ship a broken file
    specs = [h if isinstance(h, HostSpec) else parse_host(h) for h in hosts]
    if not specs:
        raise BadInputError("no --host given.", hint="Pass --host user@pi (repeat for several Pis).")
    digest = sha256_file(Path(path))

    def one(spec: HostSpec) -> HostResult:
        try:
            res = flash_remote_one(path, digest, spec, opts, verify)
        except OSError as exc:  # e.g. the local file vanished mid-run
            res = HostResult(str(spec), "copy-failed", str(exc))
        if on_result:
            on_result(res)
        return res

    return map_in_threads(one, specs, min(jobs, len(specs)))  # a stop ends every host's ssh first


def results_table(results: Sequence[HostResult]) -> str:
    """A plain-text per-host table."""
    rows = [("host", "status", "time", "detail")] + [
        (r.host, r.status, f"{r.seconds:.1f} s", r.detail) for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(row[i].ljust(widths[i]) for i in range(3)) + "  " + row[3] for row in rows]
    return "\n".join(lines)


def main_remote_summary(results: Sequence[HostResult]) -> None:
    """Raise ToolFailedError (exit 6) when any host failed."""
    failed = [r for r in results if not r.ok]
    if failed:
        raise ToolFailedError(
            f"{len(failed)} of {len(results)} host(s) failed: " + ", ".join(f"{r.host} ({r.status})" for r in failed)
        )
