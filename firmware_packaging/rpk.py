"""Read, validate and rewrite IMX500 network firmware files (``.rpk``).

Layout (checked against Raspberry Pi's imx500-models files and picamera2 0.3.38
``IMX500.__ni_from_network``):

- firmware blocks, one after another: 4-byte magic ``b'9464'``, big-endian u32 ``size``, 8 flag bytes
  (``flags[6]`` bit 0 = device lock), payload, footer ``b'3695'`` at ``size + 60`` from the block start.
  The next block starts at ``size + 64`` (``+ 32`` more when the device-lock bit is set);
- then a CPIO archive (newc, ``070701``) with ``imx500_regs``, ``network_info.txt`` (``key=value`` lines, CRLF)
  and an optional ``network_intrinsics`` (JSON), ended by ``TRAILER!!!`` and zero padding.

The reader accepts exactly what picamera2 accepts, with the same entries: the CPIO archive is read as
libarchive 3.6 (which picamera2 uses) reads newc: padding is a function of the name and data lengths (so it is
counted from the start of the archive, wherever the firmware blocks end), a damaged header is skipped up to the
next valid one (recorded in ``Rpk.warnings``), entry names are data (nothing is ever extracted), later entries
of the same name win, and bytes after ``TRAILER!!!`` are ignored; ``network_info.txt`` and
``network_intrinsics`` are then checked as picamera2's own code reads them. Deliberately stricter than
picamera2: a file must start with a firmware block, its archive must be newc (libarchive would also try tar,
odc cpio and compressed archives, which no IMX500 tool writes), and it must hold ``network_info.txt`` (without
it picamera2 loads the firmware but has no input tensor size).

Every refused input raises :class:`RpkFormatError` (a :class:`BadInputError`, exit 2) with the byte offset.
Light module: standard library (+ ``jsonschema`` for intrinsics); runs on a Pi.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imx500_sam.errors import BadInputError
from imx500_sam.outputs import file_mode

BLOCK_MAGIC = b"9464"
BLOCK_FOOTER = b"3695"
BLOCK_OVERHEAD = 64  # header (16) + footer-to-next-block (the footer sits at size + 60)
DEVICE_LOCK_EXTRA = 32
DEVICE_LOCK_FLAG_INDEX = 6
CPIO_MAGIC = b"070701"
CPIO_MAGICS = (b"070701", b"070702")  # newc without / with CRC: libarchive reads both alike (no CRC check)
CPIO_HEADER_LEN = 110
MAX_SYMLINK_BYTES = 1024 * 1024  # libarchive refuses longer symlink targets
CPIO_TRAILER = "TRAILER!!!"
CPIO_PAD_BLOCK = 512  # the archive is zero-padded to a multiple of 512 bytes (as in the real files)
NETWORK_INFO = "network_info.txt"
NETWORK_INTRINSICS = "network_intrinsics"
MAX_RPK_BYTES = 256 * 1024 * 1024  # far above any IMX500 network (8 MiB SRAM); refuses to slurp huge files
_NORM_KEYS = tuple(f"inputTensorNorm_K{k}" for k in ("00", "02", "03", "11", "13", "20", "22", "23"))
_NEWC_HEADER = re.compile(rb"07070[12][0-9A-Fa-f]{104}")  # libarchive: magic 07070[12], all 110 bytes hex


class RpkFormatError(BadInputError):
    """The file is not a well-formed IMX500 .rpk (carries the byte ``offset`` of the problem)."""

    def __init__(self, reason: str, *, offset: int, path: str | os.PathLike[str] | None = None) -> None:
        self.reason = reason
        self.offset = offset
        where = f"{path}: " if path else ""
        super().__init__(
            f"{where}not a valid IMX500 .rpk at byte {offset}: {reason}.",
            hint="Use the network.rpk written by imx500-package (or re-run `imx500-sam package`).",
        )


@dataclass(frozen=True)
class Block:
    """One firmware block: where it starts, its declared size, flag bytes and device-lock bit."""

    index: int
    offset: int
    size: int
    flags: bytes
    locked: bool

    @property
    def length(self) -> int:
        """Bytes the block occupies in the file, lock padding included."""
        return self.size + BLOCK_OVERHEAD + (DEVICE_LOCK_EXTRA if self.locked else 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "offset": self.offset,
            "size": self.size,
            "length": self.length,
            "flags": self.flags.hex(),
            "device_lock": self.locked,
        }


@dataclass(frozen=True)
class CpioEntry:
    """A newc CPIO member as libarchive reads it.

    ``name`` is the path libarchive reports (the name bytes up to the first NUL); ``data`` is what reading the
    entry returns (empty for a symlink, whose bytes are its target); ``raw`` is the member's exact bytes
    (header, name, padding, data, padding) as far as they lie in the file.
    """

    name: str
    offset: int
    fields: tuple[int, ...]  # the 13 header fields: ino mode uid gid nlink mtime filesize devmaj devmin rdevmaj ...
    data: bytes
    raw: bytes

    @property
    def mode(self) -> int:
        return self.fields[1]


@dataclass
class Rpk:
    """A parsed .rpk: the exact bytes, firmware blocks and CPIO entries (in archive order, trailer excluded)."""

    data: bytes
    blocks: list[Block]
    cpio_offset: int
    entries: list[CpioEntry]
    trailer: CpioEntry
    network_info: dict[str, Any] = field(default_factory=dict)
    intrinsics: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)  # what libarchive warns about but reads past

    @property
    def firmware(self) -> bytes:
        """The firmware blocks, byte for byte (everything before the CPIO archive)."""
        return self.data[: self.cpio_offset]

    def entry(self, name: str) -> CpioEntry | None:
        """The last entry called ``name`` (the one picamera2 ends up with), or None."""
        return next((e for e in reversed(self.entries) if e.name == name), None)

    @property
    def input_tensor(self) -> dict[str, Any]:
        """``{"width", "height", "format"}`` of network 0, from network_info.txt."""
        net = self.network_info["networks"][0]
        return {
            "width": int(net["inputTensorWidth"]),
            "height": int(net["inputTensorHeight"]),
            "format": net["inputTensorFormat"],
        }

    @property
    def output_tensor_sizes(self) -> list[int]:
        """Element count of each output tensor of network 0 (``outputTensorDimSizeN``), where listed as integers."""
        net = self.network_info["networks"][0]
        count = _int_or_none(net.get("outputTensorNum", "0")) or 0
        count = min(count, len(net))  # no more sizes than lines (outputTensorNum=99999999999999999999 hung here)
        sizes = (_int_or_none(net.get(f"outputTensorDimSize{i}", "")) for i in range(1, count + 1))
        return [s for s in sizes if s is not None]

    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def summary(self) -> dict[str, Any]:
        """What ``imx500-sam inspect --json`` prints."""
        return {
            "size_bytes": len(self.data),
            "sha256": self.sha256(),
            "blocks": [b.to_json() for b in self.blocks],
            "device_lock": any(b.locked for b in self.blocks),
            "cpio_offset": self.cpio_offset,
            "entries": [{"name": e.name, "offset": e.offset, "size": len(e.data)} for e in self.entries],
            "input_tensor": self.input_tensor,
            "output_tensor_sizes": self.output_tensor_sizes,
            "network_info": {k: v for k, v in self.network_info.items() if k != "networks"},
            "intrinsics": self.intrinsics,
            "warnings": self.warnings,
        }


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------- reading


def read_rpk(path: str | os.PathLike[str]) -> Rpk:
    """Read and validate ``path``; raises BadInputError (missing/unreadable) or RpkFormatError."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if not p.is_file():
            raise BadInputError(f"{p} is not a file.", hint="Pass the network .rpk file.")
        if size > MAX_RPK_BYTES:
            raise RpkFormatError(f"file is {size} bytes, over the {MAX_RPK_BYTES}-byte limit", offset=0, path=p)
        data = p.read_bytes()
    except FileNotFoundError:
        raise BadInputError(f"{p} does not exist.", hint="Check the path to the .rpk file.") from None
    except OSError as exc:
        raise BadInputError(f"cannot read {p}: {exc.strerror or exc}.", hint="Check the file's permissions.") from None
    try:
        return parse_rpk(data)
    except RpkFormatError as exc:
        raise RpkFormatError(exc.reason, offset=exc.offset, path=p) from None


def parse_rpk(data: bytes) -> Rpk:
    """Parse and validate an .rpk held in memory (see the module docstring for the layout)."""
    data = bytes(data)
    if len(data) > MAX_RPK_BYTES:
        raise RpkFormatError(f"{len(data)} bytes, over the {MAX_RPK_BYTES}-byte limit", offset=0)
    blocks = _parse_blocks(data)
    cpio_offset = blocks[-1].offset + blocks[-1].length
    entries, trailer, warnings = _parse_cpio(data, cpio_offset)
    rpk = Rpk(data=data, blocks=blocks, cpio_offset=cpio_offset, entries=entries, trailer=trailer, warnings=warnings)
    info = rpk.entry(NETWORK_INFO)
    if info is None:
        why = f" ({warnings[0]})" if warnings else ""
        raise RpkFormatError(f"the CPIO archive has no {NETWORK_INFO}{why}", offset=cpio_offset)
    rpk.network_info = parse_network_info(info.data, offset=info.offset)
    for intr in (e for e in entries if e.name == NETWORK_INTRINSICS):  # picamera2 loads each; the last one wins
        rpk.intrinsics = _read_intrinsics(intr)
    return rpk


def _read_intrinsics(entry: CpioEntry) -> dict[str, Any] | None:
    """``network_intrinsics`` as picamera2 loads it: ``json.loads`` of the bytes, then its schema unless null."""
    try:
        value = json.loads(entry.data)  # bytes, as picamera2 passes them: UTF-8/16/32 and a BOM are detected
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RpkFormatError(f"{NETWORK_INTRINSICS} is not JSON ({type(exc).__name__})", offset=entry.offset) from None
    if value is None:  # NetworkIntrinsics(None): picamera2 keeps no intrinsics
        return None
    problem = intrinsics_problem(value, strict=False)
    if problem:
        raise RpkFormatError(f"{NETWORK_INTRINSICS} fails picamera2's schema: {problem}", offset=entry.offset)
    return value


def _parse_blocks(data: bytes) -> list[Block]:
    blocks: list[Block] = []
    off = 0
    while data[off : off + 4] == BLOCK_MAGIC:
        if off + 16 > len(data):
            raise RpkFormatError("firmware block header is truncated", offset=off)
        (size,) = struct.unpack_from(">I", data, off + 4)
        flags = data[off + 8 : off + 16]
        locked = bool(flags[DEVICE_LOCK_FLAG_INDEX] & 0x01)
        footer = off + size + 60
        end = off + size + BLOCK_OVERHEAD + (DEVICE_LOCK_EXTRA if locked else 0)
        if end > len(data):
            raise RpkFormatError(
                f"firmware block {len(blocks)} declares {size} bytes but the file ends at {len(data)}", offset=off + 4
            )
        if data[footer : footer + 4] != BLOCK_FOOTER:
            raise RpkFormatError(
                f"firmware block {len(blocks)} has no footer {BLOCK_FOOTER!r} (found {data[footer : footer + 4]!r})",
                offset=footer,
            )
        blocks.append(Block(index=len(blocks), offset=off, size=size, flags=flags, locked=locked))
        off = end
    if not blocks:
        raise RpkFormatError(f"no firmware block (expected magic {BLOCK_MAGIC!r}, found {data[:4]!r})", offset=0)
    return blocks


def _is_newc_header(data: bytes, off: int) -> bool:
    """libarchive's test: ``07070`` then ``1`` or ``2``, and all 110 header bytes hex digits."""
    return _NEWC_HEADER.fullmatch(data, off, off + CPIO_HEADER_LEN) is not None


def _find_newc_header(data: bytes, off: int) -> int:
    """Where libarchive's ``find_newc_header`` finds the next header at or after ``off`` (same skipping steps)."""
    p = off
    while p + CPIO_HEADER_LEN <= len(data):
        c = data[p + 5]
        if c in b"12":
            if _is_newc_header(data, p):
                return p
            p += 2
        elif c == ord("0"):
            p += 1
        else:
            p += 6
    where = "no TRAILER!!! entry" if p == off else f"no valid header after byte {off}"
    raise RpkFormatError(f"CPIO archive is truncated ({where})", offset=min(off, len(data)))


def _parse_cpio(data: bytes, start: int) -> tuple[list[CpioEntry], CpioEntry, list[str]]:
    """Read the newc archive at ``start`` step by step as libarchive 3.6 ``archive_read_support_format_cpio`` does.

    Name padding is ``(2 - namesize) & 3`` and data padding ``-filesize & 3``: both counted from the entry's
    header, i.e. from the start of the archive, never from the start of the file.
    """
    magic = data[start : start + 6]
    if magic not in CPIO_MAGICS:
        raise RpkFormatError(f"expected CPIO newc magic {CPIO_MAGIC!r}, found {magic!r}", offset=start)
    entries: list[CpioEntry] = []
    warnings: list[str] = []
    off = start
    while True:
        hdr = _find_newc_header(data, off)
        if hdr != off:
            warnings.append(f"skipped {hdr - off} bytes before the CPIO header at byte {hdr}")
        fields = tuple(int(data[hdr + 6 + 8 * i : hdr + 14 + 8 * i], 16) for i in range(13))
        filesize, namesize, mode = fields[6], fields[11], fields[1]
        name_at = hdr + CPIO_HEADER_LEN
        data_at = name_at + namesize + ((2 - namesize) & 3)
        if data_at > len(data):
            raise RpkFormatError(f"CPIO entry name ({namesize} bytes) runs past the end of the file", offset=hdr + 94)
        name_field = data[name_at : name_at + namesize]
        symlink = mode & 0o170000 == 0o120000
        if symlink and filesize > MAX_SYMLINK_BYTES:
            raise RpkFormatError(f"CPIO symlink of {filesize} bytes (libarchive's limit is 1 MiB)", offset=hdr + 54)
        pad = -filesize & 3
        if namesize == 11 and name_field == CPIO_TRAILER.encode() + b"\0":
            if symlink and data_at + filesize > len(data):
                raise RpkFormatError("CPIO trailer's link target runs past the end of the file", offset=hdr + 54)
            trailer = CpioEntry(CPIO_TRAILER, hdr, fields, b"", data[hdr : data_at + filesize + pad])
            return entries, trailer, warnings  # libarchive stops here: what follows is never read
        if data_at + filesize + pad > len(data):
            raise RpkFormatError(
                f"CPIO entry {name_field[:40]!r} declares {filesize} bytes but the file ends at {len(data)}",
                offset=hdr + 54,
            )
        try:  # picamera2 compares str(entry): a name libarchive-c cannot decode makes that raise
            name = name_field.split(b"\0", 1)[0].decode("utf-8")
        except UnicodeDecodeError:
            raise RpkFormatError(f"CPIO entry name {name_field[:40]!r} is not UTF-8", offset=name_at) from None
        end = data_at + filesize + pad
        payload = b"" if symlink else data[data_at : data_at + filesize]
        entries.append(CpioEntry(name=name, offset=hdr, fields=fields, data=payload, raw=data[hdr:end]))
        off = end


def _key_value(line: str, offset: int) -> tuple[str, str]:
    parts = line.strip().split("=")
    if len(parts) != 2:
        raise RpkFormatError(f"{NETWORK_INFO} line {line.strip()[:40]!r} is not key=value", offset=offset)
    return parts[0], parts[1]


def _as_int(key: str, value: str, offset: int, base: int = 10) -> int:
    try:
        return int(value, base)
    except ValueError:
        raise RpkFormatError(f"{NETWORK_INFO}: {key}={value[:40]!r} is not an integer", offset=offset) from None


def parse_network_info(raw: bytes, *, offset: int = 0) -> dict[str, Any]:
    """Parse and check network_info.txt step by step as picamera2 0.3.38 (``IMX500.__ni_from_network``) does.

    Returns the ``key=value`` lines before the first network section and ``"networks"``: ``{ordinal: {key:
    value}}``, the sections picamera2 reads (text after each ``networkOrdinal=``, later ordinals win).
    """
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise RpkFormatError(f"{NETWORK_INFO} is not ASCII", offset=offset + exc.start) from None
    top: dict[str, Any] = {}
    numbers: dict[str, int] = {}
    in_sections = False
    for line in io.StringIO(text):  # lines end at "\n" only; every line must be exactly key=value
        key, value = _key_value(line, offset)
        if key == "networkID" and len(value) > 6:  # picamera2 packs 6 digits into 24 bits; a 7th is a negative shift
            raise RpkFormatError(f"{NETWORK_INFO}: networkID={value[:40]!r} is longer than 6 digits", offset=offset)
        if key in ("apParamSize", "networkNum"):
            numbers[key] = _as_int(key, value, offset)
        in_sections = in_sections or "networkOrdinal=" in line
        if not in_sections:
            top[key] = value
    networks: dict[int, dict[str, str]] = {}
    for section in text.split("networkOrdinal=")[1:]:
        buf = io.StringIO(section)
        first = buf.readline()
        ordinal = _as_int("networkOrdinal", first, offset)
        networks[ordinal] = dict(_key_value(line, offset) for line in buf)
    if "networkNum" not in numbers or len(networks) != numbers["networkNum"]:
        raise RpkFormatError(
            f"{NETWORK_INFO}: networkNum={numbers.get('networkNum')!r} but {len(networks)} networkOrdinal sections",
            offset=offset,
        )
    if 0 not in networks:
        raise RpkFormatError(f"{NETWORK_INFO}: no networkOrdinal=0 section", offset=offset)
    net0 = networks[0]
    for key in ("inputTensorWidth", "inputTensorHeight", "inputTensorFormat", *_NORM_KEYS):
        if key not in net0:
            raise RpkFormatError(f"{NETWORK_INFO}: network 0 has no {key}", offset=offset)
    for key in ("inputTensorWidth", "inputTensorHeight"):
        _as_int(key, net0[key], offset)
    for key in _NORM_KEYS:  # picamera2 decodes all eight with int(value, 0), whatever the input format
        _as_int(key, net0[key], offset, base=0)
    return {**top, "networks": networks}


# ---------------------------------------------------------------------------------------------- intrinsics

#: The schema picamera2 0.3.38's ``NetworkIntrinsics`` validates against (devices/imx500/imx500.py), verbatim.
INTRINSICS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft-07/schema",
    "title": "network_intrinsics",
    "type": "object",
    "properties": {
        "task": {
            "type": "string",
            "enum": ["classification", "object detection", "pose estimation", "segmentation"],
            "description": "Network task",
        },
        "inference_rate": {"type": "number", "minimum": 0},
        "cpu": {
            "type": "object",
            "properties": {
                "bbox_normalization": {"type": "boolean"},
                "bbox_order": {"type": "string", "enum": ["xy", "yx"]},
                "softmax": {"type": "boolean"},
                "post_processing": {"type": "string"},
            },
        },
        "input_aspect_ratio": {
            "type": "object",
            "properties": {
                "width": {"type": "integer", "exclusiveMinimum": 0},
                "height": {"type": "integer", "exclusiveMinimum": 0},
            },
            "required": ["width", "height"],
        },
        "classes": {
            "type": "object",
            "properties": {
                "labels": {"type": "array", "items": {"type": "string"}},
                "ignore_undefined": {"type": "boolean"},
            },
        },
    },
}


def intrinsics_problem(value: Any, *, strict: bool = True) -> str | None:
    """None when ``value`` passes picamera2's intrinsics schema, else a one-line reason.

    ``strict`` (what the writer asks) also refuses NaN and infinities, which picamera2 reads but JSON has not.
    """
    import jsonschema

    try:
        # Draft 7, as the schema's $schema says (picamera2 lets jsonschema guess from an unlisted URL and gets
        # the latest draft, which judges every keyword of this schema the same way).
        jsonschema.Draft7Validator(INTRINSICS_SCHEMA).validate(value)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        return f"{where}: {exc.message}"
    except (RecursionError, TypeError, ValueError) as exc:  # absurdly nested or non-JSON values
        return f"invalid value ({type(exc).__name__})"
    if strict:
        try:
            json.dumps(value, allow_nan=False)
        except (ValueError, TypeError, RecursionError):
            return "not plain JSON (NaN, infinity or a non-JSON type)"
    return None


def validate_intrinsics(value: Any) -> dict[str, Any]:
    """Return ``value`` if picamera2 would accept it as network intrinsics, else raise BadInputError."""
    problem = intrinsics_problem(value)
    if problem:
        raise BadInputError(
            f"network intrinsics rejected by picamera2's schema: {problem}.",
            hint="See `imx500-sam intrinsics --help` for the keys and allowed values.",
        )
    return value


def encode_intrinsics(value: dict[str, Any]) -> bytes:
    """The bytes stored in ``network_intrinsics`` (same style as Raspberry Pi's files: json.dumps + newline)."""
    return (json.dumps(value) + "\n").encode("utf-8")


# ---------------------------------------------------------------------------------------------- writing


def _newc_header(fields: tuple[int, ...]) -> bytes:
    return CPIO_MAGIC + b"".join(b"%08X" % v for v in fields)


def _newc_entry(name: str, fields: tuple[int, ...], payload: bytes) -> bytes:
    """One newc member; padding counted from its header (the archive is laid out from its own start)."""
    name_b = name.encode("utf-8") + b"\0"
    f = list(fields)
    f[6] = len(payload)
    f[11] = len(name_b)
    head = _newc_header(tuple(f)) + name_b + b"\0" * ((2 - len(name_b)) & 3)
    return head + payload + b"\0" * (-len(payload) & 3)


def _trailer_bytes(rpk: Rpk) -> bytes:
    """The original trailer when all of it lies in the file, else a plain one."""
    t = rpk.trailer
    if len(t.raw) == CPIO_HEADER_LEN + 12 + t.fields[6] + (-t.fields[6] & 3):
        return t.raw
    return _newc_entry(CPIO_TRAILER, (0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0), b"")


def _assemble(rpk: Rpk, members: list[bytes]) -> bytes:
    """``rpk``'s firmware blocks, then ``members`` and its trailer, zero-padded to a multiple of 512 bytes counted
    from the archive's own start; checked by reading it back (never hand back something we cannot read)."""
    archive = b"".join([*members, _trailer_bytes(rpk)])
    out = rpk.firmware + archive + b"\0" * (-len(archive) % CPIO_PAD_BLOCK)
    parse_rpk(out)
    return out


def with_intrinsics(rpk: Rpk, intrinsics: dict[str, Any]) -> bytes:
    """The .rpk bytes with ``network_intrinsics`` set to ``intrinsics``; firmware and other entries kept.

    The firmware blocks and every other entry are copied byte for byte. The first ``network_intrinsics`` entry
    is replaced in place (its header fields kept, size updated; any later ones dropped); otherwise a new entry
    is added before the trailer, with mode 0644 and the owner of network_info.txt. Bytes libarchive skips
    (damaged headers, anything after the trailer) are dropped, and the archive is zero-padded to a multiple of
    512 bytes counted from its own start, wherever the firmware blocks end.
    """
    validate_intrinsics(intrinsics)
    payload = encode_intrinsics(intrinsics)
    members = []
    replaced = False
    for e in rpk.entries:
        if e.name != NETWORK_INTRINSICS:
            members.append(e.raw)
        elif not replaced:
            members.append(_newc_entry(e.name, e.fields, payload))
            replaced = True
    if not replaced:
        info = rpk.entry(NETWORK_INFO)
        uid, gid = (info.fields[2], info.fields[3]) if info else (0, 0)
        ino = max((e.fields[0] for e in rpk.entries), default=-1) + 1
        fields = (ino & 0xFFFFFFFF, 0o100644, uid, gid, 1, 0, 0, 0, 0, 0, 0, 0, 0)
        members.append(_newc_entry(NETWORK_INTRINSICS, fields, payload))
    return _assemble(rpk, members)


def with_network_info(rpk: Rpk, values: dict[str, str]) -> bytes:
    """The .rpk bytes with these ``network_info.txt`` keys set (e.g. the input preprocessor's
    ``inputTensorNorm_K..``, see ``imx500_sam.preprocessor``); every other byte of the entry and of the file kept.

    Only keys already in network_info.txt are changed (BadInputError otherwise): the sensor's loader and picamera2
    read a fixed set of keys.
    """
    info = rpk.entry(NETWORK_INFO)
    if info is None:
        raise BadInputError("the .rpk has no network_info.txt.", hint="Package it with imx500-package.")
    text = info.data
    for key, value in values.items():
        pattern = re.compile(rb"^(" + re.escape(key.encode()) + rb"=)[^\r\n]*", re.MULTILINE)
        if not pattern.search(text):
            raise BadInputError(f"network_info.txt has no {key}.", hint="Package the network with imx500-package.")
        text = pattern.sub(lambda m, v=value: m.group(1) + v.encode(), text, count=1)
    return _assemble(rpk, [_newc_entry(e.name, e.fields, text) if e is info else e.raw for e in rpk.entries])


def merge_intrinsics(current: dict[str, Any] | None, updates: dict[str, Any]) -> dict[str, Any]:
    """``current`` with ``updates`` applied (nested dicts merged one level deep, like picamera2's setters)."""
    merged = dict(current or {})
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def write_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode())  # an ordinary file's mode (0644 under umask 022), not mkstemp's 0600
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def set_intrinsics_file(
    src: str | os.PathLike[str], intrinsics: dict[str, Any], out: str | os.PathLike[str] | None = None
) -> Path:
    """Write ``src`` with new intrinsics to ``out`` (``src`` itself when ``out`` is None); returns the path."""
    rpk = read_rpk(src)
    data = with_intrinsics(rpk, intrinsics)
    dest = Path(out) if out is not None else Path(src)
    if dest.is_dir():
        raise BadInputError(f"{dest} is a directory.", hint="Give the output file name, e.g. -o network.rpk.")
    if not dest.parent.is_dir():
        raise BadInputError(f"output directory {dest.parent} does not exist.", hint="Create it or choose another -o.")
    return write_atomic(dest, data)
