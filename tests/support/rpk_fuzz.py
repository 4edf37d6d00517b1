"""Mutations of real .rpk files, shared by the fuzz test and the benchmark (benchmarks/rpk_fuzz.py).

Structure-aware mutations rebuild the archive with consistent CPIO sizes and padding around one change: a
network_info.txt line dropped, doubled, moved, or its key or value replaced; a network_intrinsics key dropped or
set to a value of another type, or the JSON broken; a CPIO member dropped, doubled, swapped, renamed or given
another file type. Byte-level mutations follow, biased toward the bytes a parser reads (block headers and footers,
CPIO headers, the payloads): flips, 32-bit values, hex fields, text, truncations, insertions, deletions. A mutant
is a small *plan* (base file + operations) drawn from ``random.Random(f"{seed}:{index}")``: any mutant of a run
can be rebuilt alone, so a long run resumes where it stopped; ``apply_plan`` builds the bytes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_packaging import rpk as R
from firmware_packaging.rpk.cpio import newc_entry
from firmware_packaging.rpk.writer import trailer_bytes
from tests.support.picamera2_host import import_imx500_module, picamera2_read_rpk

Plan = tuple[str, tuple[tuple[Any, ...], ...]]
#: byte-level operations (positions biased toward the bytes a parser reads)
BYTE_OPS = ("flip", "u32", "hex", "text", "truncate", "insert", "delete", "lockbit", "field", "magic")
#: structure-aware operations: the archive is rebuilt with consistent CPIO sizes and padding around the change
STRUCT_OPS = ("netinfo", "intr", "entry")
OPS = BYTE_OPS + STRUCT_OPS
_MAGICS = (b"070701", b"070702", b"070707", b"070727", b"070700", b"07070\n")
_U32 = (0, 1, 3, 44, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFC0, 1048512)
_HEX8 = (b"00000000", b"FFFFFFFF", b"7FFFFFFF", b"-0000001", b"0x000010", b"  12    ")
_TEXT = (
    b"=",
    b"\r\n",
    b"networkOrdinal=",
    b"networkNum=",
    b"inputTensorWidth=",
    b"\xff",
    b"{",
    b"}",
    b'"task":',
    b"\0",
)
#: network_info.txt keys picamera2 reads, and values that stress its int()/int(,0) parsing
_NI_KEYS = (
    "networkNum",
    "networkOrdinal",
    "networkID",
    "apParamSize",
    "inputTensorWidth",
    "inputTensorHeight",
    "inputTensorFormat",
    "inputTensorNorm_K00",
    "inputTensorNorm_K23",
    "version",
    "unknownKey",
    "",
)
_NI_VALUES = (
    "",
    "0",
    "1",
    "2",
    "-1",
    "0x10",
    "010",
    "1e3",
    " 7",
    "7 ",
    "99999999999999999999",
    "RGB",
    "BGR",
    "a=b",
    "\u00e9",
    "1234567",
    "0400",
    "0b11",
    "1_000",
)
#: network_intrinsics keys and values that stress picamera2's schema check and its setters
_INTR_KEYS = ("task", "inference_rate", "cpu", "input_aspect_ratio", "classes", "unknown", "")
_INTR_VALUES = (
    None,
    True,
    0,
    -1,
    1.5,
    float("inf"),
    "segmentation",
    "nope",
    [],
    ["a"],
    {},
    {"width": 0, "height": 1},
    {"labels": [1]},
    {"bbox_order": "zz"},
    {"softmax": "yes"},
    "x" * 300,
)
_ENTRY_NAMES = (
    "network_info.txt",
    "network_intrinsics",
    "imx500_regs",
    "./network_info.txt",
    "network_info.txt/",
    "",
    "TRAILER!!!",
    "a/../network_info.txt",
    "n\u00e9twork",
)
_ENTRY_MODES = (0o100644, 0o120777, 0o040755, 0o020644, 0o010644, 0, 0o170000)


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


def _position(rng: random.Random, rpk: R.Rpk) -> int:
    if rng.randrange(10) == 0:
        return rng.randrange(len(rpk.data))
    a, b = rng.choice(hot_spans(rpk))
    return rng.randrange(a, b)


def _bytes(rng: random.Random, lo: int, hi: int) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randint(lo, hi)))


def _choice_or(rng: random.Random, fixed: tuple[Any, ...], other: Any) -> Any:
    return rng.choice(fixed) if rng.random() < 0.6 else other


def _op(rng: random.Random, rpk: R.Rpk, op: str) -> tuple[Any, ...]:
    """One operation (op, position, argument) drawn for ``rpk``."""
    pos, arg = _position(rng, rpk), None
    if op == "flip":
        arg = rng.randrange(8)
    elif op == "u32":
        arg = _choice_or(rng, _U32, rng.randrange(2**32))
    elif op == "hex":
        arg = _choice_or(rng, _HEX8, _bytes(rng, 8, 8))
    elif op == "text":
        arg = _choice_or(rng, _TEXT, _bytes(rng, 1, 12))
    elif op == "insert":
        arg = _bytes(rng, 1, 64)
    elif op == "delete":
        arg = rng.randint(1, 64)
    elif op == "lockbit":
        arg = rng.randrange(len(rpk.blocks))
    elif op in ("field", "magic"):  # a CPIO header: pos picks the entry (the trailer included)
        pos = rng.randrange(len(rpk.entries) + 1)
        if op == "field":  # one of the 13 hex fields, nudged or replaced (sizes move the padding)
            how = rng.choice(["add", "set"])
            value = rng.randint(-5, 5) if how == "add" else rng.choice([0, 1, 2, 11, 0x7FFFFFFF, 2**32 - 1])
            arg = (rng.randrange(13), how, value)
        else:
            arg = rng.choice(_MAGICS)
    elif op == "netinfo":  # one line of network_info.txt: dropped, doubled, moved, or a key / value replaced
        how = rng.choice(["drop", "dup", "move", "key", "value", "add", "crlf", "lf"])
        value = rng.choice(_NI_KEYS) if how == "key" else rng.choice(_NI_VALUES)
        if how == "add":
            value = f"{rng.choice(_NI_KEYS)}={rng.choice(_NI_VALUES)}"
        pos, arg = rng.randrange(64), (how, rng.randrange(64), value)
    elif op == "intr":  # network_intrinsics: a key dropped or set to another value, or the JSON broken
        how = rng.choice(["drop", "set", "set", "raw", "absent"])
        pos, arg = 0, (how, rng.choice(_INTR_KEYS), rng.choice(_INTR_VALUES) if how != "raw" else _bytes(rng, 0, 8))
    elif op == "entry":  # a CPIO member: dropped, doubled, swapped with the next, renamed or its mode changed
        how = rng.choice(["drop", "dup", "swap", "rename", "mode"])
        value = rng.choice(_ENTRY_NAMES) if how == "rename" else rng.choice(_ENTRY_MODES)
        pos, arg = rng.randrange(len(rpk.entries)), (how, value)
    return (op, pos, arg)


def random_plan(rng: random.Random, bases: dict[str, R.Rpk]) -> Plan:
    """A base file name and 1-4 mutations (op, position, argument); structure-aware ones first, at most two.

    A third of the plans are structure-aware only (the file stays well-formed around the change, so the readers'
    judgement of its content is compared), the rest mix both kinds.
    """
    name = rng.choice(sorted(bases))
    rpk = bases[name]
    kinds = STRUCT_OPS if rng.random() < 1 / 3 else OPS
    ops = [_op(rng, rpk, rng.choice(kinds)) for _ in range(rng.randint(1, 4))]
    structural = [o for o in ops if o[0] in STRUCT_OPS][:2]
    return name, tuple(structural + [o for o in ops if o[0] not in STRUCT_OPS])


def plan_for(seed: int | str, index: int, bases: dict[str, R.Rpk]) -> Plan:
    """Mutant number ``index`` of run ``seed``: each mutant has its own generator, so a run can resume anywhere."""
    return random_plan(random.Random(f"{seed}:{index}"), bases)


def _netinfo(payload: bytes, how: str, index: int, value: str) -> bytes:
    lines = payload.decode("latin-1").splitlines(keepends=True) or [""]
    i = index % len(lines)
    line = lines[i]
    ending = line[len(line.rstrip("\r\n")) :] or "\n"
    key, _, old = line.rstrip("\r\n").partition("=")
    if how == "drop":
        del lines[i]
    elif how == "dup":
        lines.insert(i, line)
    elif how == "move":
        lines.insert(index * 7 % len(lines), lines.pop(i))
    elif how == "key":
        lines[i] = f"{value}={old}{ending}"
    elif how == "value":
        lines[i] = f"{key}={value}{ending}"
    elif how == "add":
        lines.insert(i, value + ending)
    elif how == "crlf":
        lines = [ln.rstrip("\r\n") + "\r\n" for ln in lines]
    else:
        lines = [ln.rstrip("\r\n") + "\n" for ln in lines]
    return "".join(lines).encode("utf-8")


def _intrinsics(payload: bytes | None, how: str, key: str, value: Any) -> bytes | None:
    if how == "absent":
        return None
    if how == "raw":
        return (payload or b"{}")[: len(payload or b"") // 2] + value
    try:
        current = json.loads(payload) if payload else {}
    except ValueError:
        current = {}
    if not isinstance(current, dict):
        current = {}
    if how == "drop":
        current.pop(key, None)
    else:
        current[key] = value
    return (json.dumps(current) + "\n").encode("utf-8")


def _restructure(rpk: R.Rpk, ops: list[tuple[Any, ...]]) -> tuple[bytes, list[int]]:
    """The file rebuilt with the structure-aware ``ops`` applied; returns it and its CPIO header offsets."""
    members = [[e.name, e.fields, e.data] for e in rpk.entries]
    for op, pos, arg in ops:
        names = [m[0] for m in members]
        if op == "netinfo" and R.NETWORK_INFO in names:
            m = members[names.index(R.NETWORK_INFO)]
            m[2] = _netinfo(m[2], *arg)
        elif op == "intr":
            how, key, value = arg
            at = names.index(R.NETWORK_INTRINSICS) if R.NETWORK_INTRINSICS in names else None
            new = _intrinsics(members[at][2] if at is not None else None, how, key, value)
            if at is not None and new is None:
                del members[at]
            elif at is not None:
                members[at][2] = new
            elif new is not None:
                members.append([R.NETWORK_INTRINSICS, (len(members), 0o100644, 0, 0, 1, *(0,) * 8), new])
        elif op == "entry" and members:
            how, value = arg
            i = pos % len(members)
            if how == "drop":
                del members[i]
            elif how == "dup":
                members.insert(i, list(members[i]))
            elif how == "swap" and i + 1 < len(members):
                members[i], members[i + 1] = members[i + 1], members[i]
            elif how == "rename":
                members[i][0] = value
            elif how == "mode":
                fields = list(members[i][1])
                fields[1] = value
                members[i][1] = tuple(fields)
    parts, heads, at = [rpk.firmware], [], len(rpk.firmware)
    for name, fields, payload in members:
        entry = newc_entry(name, fields, payload)
        heads.append(at)
        parts.append(entry)
        at += len(entry)
    heads.append(at)
    parts.append(trailer_bytes(rpk))
    archive = sum(len(p) for p in parts[1:])
    parts.append(b"\0" * (-archive % R.CPIO_PAD_BLOCK))
    return b"".join(parts), heads


def apply_plan(bases: dict[str, R.Rpk], plan: Plan) -> bytes:
    """The mutant bytes for ``plan``: structure-aware ops rebuild the file, then byte ops (positions clamped)."""
    name, ops = plan
    rpk = bases[name]
    structural = [o for o in ops if o[0] in STRUCT_OPS]
    if structural:
        rebuilt, headers = _restructure(rpk, structural)
        data = bytearray(rebuilt)
    else:
        data = bytearray(rpk.data)
        headers = [e.offset for e in [*rpk.entries, rpk.trailer]]
    for op, pos, arg in ops:
        if op in STRUCT_OPS:
            continue
        if op in ("field", "magic"):
            at = headers[min(pos, len(headers) - 1)]
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


class _SchemaCheckedOnce:
    """The ``jsonschema`` module as picamera2 calls it, with each schema checked against its metaschema once.

    ``jsonschema.validate`` re-checks the (constant) schema on every call, about 0.14 s and most of a mutant's
    time; the instance is validated exactly as ``jsonschema.validate`` does (same validator class, same
    ``best_match`` error). Everything else is the real module.
    """

    def __init__(self, real: Any) -> None:
        self._real = real
        self._checked: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def validate(self, instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
        cls = cls or self._real.validators.validator_for(schema)
        key = json.dumps(schema, sort_keys=True, default=repr)
        if key not in self._checked:
            cls.check_schema(schema)
            self._checked.add(key)
        error = self._real.exceptions.best_match(cls(schema, *args, **kwargs).iter_errors(instance))
        if error is not None:
            raise error


def _close_leaked(fds: list[int], path: Path) -> None:
    """Close the archive descriptor picamera2 leaves open when libarchive raises.

    ``__ni_from_network`` calls ``os.close(cpio_fd)`` after its ``with fd_reader(...)`` block, not in a
    ``finally``: every file libarchive refuses leaks one descriptor (harmless on a Pi, which loads one file per
    process; the 100k fuzz ran out of descriptors at mutant ~77,000). Only a descriptor still open on ``path``
    is closed, so one that picamera2 closed and the system reused is never touched.
    """
    target = os.path.realpath(path)
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                os.close(fd)
        except OSError:
            pass


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
    opened: list[int] = []

    @contextlib.contextmanager
    def recording_reader(fd: int, *args: Any, **kwargs: Any) -> Iterator[Iterator[_Listed]]:
        opened.append(fd)
        with real(fd, *args, **kwargs) as archive:

            def entries() -> Iterator[_Listed]:
                for entry in archive:
                    name = str(entry)
                    listed.append((name, b"".join(entry.get_blocks())))
                    yield _Listed(name, listed[-1][1])

            yield entries()

    mod.fd_reader = recording_reader
    if not isinstance(mod.jsonschema, _SchemaCheckedOnce):
        mod.jsonschema = _SchemaCheckedOnce(mod.jsonschema)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # jsonschema's metaschema guess, libarchive-c's skip warnings
            logging.getLogger("libarchive").disabled = True
            cfg = picamera2_read_rpk(path)
    except Exception as exc:  # whatever picamera2 raises is a refusal
        _close_leaked(opened, path)
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
