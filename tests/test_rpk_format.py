"""The .rpk reader/writer on Raspberry Pi's real network files, cross-checked with picamera2's own parser."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from firmware_packaging import rpk as R
from imx500_sam.cli import main
from imx500_sam.errors import BadInputError
from tests.rpk_fixtures import DEEPLAB, HIGHERHRNET, rpk_path
from tests.support.picamera2_host import picamera2_intrinsics_schema, picamera2_read_rpk

# picamera2's NetworkIntrinsics lets jsonschema guess the draft from its $schema URL and warns; not ours.
pytestmark = pytest.mark.filterwarnings("ignore:The metaschema specified:DeprecationWarning")


@pytest.fixture(scope="module")
def deeplab() -> R.Rpk:
    return R.read_rpk(rpk_path(DEEPLAB))


@pytest.fixture(scope="module")
def hrnet() -> R.Rpk:
    return R.read_rpk(rpk_path(HIGHERHRNET))


def test_deeplab_input_tensor_and_intrinsics(deeplab: R.Rpk) -> None:
    assert deeplab.input_tensor == {"width": 320, "height": 320, "format": "RGB"}
    assert deeplab.intrinsics == {"inference_rate": 19, "task": "segmentation"}
    assert [e.name for e in deeplab.entries] == ["imx500_regs", "network_info.txt", "network_intrinsics"]
    # blocks chain exactly up to the CPIO archive, none device-locked in these files
    assert deeplab.blocks[0].offset == 0
    for a, b in zip(deeplab.blocks, deeplab.blocks[1:], strict=False):
        assert b.offset == a.offset + a.length
    assert deeplab.cpio_offset == deeplab.blocks[-1].offset + deeplab.blocks[-1].length
    assert deeplab.data[deeplab.cpio_offset : deeplab.cpio_offset + 6] == b"070701"
    assert not any(b.locked for b in deeplab.blocks)


def test_matches_picamera2_parser_on_both_files(deeplab: R.Rpk, hrnet: R.Rpk) -> None:
    for name, ours in ((DEEPLAB, deeplab), (HIGHERHRNET, hrnet)):
        cfg = picamera2_read_rpk(rpk_path(name))
        assert (cfg["input_tensor"]["width"], cfg["input_tensor"]["height"]) == (
            ours.input_tensor["width"],
            ours.input_tensor["height"],
        )
        assert cfg["input_tensor"]["input_format"] == ours.input_tensor["format"]
        assert cfg["intrinsics"].intrinsics == ours.intrinsics
        assert cfg["network_info"]["network"][0] == ours.network_info["networks"][0]
    assert hrnet.input_tensor == {"width": 384, "height": 288, "format": "RGB"}
    assert hrnet.intrinsics["task"] == "pose estimation" and len(hrnet.intrinsics["classes"]["labels"]) > 10


def test_schema_is_picamera2s() -> None:
    assert picamera2_intrinsics_schema() == R.INTRINSICS_SCHEMA


def test_rewriting_same_intrinsics_is_byte_identical(deeplab: R.Rpk, hrnet: R.Rpk) -> None:
    for rpk in (deeplab, hrnet):
        assert R.with_intrinsics(rpk, rpk.intrinsics) == rpk.data


def test_intrinsics_rewrite_read_back_by_picamera2(tmp_path: Path, deeplab: R.Rpk) -> None:
    new = {
        "task": "segmentation",
        "inference_rate": 7.5,
        "input_aspect_ratio": {"width": 1, "height": 1},
        "cpu": {"post_processing": "picosam3"},
        "classes": {"labels": ["object"]},
    }
    out = tmp_path / "new.rpk"
    R.set_intrinsics_file(rpk_path(DEEPLAB), new, out)
    data = out.read_bytes()
    assert data[: deeplab.cpio_offset] == deeplab.firmware  # firmware blocks byte-identical
    back = R.parse_rpk(data)
    assert [e.raw for e in back.entries if e.name != "network_intrinsics"] == [
        e.raw for e in deeplab.entries if e.name != "network_intrinsics"
    ]
    cfg = picamera2_read_rpk(out)
    ni = cfg["intrinsics"]
    assert ni.intrinsics == new
    assert (ni.task, ni.inference_rate, ni.preserve_aspect_ratio, ni.postprocess, ni.labels) == (
        "segmentation",
        7.5,
        True,
        "picosam3",
        ["object"],
    )
    assert cfg["input_tensor"]["width"] == 320
    assert len(data) % 512 == 0 or (len(data) - deeplab.cpio_offset) % 512 == 0


def _without_intrinsics(rpk: R.Rpk) -> bytes:
    parts = [rpk.firmware] + [e.raw for e in rpk.entries if e.name != "network_intrinsics"] + [rpk.trailer.raw]
    body = b"".join(parts)
    return body + b"\0" * (-(len(body) - rpk.cpio_offset) % 512)


def test_adds_intrinsics_when_absent(tmp_path: Path, deeplab: R.Rpk) -> None:
    bare = R.parse_rpk(_without_intrinsics(deeplab))
    assert bare.intrinsics is None
    src = tmp_path / "bare.rpk"
    src.write_bytes(bare.data)
    assert "intrinsics" not in picamera2_read_rpk(src)
    R.set_intrinsics_file(src, {"task": "segmentation"}, None)  # in place
    cfg = picamera2_read_rpk(src)
    assert cfg["intrinsics"].intrinsics == {"task": "segmentation"}
    assert src.read_bytes()[: deeplab.cpio_offset] == deeplab.firmware


def test_device_locked_block_is_skipped_like_picamera2(tmp_path: Path, deeplab: R.Rpk) -> None:
    """Set the lock bit on block 0 and insert its 32 extra bytes: both parsers must still find the CPIO."""
    data = bytearray(deeplab.data)
    b0 = deeplab.blocks[0]
    data[b0.offset + 8 + R.DEVICE_LOCK_FLAG_INDEX] |= 0x01
    data[b0.offset + b0.length : b0.offset + b0.length] = b"\xa5" * 32
    locked = R.parse_rpk(bytes(data))
    assert locked.blocks[0].locked and locked.blocks[1].offset == b0.length + 32
    assert locked.input_tensor == deeplab.input_tensor
    path = tmp_path / "locked.rpk"
    path.write_bytes(bytes(data))
    assert picamera2_read_rpk(path)["intrinsics"].intrinsics == deeplab.intrinsics
    rewritten = R.with_intrinsics(locked, {"task": "classification"})
    assert rewritten[: locked.cpio_offset] == bytes(data[: locked.cpio_offset])


def _cpio_entry(name: str, payload: bytes, mode: int = 0o100644) -> bytes:
    return R._newc_entry(name, (9, mode, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0), payload)


def _with_extra_entry(rpk: R.Rpk, raw_entry: bytes) -> bytes:
    body = rpk.firmware + b"".join(e.raw for e in rpk.entries) + raw_entry + rpk.trailer.raw
    return body + b"\0" * (-(len(body) - rpk.cpio_offset) % 512)


def _malformed(deeplab: R.Rpk) -> dict[str, tuple[bytes, int]]:
    """name -> (bytes, expected error offset)."""
    d = deeplab.data
    b1 = deeplab.blocks[1]
    ni = deeplab.entry("network_info.txt")
    cases: dict[str, tuple[bytes, int]] = {
        "empty": (b"", 0),
        "not an rpk": (b"PK\x03\x04" + d[4:], 0),
        "truncated block": (d[: b1.offset + 1000], b1.offset + 4),
        "bad footer": (
            d[: b1.offset + b1.size + 60] + b"XXXX" + d[b1.offset + b1.size + 64 :],
            b1.offset + b1.size + 60,
        ),
        "oversized block size": (
            d[: b1.offset + 4] + struct.pack(">I", 0xFFFFFFF0) + d[b1.offset + 8 :],
            b1.offset + 4,
        ),
        "bad cpio magic": (d[: deeplab.cpio_offset] + b"070707" + d[deeplab.cpio_offset + 6 :], deeplab.cpio_offset),
        "truncated cpio": (d[: deeplab.cpio_offset + 300], deeplab.cpio_offset + 54),
        "no trailer": (d[: deeplab.trailer.offset], deeplab.trailer.offset),
        "bad hex in header": (d[: ni.offset + 54] + b"zzzzzzzz" + d[ni.offset + 62 :], ni.offset + 54),
        "oversized cpio file size": (d[: ni.offset + 54] + b"7FFFFFFF" + d[ni.offset + 62 :], ni.offset + 54),
        "garbage after trailer": (d[:-10] + b"junk" + d[-6:], len(d) - 10),
        "path traversal": (_with_extra_entry(deeplab, _cpio_entry("../../etc/cron.d/x", b"x")), deeplab.trailer.offset),
        "absolute path": (_with_extra_entry(deeplab, _cpio_entry("/etc/passwd", b"x")), deeplab.trailer.offset),
        "subdirectory": (_with_extra_entry(deeplab, _cpio_entry("a/network_info.txt", b"x")), deeplab.trailer.offset),
        "duplicate entry": (_with_extra_entry(deeplab, _cpio_entry("imx500_regs", b"x")), deeplab.trailer.offset),
        "symlink entry": (
            _with_extra_entry(deeplab, _cpio_entry("link", b"/etc", 0o120777)),
            deeplab.trailer.offset + 14,
        ),
    }
    intr = deeplab.entry("network_intrinsics")
    bad_json = R._newc_entry("network_intrinsics", intr.fields, b"{not json")
    bad_schema = R._newc_entry("network_intrinsics", intr.fields, b'{"task": "juggling"}')
    for label, raw in (("intrinsics not JSON", bad_json), ("intrinsics off schema", bad_schema)):
        body = deeplab.firmware + b"".join(e.raw if e is not intr else raw for e in deeplab.entries)
        body += deeplab.trailer.raw
        cases[label] = (body + b"\0" * (-(len(body) - deeplab.cpio_offset) % 512), intr.offset)
    bad_info = ni.data.replace(b"networkNum=1", b"networkNum=2")
    body = deeplab.firmware + b"".join(
        e.raw if e is not ni else R._newc_entry(ni.name, ni.fields, bad_info) for e in deeplab.entries
    )
    cases["network_info count"] = (body + deeplab.trailer.raw, ni.offset)
    # picamera2 splits lines at "\n" only and needs key=value on every line (found by the picamera2 differential)
    for label, info in (
        ("form feed is no line break", ni.data.replace(b"networkType=0\r\n", b"networkType=0\x0cfoo=1\r\n")),
        ("blank line", ni.data.replace(b"networkType=0\r\n", b"networkType=0\r\n\r\n")),
    ):
        assert info != ni.data
        body = deeplab.firmware + b"".join(
            e.raw if e is not ni else R._newc_entry(ni.name, ni.fields, info) for e in deeplab.entries
        )
        cases[label] = (body + deeplab.trailer.raw, ni.offset)
    return cases


def test_every_malformed_input_raises_the_format_error_with_offset(deeplab: R.Rpk) -> None:
    for label, (data, offset) in _malformed(deeplab).items():
        with pytest.raises(R.RpkFormatError) as info:
            R.parse_rpk(data)
        assert info.value.offset == offset, (label, str(info.value))
        assert isinstance(info.value, BadInputError) and info.value.exit_code == 2
        assert f"at byte {offset}" in str(info.value)


def test_cli_inspect_json_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(rpk_path(DEEPLAB)), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"blocks", "input_tensor", "intrinsics", "size_bytes"} <= set(info)
    assert info["input_tensor"] == {"width": 320, "height": 320, "format": "RGB"}
    assert info["intrinsics"] == {"inference_rate": 19, "task": "segmentation"}
    assert info["size_bytes"] == rpk_path(DEEPLAB).stat().st_size
    assert [b["size"] for b in info["blocks"]] == [b.size for b in R.read_rpk(rpk_path(DEEPLAB)).blocks]

    bad = tmp_path / "bad.rpk"
    bad.write_bytes(rpk_path(DEEPLAB).read_bytes()[:5000])
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "at byte" in err
    assert main(["inspect", str(tmp_path / "missing.rpk")]) == 2


def test_cli_intrinsics_set_from_and_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "net.rpk"
    src.write_bytes(rpk_path(DEEPLAB).read_bytes())
    before = src.read_bytes()
    # in place only when asked
    assert main(["intrinsics", str(src), "--set", "inference_rate=12"]) == 2
    # off-schema values are refused and nothing is written
    out = tmp_path / "out.rpk"
    assert main(["intrinsics", str(src), "--set", "task=juggling", "-o", str(out)]) == 2
    assert main(["intrinsics", str(src), "--set", "cpu.bbox_order=zz", "-o", str(out)]) == 2
    assert main(["intrinsics", str(src), "--set", "nonsense=1", "-o", str(out)]) == 2
    assert not out.exists() and src.read_bytes() == before
    # --set merges into the existing intrinsics
    args = ["--set", "inference_rate=12.5", "--set", "input_aspect_ratio=1:1", "--set", "cpu.softmax=true"]
    assert main(["intrinsics", str(src), *args, "-o", str(out)]) == 0
    assert src.read_bytes() == before
    assert picamera2_read_rpk(out)["intrinsics"].intrinsics == {
        "inference_rate": 12.5,
        "task": "segmentation",
        "input_aspect_ratio": {"width": 1, "height": 1},
        "cpu": {"softmax": True},
    }
    # --from replaces everything; --in-place rewrites the file itself
    spec = tmp_path / "intr.json"
    spec.write_text(json.dumps({"task": "classification", "classes": {"labels": ["a", "b"]}}))
    assert main(["intrinsics", str(src), "--from", str(spec), "--in-place"]) == 0
    assert picamera2_read_rpk(src)["intrinsics"].labels == ["a", "b"]
    assert src.read_bytes()[: R.read_rpk(src).cpio_offset] == before[: R.parse_rpk(before).cpio_offset]
    assert list(tmp_path.glob(".*tmp")) == []  # no temporary files left behind
    capsys.readouterr()


def test_read_refuses_huge_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(R, "MAX_RPK_BYTES", 1000)
    with pytest.raises(R.RpkFormatError):
        R.read_rpk(rpk_path(DEEPLAB))


def test_cli_intrinsics_refuses_non_finite_and_directory_output(tmp_path: Path) -> None:
    src = str(rpk_path(DEEPLAB))
    assert main(["intrinsics", src, "--set", "inference_rate=nan", "-o", str(tmp_path / "a.rpk")]) == 2
    assert main(["intrinsics", src, "--from", '{"inference_rate": Infinity}', "-o", str(tmp_path / "a.rpk")]) == 2
    assert main(["intrinsics", src, "--set", "inference_rate=5", "-o", str(tmp_path)]) == 2
    assert list(tmp_path.iterdir()) == []
