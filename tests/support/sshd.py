"""A real OpenSSH sshd on 127.0.0.1 with throwaway keys, for transport tests (copy, checksum, parallelism).

The far side's ``imx500-sam`` is a small shell stand-in (there is no camera here): it logs each call with
start/end times and the SHA-256 of the file it was given, waits at a barrier, and answers. Only the transport
is tested with it; the real flash path is tested against picamera2's interface in test_flash_local.py.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")


def find_or_install_sshd() -> str:
    """Path to sshd; installs openssh-server with apt-get when running as root, else fails with the command."""
    for cand in (shutil.which("sshd"), *SSHD_CANDIDATES):
        if cand and os.access(cand, os.X_OK):
            return cand
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "openssh-server", "openssh-client"], check=True, env=env)
        for cand in SSHD_CANDIDATES:
            if os.access(cand, os.X_OK):
                return cand
    pytest.fail("OpenSSH server not installed: run `make test-deps` or `sudo apt-get install -y openssh-server`")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "imx500-sam-test", "-f", str(path)], check=True
    )


STANDIN = """#!/bin/sh
# Stand-in for `imx500-sam flash FILE [--verify]` on a Pi (transport tests only; no camera here).
# Barrier: waits (up to 30 s) until as many calls as barrier_n says have started: concurrent calls all get
# through, serial ones time out, whatever the machine's load.
[ "$1" = flash ] || {{ echo "stand-in: only 'flash' is supported" >&2; exit 2; }}
start=$(date +%s.%N)
sum=$(sha256sum "$2" | cut -d' ' -f1) || exit 2
n=$(cat {root}/barrier_n 2>/dev/null || echo 1)
mkdir -p {root}/barrier && touch {root}/barrier/$$
i=0
while [ "$(ls {root}/barrier | wc -l)" -lt "$n" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
if [ "$(ls {root}/barrier | wc -l)" -ge "$n" ]; then met=met; else met=timeout; fi
echo "$start $(date +%s.%N) $sum $met $*" >> {log}
echo "stand-in flash ok $sum"
"""


@dataclass
class Sshd:
    """A running test sshd and everything a client needs to reach it."""

    port: int
    user: str
    root: Path
    client_key: Path
    other_key: Path
    known_hosts: Path
    ssh_config: Path
    far_command: Path
    far_log: Path
    proc: subprocess.Popen[bytes]

    def host(self, user: str | None = None, port: int | None = None, name: str = "127.0.0.1") -> str:
        return f"{user or self.user}@{name}:{port or self.port}"

    def calls(self) -> list[tuple[float, float, str, str, str]]:
        """(start, end, sha256, barrier 'met'/'timeout', args) for each stand-in flash call."""
        if not self.far_log.exists():
            return []
        out = []
        for line in self.far_log.read_text().splitlines():
            start, end, digest, barrier, args = line.split(" ", 4)
            out.append((float(start), float(end), digest, barrier, args))
        return out

    def expect_concurrent(self, n: int) -> None:
        """Make the next stand-in calls wait until ``n`` of them run at once (1: no waiting)."""
        barrier = self.far_command.parent.parent / "barrier"
        if barrier.exists():
            shutil.rmtree(barrier)
        (self.far_command.parent.parent / "barrier_n").write_text(f"{n}\n")


def start_sshd(root: Path) -> Sshd:
    """Start sshd on a free loopback port (keys, config and far-side stand-in under ``root``)."""
    sshd = find_or_install_sshd()
    root.mkdir(parents=True, exist_ok=True)
    host_key, client_key, other_key = root / "host_ed25519", root / "client_ed25519", root / "other_ed25519"
    for key in (host_key, client_key, other_key):
        _keygen(key)
    authorized = root / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    user = getpass.getuser()
    port = free_port()
    cfg = root / "sshd_config"
    cfg.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {root / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                f"AllowUsers {user}",
                "MaxStartups 64",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege-separation directory
    subprocess.run([sshd, "-t", "-f", str(cfg)], check=True)
    log = (root / "sshd.log").open("wb")
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"test sshd did not start: {(root / 'sshd.log').read_text()[-2000:]}")
            time.sleep(0.1)
    known_hosts = root / "known_hosts"
    key_type, key_b64 = host_key.with_suffix(".pub").read_text().split()[:2]
    known_hosts.write_text(f"[127.0.0.1]:{port} {key_type} {key_b64}\n")
    ssh_config = root / "ssh_config"
    ssh_config.write_text("# empty: keep the user's ~/.ssh/config out of the tests\n")
    far = root / "far" / "bin"
    far.mkdir(parents=True)
    far_log = root / "far" / "calls.log"
    far_command = far / "imx500-sam"
    far_command.write_text(STANDIN.format(root=far.parent, log=far_log))
    far_command.chmod(0o755)
    return Sshd(port, user, root, client_key, other_key, known_hosts, ssh_config, far_command, far_log, proc)


def stop_sshd(server: Sshd) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
