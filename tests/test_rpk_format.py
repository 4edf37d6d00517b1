"""The .rpk reader/writer on Raspberry Pi's real network files, cross-checked with picamera2's own parser."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from firmware_packaging import rpk as R
from firmware_packaging.rpk import reader as rpk_reader
from firmware_packaging.rpk.cpio import newc_entry, newc_header
from imx500_sam.cli import main
from imx500_sam.errors import BadInputError
from tests.rpk_fixtures import DEEPLAB, HIGHERHRNET, rpk_path
from tests.support.picamera2_host import picamera2_intrinsics_schema, picamera2_read_rpk
from tests.support.rpk_fuzz import fuzz_bases, picamera2_view, toolkit_view

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
    return newc_entry(name, (9, mode, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0), payload)


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
        # libarchive skips a damaged header to the next valid one: network_info.txt is lost
        "bad hex in header": (d[: ni.offset + 54] + b"zzzzzzzz" + d[ni.offset + 62 :], deeplab.cpio_offset),
        "oversized cpio file size": (d[: ni.offset + 54] + b"7FFFFFFF" + d[ni.offset + 62 :], ni.offset + 54),
    }
    intr = deeplab.entry("network_intrinsics")
    bad_json = newc_entry("network_intrinsics", intr.fields, b"{not json")
    bad_schema = newc_entry("network_intrinsics", intr.fields, b'{"task": "juggling"}')
    for label, raw in (("intrinsics not JSON", bad_json), ("intrinsics off schema", bad_schema)):
        body = deeplab.firmware + b"".join(e.raw if e is not intr else raw for e in deeplab.entries)
        body += deeplab.trailer.raw
        cases[label] = (body + b"\0" * (-(len(body) - deeplab.cpio_offset) % 512), intr.offset)
    bad_info = ni.data.replace(b"networkNum=1", b"networkNum=2")
    body = deeplab.firmware + b"".join(
        e.raw if e is not ni else newc_entry(ni.name, ni.fields, bad_info) for e in deeplab.entries
    )
    cases["network_info count"] = (body + deeplab.trailer.raw, ni.offset)
    # picamera2 splits lines at "\n" only and needs key=value on every line (found by the picamera2 differential)
    for label, info in (
        ("form feed is no line break", ni.data.replace(b"networkType=0\r\n", b"networkType=0\x0cfoo=1\r\n")),
        ("blank line", ni.data.replace(b"networkType=0\r\n", b"networkType=0\r\n\r\n")),
    ):
        assert info != ni.data
        body = deeplab.firmware + b"".join(
            e.raw if e is not ni else newc_entry(ni.name, ni.fields, info) for e in deeplab.entries
        )
        cases[label] = (body + deeplab.trailer.raw, ni.offset)
    # what picamera2's own network_info.txt code raises on
    for label, info in (
        ("networkID of 7 digits", ni.data.replace(b"networkID=000000", b"networkID=0000000")),
        ("networkNum not a number", ni.data.replace(b"networkNum=1", b"networkNum=one")),
        ("no ordinal 0", ni.data.replace(b"networkOrdinal=0", b"networkOrdinal=1")),
        ("norm key not int(x, 0)", ni.data.replace(b"inputTensorNorm_K22=0x0400", b"inputTensorNorm_K22=0400")),
        ("norm key missing (format Y)", ni.data.replace(b"Format=RGB", b"Format=Y").replace(b"_K20=", b"_X20=")),
        ("width missing", ni.data.replace(b"inputTensorWidth=320\r\n", b"")),
    ):
        assert info != ni.data, label
        body = deeplab.firmware + b"".join(
            e.raw if e is not ni else newc_entry(ni.name, ni.fields, info) for e in deeplab.entries
        )
        cases[label] = (body + deeplab.trailer.raw, ni.offset)
    return cases


def test_every_malformed_input_raises_the_format_error_with_offset(deeplab: R.Rpk, tmp_path: Path) -> None:
    for label, (data, offset) in _malformed(deeplab).items():
        with pytest.raises(R.RpkFormatError) as info:
            R.parse_rpk(data)
        assert info.value.offset == offset, (label, str(info.value))
        assert isinstance(info.value, BadInputError) and info.value.exit_code == 2
        assert f"at byte {offset}" in str(info.value)
        if data:  # picamera2 cannot open an empty file at all (struct.error)
            assert not picamera2_view(data, tmp_path / "m.rpk").accepted, label  # picamera2 refuses it too


def _archive(rpk: R.Rpk, members: list[bytes], tail: bytes = b"") -> bytes:
    body = rpk.firmware + b"".join(members)
    return body + b"\0" * (-(len(body) - rpk.cpio_offset) % 512) + tail


def _lenient(deeplab: R.Rpk) -> dict[str, tuple[bytes, list[str]]]:
    """Files picamera2 reads that a strict reader would refuse: label -> (bytes, the entry names read)."""
    regs, ni, intr = deeplab.entries
    t = deeplab.trailer.raw
    names = ["imx500_regs", "network_info.txt", "network_intrinsics"]
    info = ni.data
    with_info = lambda text: newc_entry(ni.name, ni.fields, text)  # noqa: E731
    trailer_fields = list(deeplab.trailer.fields)
    trailer_fields[6] = 4096  # a trailer declaring data the file does not hold: libarchive stops before it
    long_trailer = newc_header(tuple(trailer_fields)) + b"TRAILER!!!\0" + b"\0" * 3
    return {
        "garbage after the trailer": (deeplab.data[:-10] + b"junk" + deeplab.data[-6:], names),
        "names are data: traversal, absolute, nested": (
            _archive(
                deeplab,
                [regs.raw, ni.raw, intr.raw]
                + [_cpio_entry(n, b"x") for n in ("../../etc/cron.d/x", "/etc/passwd", "a/network_info.txt")]
                + [t],
            ),
            [*names, "../../etc/cron.d/x", "/etc/passwd", "a/network_info.txt"],
        ),
        "UTF-8 name": (
            _archive(deeplab, [regs.raw, _cpio_entry("réseau", b"x"), ni.raw, intr.raw, t]),
            ["imx500_regs", "réseau", "network_info.txt", "network_intrinsics"],
        ),
        "NUL inside a name ends it": (
            _archive(
                deeplab,
                [
                    regs.raw,
                    newc_entry("a\0b", (9, 0o100644, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0), b"z"),
                    ni.raw,
                    intr.raw,
                    t,
                ],
            ),
            ["imx500_regs", "a", "network_info.txt", "network_intrinsics"],
        ),
        "duplicates: the last network_info.txt wins": (
            _archive(
                deeplab, [regs.raw, regs.raw, with_info(info.replace(b"Width=320", b"Width=1")), ni.raw, intr.raw, t]
            ),
            ["imx500_regs", "imx500_regs", "network_info.txt", "network_info.txt", "network_intrinsics"],
        ),
        "symlink and directory entries": (
            _archive(
                deeplab,
                [
                    _cpio_entry("link", b"/etc", 0o120777),
                    _cpio_entry("dir", b"", 0o040755),
                    regs.raw,
                    ni.raw,
                    intr.raw,
                    t,
                ],
            ),
            ["link", "dir", *names],
        ),
        "garbage between entries": (_archive(deeplab, [regs.raw, b"\xff" * 7, ni.raw, intr.raw, t]), names),
        "CRC magic 070702": (_archive(deeplab, [b"070702" + regs.raw[6:], ni.raw, intr.raw, t]), names),
        "trailer declares data past the end": (deeplab.firmware + regs.raw + ni.raw + intr.raw + long_trailer, names),
        "intrinsics null": (
            _archive(deeplab, [regs.raw, ni.raw, newc_entry(intr.name, intr.fields, b"null"), t]),
            names,
        ),
        "intrinsics UTF-16 with NaN": (
            _archive(
                deeplab,
                [
                    regs.raw,
                    ni.raw,
                    newc_entry(intr.name, intr.fields, '{"inference_rate": NaN}'.encode("utf-16")),
                    t,
                ],
            ),
            names,
        ),
        "network_info read as picamera2 reads it": (
            _archive(
                deeplab,
                [
                    regs.raw,
                    with_info(
                        info.replace(b"networkType=0", b"=0")  # empty key
                        .replace(b"apParamSize=356", b"apParamSize=3_56")  # Python int()
                        .replace(b"inputTensorWidth=320", b"inputTensorWidth=0")
                        .replace(b"networkOrdinal=0", b"xnetworkOrdinal=0")  # picamera2 splits at the substring
                    ),
                    intr.raw,
                    t,
                ],
            ),
            names,
        ),
    }


def test_reads_what_picamera2_reads_with_the_same_entries(deeplab: R.Rpk, tmp_path: Path) -> None:
    """Files a strict reader would refuse but picamera2 (libarchive) reads: we read them, to the same entries."""
    for label, (data, names) in _lenient(deeplab).items():
        ours, theirs = toolkit_view(data), picamera2_view(data, tmp_path / "m.rpk")
        assert theirs.accepted, (label, theirs.brief())
        assert ours.same_as(theirs), (label, ours.brief(), theirs.brief())
        assert [n for n, _ in ours.entries] == names, label
        rpk = R.parse_rpk(data)
        rewritten = R.with_intrinsics(rpk, {"task": "segmentation"})  # and the rewrite stays readable by picamera2
        back = picamera2_view(rewritten, tmp_path / "w.rpk")
        assert back.accepted and json.loads(back.intrinsics) == {"task": "segmentation"}, label
    skipped = R.parse_rpk(_lenient(deeplab)["garbage between entries"][0])
    assert skipped.warnings == [f"skipped 7 bytes before the CPIO header at byte {skipped.entries[1].offset}"]
    # libarchive's header search can step over a valid header: a damaged imx500_regs header makes it miss
    # network_info.txt too (it lands on network_intrinsics); we take the very same steps
    regs, ni, intr = deeplab.entries
    data = _archive(deeplab, [regs.raw[:20] + b"zz" + regs.raw[22:], ni.raw, intr.raw, deeplab.trailer.raw])
    assert not picamera2_view(data, tmp_path / "m.rpk").accepted
    with pytest.raises(R.RpkFormatError, match=f"no network_info.txt .skipped {intr.offset - regs.offset} bytes"):
        R.parse_rpk(data)
    assert R.parse_rpk(_lenient(deeplab)["duplicates: the last network_info.txt wins"][0]).input_tensor["width"] == 320


def test_invalid_utf8_name_refused_like_picamera2(deeplab: R.Rpk, tmp_path: Path) -> None:
    regs, ni, intr = deeplab.entries
    for name in (b"\xff\xfe", b"\xed\xa0\x80"):  # not UTF-8; a UTF-16 surrogate
        bad = newc_header((9, 0o100644, 0, 0, 1, 0, 2, 0, 0, 0, 0, len(name) + 1, 0)) + name + b"\0"
        bad += b"\0" * ((1 - len(name)) & 3) + b"xy\0\0"
        data = _archive(deeplab, [regs.raw, bad, ni.raw, intr.raw, deeplab.trailer.raw])
        assert "not UTF-8" in toolkit_view(data).reason
        assert "TypeError" in picamera2_view(data, tmp_path / "m.rpk").reason  # libarchive-c hands str() bytes


def test_firmware_blocks_of_any_length(deeplab: R.Rpk, hrnet: R.Rpk, tmp_path: Path) -> None:
    """Blocks whose lengths are not multiples of 4 put the archive at an odd file offset: read and rewrite."""
    bases = fuzz_bases({"deeplab": deeplab, "hrnet": hrnet})
    for name, rpk in bases.items():
        real = deeplab if name.startswith("deeplab") else hrnet
        assert [(e.name, e.raw) for e in rpk.entries] == [(e.name, e.raw) for e in real.entries], name
        assert rpk.input_tensor == real.input_tensor and rpk.intrinsics == real.intrinsics
        assert toolkit_view(rpk.data).same_as(picamera2_view(rpk.data, tmp_path / "m.rpk")), name
        new = {"task": "segmentation", "inference_rate": 12.5}
        out = R.with_intrinsics(rpk, new)
        assert out[: rpk.cpio_offset] == rpk.firmware
        assert (len(out) - rpk.cpio_offset) % R.CPIO_PAD_BLOCK == 0  # padded from the archive's start
        back = picamera2_view(out, tmp_path / "w.rpk")
        assert back.accepted and json.loads(back.intrinsics) == new, (name, back.brief())
        assert R.with_intrinsics(rpk, rpk.intrinsics) == rpk.data  # same intrinsics: byte-identical
    assert {rpk.cpio_offset % 4 for rpk in bases.values()} == {0, 1, 2, 3}


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
    monkeypatch.setattr(rpk_reader, "MAX_RPK_BYTES", 1000)
    with pytest.raises(R.RpkFormatError):
        R.read_rpk(rpk_path(DEEPLAB))


def test_cli_intrinsics_refuses_non_finite_and_directory_output(tmp_path: Path) -> None:
    src = str(rpk_path(DEEPLAB))
    assert main(["intrinsics", src, "--set", "inference_rate=nan", "-o", str(tmp_path / "a.rpk")]) == 2
    assert main(["intrinsics", src, "--from", '{"inference_rate": Infinity}', "-o", str(tmp_path / "a.rpk")]) == 2
    assert main(["intrinsics", src, "--set", "inference_rate=5", "-o", str(tmp_path)]) == 2
    assert list(tmp_path.iterdir()) == []
