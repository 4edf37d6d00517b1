"""Remote flash over a real OpenSSH sshd on 127.0.0.1: copy, far-side checksum, parallel hosts, failures."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_packaging import flash as fl
from imx500_sam.cli import main
from imx500_sam.errors import BadInputError
from tests.rpk_fixtures import DEEPLAB, rpk_path
from tests.support.sshd import Sshd, free_port, start_sshd, stop_sshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    stop_sshd(server)


def _opts(server: Sshd, remote_dir: Path, **kw: object) -> fl.SshOptions:
    base = {
        "identity": server.client_key,
        "known_hosts": server.known_hosts,
        "config": server.ssh_config,
        "connect_timeout_s": 5,
        "command_timeout_s": 60,
        "remote_dir": str(remote_dir),
        "remote_command": str(server.far_command),
    }
    base.update(kw)
    return fl.SshOptions(**base)  # type: ignore[arg-type]


def test_fleet_copy_checksum_and_parallel(sshd: Sshd, tmp_path: Path) -> None:
    src = rpk_path(DEEPLAB)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    hosts = [sshd.host()] * 4
    before = len(sshd.calls())
    sshd.expect_concurrent(4)
    try:
        results = fl.flash_remote(src, hosts, _opts(sshd, tmp_path / "far"), jobs=4)
    finally:
        sshd.expect_concurrent(1)
    assert [r.status for r in results] == ["ok"] * 4, [r.detail for r in results]
    remote = tmp_path / "far" / src.name
    assert remote.read_bytes() == src.read_bytes()  # copied byte for byte
    assert list((tmp_path / "far").iterdir()) == [remote]  # no temporary .part files left
    calls = sshd.calls()[before:]
    assert len(calls) == 4 and {c[2] for c in calls} == {digest}  # the far side flashed the same bytes
    assert all(f"flash {remote}" in c[4] for c in calls)
    # parallel: each far-side flash waited until all 4 were running at once (serial calls would time out)
    assert [c[3] for c in calls] == ["met"] * 4
    assert max(c[0] for c in calls) < min(c[1] for c in calls)


def test_failures_are_reported_per_host_and_others_go_on(sshd: Sshd, tmp_path: Path) -> None:
    hosts = [
        sshd.host(port=free_port()),  # nothing listens there
        sshd.host(user="nobody"),  # sshd refuses this user's login
        sshd.host(name="localhost"),  # host key not in known_hosts under this name: refused, never trusted
        sshd.host(),
    ]
    results = fl.flash_remote(rpk_path(DEEPLAB), hosts, _opts(sshd, tmp_path / "far"))
    assert [r.status for r in results] == ["unreachable", "auth-refused", "host-key", "ok"], [r.detail for r in results]
    assert "Connection refused" in results[0].detail
    assert "Host key verification failed" in results[2].detail
    table = fl.results_table(results)
    assert all(h in table for h in hosts)


def test_refused_key(sshd: Sshd, tmp_path: Path) -> None:
    res = fl.flash_remote(rpk_path(DEEPLAB), [sshd.host()], _opts(sshd, tmp_path / "far", identity=sshd.other_key))
    assert res[0].status == "auth-refused" and "Permission denied" in res[0].detail
    assert not (tmp_path / "far").exists()


def test_changed_host_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    wrong = tmp_path / "known_hosts"
    other_pub = sshd.other_key.with_suffix(".pub").read_text().split()
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {other_pub[0]} {other_pub[1]}\n")
    res = fl.flash_remote(rpk_path(DEEPLAB), [sshd.host()], _opts(sshd, tmp_path / "far", known_hosts=wrong))
    assert res[0].status == "host-key"
    assert not (tmp_path / "far").exists()


def test_checksum_mismatch_on_far_side(sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fl, "sha256_file", lambda path: "0" * 64)
    before = len(sshd.calls())
    res = fl.flash_remote(rpk_path(DEEPLAB), [sshd.host()], _opts(sshd, tmp_path / "far"))
    assert res[0].status == "checksum"
    assert list((tmp_path / "far").iterdir()) == []  # the bad copy is removed, nothing renamed into place
    assert len(sshd.calls()) == before  # and nothing was flashed


def test_missing_remote_imx500_sam(sshd: Sshd, tmp_path: Path) -> None:
    opts = _opts(sshd, tmp_path / "far", remote_command=str(tmp_path / "nope" / "imx500-sam"))
    res = fl.flash_remote(rpk_path(DEEPLAB), [sshd.host()], opts)
    assert res[0].status == "flash-failed" and "not found" in res[0].detail


def test_a_host_that_stops_answering_is_unreachable(sshd: Sshd, tmp_path: Path) -> None:
    """The flash step hangs on the far side: ssh is ended after command_timeout_s, the host is 'unreachable'."""
    hang = tmp_path / "hang.sh"
    hang.write_text("#!/bin/sh\nsleep 60\n")
    hang.chmod(0o755)
    opts = _opts(sshd, tmp_path / "far", remote_command=str(hang), command_timeout_s=3)
    (res,) = fl.flash_remote(rpk_path(DEEPLAB), [sshd.host()], opts)
    assert (res.status, res.detail) == ("unreachable", "no answer within 3 s"), res
    assert res.seconds < 3 + 10, res


def test_cli_flash_hosts_exit_codes(sshd: Sshd, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = [
        "--identity", str(sshd.client_key),
        "--known-hosts", str(sshd.known_hosts),
        "--ssh-config", str(sshd.ssh_config),
        "--remote-dir", str(tmp_path / "far"),
        "--remote-command", str(sshd.far_command),
    ]  # fmt: skip
    src = str(rpk_path(DEEPLAB))
    assert main(["flash", src, "--host", sshd.host(), *common]) == 0
    assert "ok" in capsys.readouterr().out
    bad = sshd.host(port=free_port())
    assert main(["flash", src, "--host", sshd.host(), "--host", bad, *common]) == 6
    captured = capsys.readouterr()
    assert "unreachable" in captured.out and sshd.host() in captured.out
    assert "1 of 2 host(s) failed" in captured.err
    # the file is validated before anything is sent
    broken = tmp_path / "broken.rpk"
    broken.write_bytes(rpk_path(DEEPLAB).read_bytes()[:100000])
    common[common.index("--remote-dir") + 1] = str(tmp_path / "far2")
    assert main(["flash", str(broken), "--host", sshd.host(), *common]) == 2
    assert not (tmp_path / "far2").exists()


@pytest.mark.parametrize("bad", ["-oProxyCommand=touch /tmp/x", "pi@host;rm -rf /", "a b", "pi@", "pi@host:99999", ""])
def test_host_spec_rejects_injection(bad: str) -> None:
    with pytest.raises(BadInputError):
        fl.parse_host(bad)


def test_host_spec_and_ssh_command() -> None:
    assert fl.parse_host("pi@raspberrypi") == fl.HostSpec("pi", "raspberrypi", None)
    assert fl.parse_host("pi@10.0.0.2:2222") == fl.HostSpec("pi", "10.0.0.2", 2222)
    assert fl.parse_host("pi@[fe80::1]:22") == fl.HostSpec("pi", "fe80::1", 22)
    cmd = fl.ssh_command(fl.parse_host("pi@cam1:2222"), fl.SshOptions(), "true")
    assert "StrictHostKeyChecking=yes" in cmd and "BatchMode=yes" in cmd
    assert not any("StrictHostKeyChecking=no" in c or "accept-new" in c for c in cmd)
    assert cmd[-3:] == ["--", "pi@cam1", "true"] and cmd[cmd.index("-p") + 1] == "2222"
