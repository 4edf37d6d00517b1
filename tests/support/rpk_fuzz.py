"""Structure-aware mutations of real .rpk files (hypothesis strategies), shared by the fuzz test and benchmark.

Mutations are biased toward the bytes a parser reads: block headers and footers, the CPIO headers and the
network_info / network_intrinsics payloads, plus plain random flips, truncations, insertions and deletions.
The strategy draws a small *plan* (base file + operations); ``apply_plan`` builds the mutant bytes. Hypothesis
keeps every drawn value around, so drawing multi-megabyte mutants directly would cost gigabytes of memory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from firmware_packaging import rpk as R
from tests.support.picamera2_host import import_imx500_module, picamera2_read_rpk

Plan = tuple[str, tuple[tuple[Any, ...], ...]]
OPS = ("flip", "u32", "hex", "text", "truncate", "insert", "delete", "lockbit", "field", "magic")
_MAGICS = (b"070701", b"070702", b"070707", b"070727", b"070700", b"07070\n")


def hot_spans(rpk: R.Rpk) -> list[tuple[int, int]]:
    """(start, end) byte ranges a parser looks at."""
    spans = []
    for b in rpk.blocks:
        spans.append((b.offset, b.offset + 16))
        spans.append((b.offset + b.size + 56, b.offset + b.length + 4))
    for e in [*rpk.entries, rpk.trailer]:
        spans.append((e.offset, e.offset + len(e.raw)))
    spans.append((max(0, len(rpk.data) - 600), len(rpk.data)))
    return [(max(0, a), min(len(rpk.data), b)) for a, b in spans if a < b]


@st.composite
def _position(draw: st.DrawFn, rpk: R.Rpk) -> int:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.integers(0, len(rpk.data) - 1))
    a, b = draw(st.sampled_from(hot_spans(rpk)))
    return draw(st.integers(a, b - 1))


_U32 = st.sampled_from([0, 1, 3, 44, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFC0, 1048512]) | st.integers(0, 2**32 - 1)
_HEX8 = st.sampled_from([b"00000000", b"FFFFFFFF", b"7FFFFFFF", b"-0000001", b"0x000010", b"  12    "]) | st.binary(
    min_size=8, max_size=8
)
_TEXT = st.sampled_from(
    [b"=", b"\r\n", b"networkOrdinal=", b"networkNum=", b"inputTensorWidth=", b"\xff", b"{", b"}", b'"task":', b"\0"]
) | st.binary(min_size=1, max_size=12)


@st.composite
def mutation_plans(draw: st.DrawFn, bases: dict[str, R.Rpk]) -> Plan:
    """A base file name and 1-4 mutations (op, position, argument)."""
    name = draw(st.sampled_from(sorted(bases)))
    rpk = bases[name]
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(OPS))
        pos = draw(_position(rpk))
        arg: Any = None
        if op == "flip":
            arg = draw(st.integers(0, 7))
        elif op == "u32":
            arg = draw(_U32)
        elif op == "hex":
            arg = draw(_HEX8)
        elif op == "text":
            arg = draw(_TEXT)
        elif op == "insert":
            arg = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            arg = draw(st.integers(1, 64))
        elif op == "lockbit":
            arg = draw(st.integers(0, len(rpk.blocks) - 1))
        elif op in ("field", "magic"):  # a CPIO header: pos picks the entry (the trailer included)
            pos = draw(st.integers(0, len(rpk.entries)))
            if op == "field":  # one of the 13 hex fields, nudged or replaced (sizes move the padding)
                how = draw(st.sampled_from(["add", "set"]))
                value = draw(
                    st.integers(-5, 5) if how == "add" else st.sampled_from([0, 1, 2, 11, 0x7FFFFFFF, 2**32 - 1])
                )
                arg = (draw(st.integers(0, 12)), how, value)
            else:
                arg = draw(st.sampled_from(_MAGICS))
        ops.append((op, pos, arg))
    return name, tuple(ops)


def apply_plan(bases: dict[str, R.Rpk], plan: Plan) -> bytes:
    """The mutant bytes for ``plan`` (positions are clamped to the current length)."""
    name, ops = plan
    rpk = bases[name]
    data = bytearray(rpk.data)
    headers = [e.offset for e in [*rpk.entries, rpk.trailer]]
    for op, pos, arg in ops:
        if op in ("field", "magic"):
            at = headers[pos]
            if op == "magic":
                data[at : at + 6] = arg
            else:
                index, how, value = arg
                start = at + 6 + 8 * index
                old = bytes(data[start : start + 8])
                base = int(old, 16) if how == "add" and re.fullmatch(rb"[0-9A-Fa-f]{8}", old) else 0
                data[start : start + 8] = b"%08X" % ((base + value) & 0xFFFFFFFF)
            continue
        pos = min(pos, max(len(data) - 1, 0))
        if op == "flip" and data:
            data[pos] ^= 1 << arg
        elif op == "u32":
            data[pos : pos + 4] = arg.to_bytes(4, "big")
        elif op in ("hex", "text"):
            data[pos : pos + len(arg)] = arg
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = arg
        elif op == "delete":
            del data[pos : pos + arg]
        elif op == "lockbit":
            flag = rpk.blocks[arg].offset + 8 + R.DEVICE_LOCK_FLAG_INDEX
            if flag < len(data):
                data[flag] ^= 0x01
    return bytes(data)


def exercise(data: bytes) -> str:
    """Parse ``data`` and, when it parses, summarise and rewrite it; returns 'ok' or 'format-error'.

    Anything other than RpkFormatError propagates (that is the failure the fuzzers look for).
    """
    try:
        rpk = R.parse_rpk(data)
        rpk.summary()
        out = R.with_intrinsics(rpk, {"task": "segmentation", "inference_rate": 30.0})
        if out[: rpk.cpio_offset] != rpk.firmware:
            raise AssertionError("rewrite changed the firmware blocks")
    except R.RpkFormatError:
        return "format-error"
    return "ok"


# ---------------------------------------------------------------------------------------------- odd-length blocks


def repack_blocks(rpk: R.Rpk, extra: tuple[int, ...]) -> bytes:
    """``rpk`` re-packed with block ``i`` grown by ``extra[i % len(extra)]`` payload bytes (footer moved along).

    With extras that are not multiples of 4 the firmware blocks end off a 4-byte boundary, so the CPIO archive
    starts at an odd file offset: only a reader that pads relative to the archive reads such a file.
    """
    parts = []
    for b in rpk.blocks:
        grow = extra[b.index % len(extra)]
        size = b.size + grow
        header = R.BLOCK_MAGIC + size.to_bytes(4, "big") + b.flags
        payload = rpk.data[b.offset + 16 : b.offset + b.size + 60] + bytes((0xA5 + i) & 0xFF for i in range(grow))
        lock = rpk.data[b.offset + b.size + 64 : b.offset + b.length]
        parts += [header, payload, R.BLOCK_FOOTER, lock]
    return b"".join(parts) + rpk.data[rpk.cpio_offset :]


def fuzz_bases(rpks: dict[str, R.Rpk]) -> dict[str, R.Rpk]:
    """The real files plus, for each, re-packs whose archive starts 1, 2 and 3 bytes past a 4-byte boundary."""
    bases = dict(rpks)
    for name, rpk in rpks.items():
        n = len(rpk.blocks)
        for shift in (1, 2, 3):
            extra = [i % 3 + 1 for i in range(n - 1)]  # odd-length blocks throughout
            extra.append((shift - rpk.cpio_offset - sum(extra)) % 4 or 4)
            odd = R.parse_rpk(repack_blocks(rpk, tuple(extra)))
            assert odd.cpio_offset % 4 == shift, (name, extra)
            bases[f"{name}+odd{shift}"] = odd
    return bases


# ---------------------------------------------------------------------------------------------- differential


@dataclass(frozen=True)
class View:
    """What one parser made of a file: accepted or not, and the entries and values it read."""

    accepted: bool
    reason: str = ""
    entries: tuple[tuple[str, bytes], ...] = ()
    networks: Any = None
    input_tensor: tuple[int, int, str] | None = None
    intrinsics: str | None = None  # json.dumps of the dict (NaN-safe equality)

    def same_as(self, other: View) -> bool:
        if self.accepted != other.accepted:
            return False
        return not self.accepted or (self.entries, self.networks, self.input_tensor, self.intrinsics) == (
            other.entries,
            other.networks,
            other.input_tensor,
            other.intrinsics,
        )

    def brief(self) -> str:
        if not self.accepted:
            return f"refused: {self.reason[:160]}"
        return f"accepted: {[n for n, _ in self.entries]} {self.input_tensor} intrinsics={(self.intrinsics or '')[:60]}"


def toolkit_view(data: bytes) -> View:
    """The toolkit's reading of ``data``."""
    try:
        rpk = R.parse_rpk(data)
    except R.RpkFormatError as exc:
        return View(False, f"RpkFormatError at {exc.offset}: {exc.reason}")
    t = rpk.input_tensor
    return View(
        True,
        entries=tuple((e.name, e.data) for e in rpk.entries),
        networks=rpk.network_info["networks"],
        input_tensor=(t["width"], t["height"], t["format"]),
        intrinsics=None if rpk.intrinsics is None else json.dumps(rpk.intrinsics, sort_keys=True),
    )


class _Listed:
    """An entry as picamera2 sees it, after its data was read once for the listing."""

    def __init__(self, name: str, data: bytes) -> None:
        self._name, self._data = name, data

    def __str__(self) -> str:
        return self._name

    def get_blocks(self) -> Iterator[bytes]:
        yield self._data


def picamera2_view(data: bytes, path: Path) -> View:
    """picamera2 0.3.38's reading of ``data`` (written to ``path``): ``IMX500.__ni_from_network`` as is.

    Its libarchive reader is wrapped so the listing of every entry (name, data) comes from the very session
    picamera2 iterates; ``str(entry)`` is taken exactly as picamera2 takes it. picamera2 "accepts" a file
    when it loads it and has the network's input tensor (a file without network_info.txt loads, but then
    picamera2 knows no input size and its AI calls fail: counted as refused).
    """
    path.write_bytes(data)
    mod = import_imx500_module()
    real = mod.fd_reader
    listed: list[tuple[str, bytes]] = []

    @contextlib.contextmanager
    def recording_reader(fd: int, *args: Any, **kwargs: Any) -> Iterator[Iterator[_Listed]]:
        with real(fd, *args, **kwargs) as archive:

            def entries() -> Iterator[_Listed]:
                for entry in archive:
                    name = str(entry)
                    listed.append((name, b"".join(entry.get_blocks())))
                    yield _Listed(name, listed[-1][1])

            yield entries()

    mod.fd_reader = recording_reader
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # jsonschema's metaschema guess, libarchive-c's skip warnings
            logging.getLogger("libarchive").disabled = True
            cfg = picamera2_read_rpk(path)
    except Exception as exc:  # whatever picamera2 raises is a refusal
        return View(False, f"{type(exc).__name__}: {exc}")
    finally:
        mod.fd_reader = real
    if "network_info" not in cfg:
        return View(False, "no network_info.txt: picamera2 knows no input tensor")
    ni = cfg.get("intrinsics")
    intr = ni.intrinsics if ni is not None else None
    t = cfg["input_tensor"]
    return View(
        True,
        entries=tuple(listed),
        networks=cfg["network_info"]["network"],
        input_tensor=(t["width"], t["height"], t["input_format"]),
        intrinsics=None if intr is None else json.dumps(intr, sort_keys=True),
    )


REWRITE_INTRINSICS = {"task": "segmentation", "inference_rate": 30.0}


def differential(data: bytes, path: Path) -> tuple[str, str]:
    """Both directions on one file; returns (outcome, detail).

    Outcomes: ``both-accept`` / ``both-refuse`` (agreement), ``only-picamera2`` / ``only-toolkit`` /
    ``entries-differ`` (disagreement), ``rewrite-differs`` (our rewrite of an accepted file is not read by
    picamera2 with the new intrinsics and the same other entries).
    """
    ours = toolkit_view(data)
    theirs = picamera2_view(data, path)
    if ours.accepted != theirs.accepted:
        outcome = "only-toolkit" if ours.accepted else "only-picamera2"
        return outcome, f"toolkit {ours.brief()} | picamera2 {theirs.brief()}"
    if not ours.accepted:
        return "both-refuse", ""
    if not ours.same_as(theirs):
        return "entries-differ", f"toolkit {ours.brief()} | picamera2 {theirs.brief()}"
    out = R.with_intrinsics(R.parse_rpk(data), REWRITE_INTRINSICS)
    back = picamera2_view(out, path)
    kept = [e for e in theirs.entries if e[0] != R.NETWORK_INTRINSICS]
    if (
        not back.accepted
        or back.intrinsics != json.dumps(REWRITE_INTRINSICS, sort_keys=True)
        or [e for e in back.entries if e[0] != R.NETWORK_INTRINSICS] != kept
        or back.networks != theirs.networks
    ):
        return "rewrite-differs", f"rewrite: picamera2 {back.brief()}"
    return "both-accept", ""


AGREE = ("both-accept", "both-refuse")
