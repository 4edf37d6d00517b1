"""Read, validate and rewrite IMX500 network firmware files (``.rpk``).

Layout (checked against Raspberry Pi's imx500-models files and picamera2 0.3.38
``IMX500.__ni_from_network``):

- firmware blocks, one after another: 4-byte magic ``b'9464'``, big-endian u32 ``size``, 8 flag bytes
  (``flags[6]`` bit 0 = device lock), payload, footer ``b'3695'`` at ``size + 60`` from the block start.
  The next block starts at ``size + 64`` (``+ 32`` more when the device-lock bit is set);
- then a CPIO archive (newc, ``070701``) with ``imx500_regs``, ``network_info.txt`` (``key=value`` lines, CRLF)
  and an optional ``network_intrinsics`` (JSON), ended by ``TRAILER!!!`` and zero padding.

Every malformed input raises :class:`RpkFormatError` (a :class:`BadInputError`, exit 2) with the byte offset.
Light module: standard library (+ ``jsonschema`` for intrinsics); runs on a Pi.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imx500_sam.errors import BadInputError

BLOCK_MAGIC = b"9464"
BLOCK_FOOTER = b"3695"
BLOCK_OVERHEAD = 64  # header (16) + footer-to-next-block (the footer sits at size + 60)
DEVICE_LOCK_EXTRA = 32
DEVICE_LOCK_FLAG_INDEX = 6
CPIO_MAGIC = b"070701"
CPIO_HEADER_LEN = 110
CPIO_TRAILER = "TRAILER!!!"
CPIO_PAD_BLOCK = 512  # the archive is zero-padded to a multiple of 512 bytes (as in the real files)
NETWORK_INFO = "network_info.txt"
NETWORK_INTRINSICS = "network_intrinsics"
IMX500_REGS = "imx500_regs"
MAX_RPK_BYTES = 256 * 1024 * 1024  # far above any IMX500 network (8 MiB SRAM); refuses to slurp huge files
MAX_ENTRY_NAME = 255
_NORM_KEYS = tuple(f"inputTensorNorm_K{k}" for k in ("00", "02", "03", "11", "13", "20", "22", "23"))
_NAME_OK = re.compile(r"^[A-Za-z0-9._+-]+$")


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
    """A newc CPIO member; ``raw`` is its exact bytes (header, name, padding, data, padding)."""

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
    """A parsed .rpk: the exact bytes, firmware blocks and CPIO entries (trailer excluded)."""

    data: bytes
    blocks: list[Block]
    cpio_offset: int
    entries: list[CpioEntry]
    trailer: CpioEntry
    network_info: dict[str, Any] = field(default_factory=dict)
    intrinsics: dict[str, Any] | None = None

    @property
    def firmware(self) -> bytes:
        """The firmware blocks, byte for byte (everything before the CPIO archive)."""
        return self.data[: self.cpio_offset]

    def entry(self, name: str) -> CpioEntry | None:
        return next((e for e in self.entries if e.name == name), None)

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
        """Element count of each output tensor of network 0 (``outputTensorDimSizeN``), when listed."""
        net = self.network_info["networks"][0]
        count = int(net.get("outputTensorNum", "0"))
        return [int(net[f"outputTensorDimSize{i}"]) for i in range(1, count + 1) if f"outputTensorDimSize{i}" in net]

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
        }


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
    entries, trailer = _parse_cpio(data, cpio_offset)
    rpk = Rpk(data=data, blocks=blocks, cpio_offset=cpio_offset, entries=entries, trailer=trailer)
    info = rpk.entry(NETWORK_INFO)
    if info is None:
        raise RpkFormatError(f"the CPIO archive has no {NETWORK_INFO}", offset=cpio_offset)
    rpk.network_info = parse_network_info(info.data, offset=info.offset)
    intr = rpk.entry(NETWORK_INTRINSICS)
    if intr is not None:
        try:
            value = json.loads(intr.data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise RpkFormatError(
                f"{NETWORK_INTRINSICS} is not JSON ({type(exc).__name__})", offset=intr.offset
            ) from None
        problem = intrinsics_problem(value)
        if problem:
            raise RpkFormatError(f"{NETWORK_INTRINSICS} fails picamera2's schema: {problem}", offset=intr.offset)
        rpk.intrinsics = value
    return rpk


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


def _hex_fields(header: bytes, off: int) -> tuple[int, ...]:
    values = []
    for i in range(13):
        chunk = header[6 + 8 * i : 14 + 8 * i]
        if not re.fullmatch(rb"[0-9A-Fa-f]{8}", chunk):
            raise RpkFormatError(f"CPIO header field {i} is not 8 hex digits ({chunk!r})", offset=off + 6 + 8 * i)
        values.append(int(chunk, 16))
    return tuple(values)


def _align4(n: int) -> int:
    return (n + 3) & ~3


def _parse_cpio(data: bytes, start: int) -> tuple[list[CpioEntry], CpioEntry]:
    entries: list[CpioEntry] = []
    names: set[str] = set()
    off = start
    while True:
        header = data[off : off + CPIO_HEADER_LEN]
        if len(header) < CPIO_HEADER_LEN:
            raise RpkFormatError("CPIO archive is truncated (no TRAILER!!! entry)", offset=off)
        if header[:6] != CPIO_MAGIC:
            raise RpkFormatError(f"expected CPIO newc magic {CPIO_MAGIC!r}, found {header[:6]!r}", offset=off)
        fields = _hex_fields(header, off)
        filesize, namesize = fields[6], fields[11]
        if namesize < 2 or namesize > MAX_ENTRY_NAME + 1:
            raise RpkFormatError(f"CPIO entry name length {namesize} is out of range", offset=off + 94)
        name_end = off + CPIO_HEADER_LEN + namesize
        if name_end > len(data):
            raise RpkFormatError("CPIO entry name runs past the end of the file", offset=off + CPIO_HEADER_LEN)
        raw_name = data[off + CPIO_HEADER_LEN : name_end]
        if raw_name[-1:] != b"\0":
            raise RpkFormatError("CPIO entry name is not NUL-terminated", offset=name_end - 1)
        try:
            name = raw_name[:-1].decode("ascii")
        except UnicodeDecodeError:
            raise RpkFormatError("CPIO entry name is not ASCII", offset=off + CPIO_HEADER_LEN) from None
        data_start = _align4(name_end)
        data_end = data_start + filesize
        if data_end > len(data):
            raise RpkFormatError(
                f"CPIO entry {name!r} declares {filesize} bytes but the file ends at {len(data)}", offset=off + 54
            )
        entry_end = _align4(data_end)
        raw = data[off:entry_end]
        entry = CpioEntry(name=name, offset=off, fields=fields, data=data[data_start:data_end], raw=raw)
        if name == CPIO_TRAILER:
            tail = data[entry_end:]
            if tail.strip(b"\0"):
                bad = entry_end + len(tail) - len(tail.lstrip(b"\0"))
                raise RpkFormatError("unexpected data after the CPIO trailer", offset=bad)
            return entries, entry
        if not _NAME_OK.fullmatch(name) or name in (".", ".."):
            raise RpkFormatError(f"unsafe CPIO entry name {name!r} (only plain file names are allowed)", offset=off)
        if fields[1] & 0o170000 != 0o100000:
            raise RpkFormatError(f"CPIO entry {name!r} is not a regular file (mode {fields[1]:o})", offset=off + 14)
        if name in names:
            raise RpkFormatError(f"duplicate CPIO entry {name!r}", offset=off)
        names.add(name)
        entries.append(entry)
        off = entry_end


def parse_network_info(raw: bytes, *, offset: int = 0) -> dict[str, Any]:
    """Parse network_info.txt like picamera2 does: global keys, then one dict per ``networkOrdinal``."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise RpkFormatError(f"{NETWORK_INFO} is not ASCII", offset=offset + exc.start) from None
    top: dict[str, Any] = {}
    networks: dict[int, dict[str, str]] = {}
    current: dict[str, str] | None = None
    # Lines end at "\n" only and every line must be exactly key=value, as picamera2 reads them.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        line = line.strip()
        parts = line.split("=")
        if len(parts) != 2 or not parts[0]:
            raise RpkFormatError(f"{NETWORK_INFO} line {line[:40]!r} is not key=value", offset=offset)
        key, value = parts
        if "networkOrdinal" in key and key != "networkOrdinal":
            raise RpkFormatError(f"{NETWORK_INFO}: malformed key {key[:40]!r}", offset=offset)
        if key == "networkOrdinal":
            if not value.isdigit():
                raise RpkFormatError(f"{NETWORK_INFO}: networkOrdinal {value!r} is not a number", offset=offset)
            current = networks.setdefault(int(value), {})
        elif current is not None:
            current[key] = value
        else:
            top[key] = value
    try:
        count = int(top.get("networkNum", "-1"))
    except ValueError:
        count = -1
    if count < 1 or len(networks) != count or 0 not in networks:
        raise RpkFormatError(
            f"{NETWORK_INFO}: networkNum={top.get('networkNum')!r} but {len(networks)} networkOrdinal sections",
            offset=offset,
        )
    net0 = networks[0]
    for key in ("inputTensorWidth", "inputTensorHeight"):
        if not net0.get(key, "").isdigit() or int(net0[key]) == 0:
            raise RpkFormatError(f"{NETWORK_INFO}: {key}={net0.get(key)!r} is not a positive integer", offset=offset)
    if not net0.get("inputTensorFormat"):
        raise RpkFormatError(f"{NETWORK_INFO}: inputTensorFormat is missing", offset=offset)
    if net0["inputTensorFormat"] in ("RGB", "BGR"):  # picamera2 reads these normalisation keys for RGB/BGR
        for key in _NORM_KEYS:
            try:
                int(net0.get(key, ""), 0)
            except ValueError:
                bad = net0.get(key)
                raise RpkFormatError(f"{NETWORK_INFO}: {key}={bad!r} is not an integer", offset=offset) from None
    for key in ("apParamSize", "networkNum"):
        if key in top and not top[key].isdigit():
            raise RpkFormatError(f"{NETWORK_INFO}: {key}={top[key]!r} is not a number", offset=offset)
    for key, value in net0.items():
        if key.startswith("outputTensor") and key != "outputTensorNum" and not value.isdigit():
            raise RpkFormatError(f"{NETWORK_INFO}: {key}={value!r} is not a number", offset=offset)
    if not net0.get("outputTensorNum", "0").isdigit():
        raise RpkFormatError(f"{NETWORK_INFO}: outputTensorNum is not a number", offset=offset)
    return {**top, "networks": [networks[i] for i in sorted(networks)]}


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


def intrinsics_problem(value: Any) -> str | None:
    """None when ``value`` passes picamera2's intrinsics schema, else a one-line reason."""
    import jsonschema

    try:
        # Draft 7, as the schema's $schema says (picamera2 lets jsonschema guess from an unlisted URL).
        jsonschema.Draft7Validator(INTRINSICS_SCHEMA).validate(value)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        return f"{where}: {exc.message}"
    except (RecursionError, TypeError, ValueError) as exc:  # absurdly nested or non-JSON values
        return f"invalid value ({type(exc).__name__})"
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
    name_b = name.encode("ascii") + b"\0"
    f = list(fields)
    f[6] = len(payload)
    f[11] = len(name_b)
    head = _newc_header(tuple(f)) + name_b
    head += b"\0" * (_align4(len(head)) - len(head))
    body = payload + b"\0" * (_align4(len(payload)) - len(payload))
    return head + body


def with_intrinsics(rpk: Rpk, intrinsics: dict[str, Any]) -> bytes:
    """The .rpk bytes with ``network_intrinsics`` set to ``intrinsics``; every other byte and entry kept.

    An existing entry is replaced in place (its header fields kept, size updated); otherwise a new entry is
    added before the trailer, with mode 0644 and the owner of network_info.txt. The archive is re-padded with
    zeros to a multiple of 512 bytes.
    """
    validate_intrinsics(intrinsics)
    payload = encode_intrinsics(intrinsics)
    parts = [rpk.firmware]
    replaced = False
    for e in rpk.entries:
        if e.name == NETWORK_INTRINSICS:
            parts.append(_newc_entry(e.name, e.fields, payload))
            replaced = True
        else:
            parts.append(e.raw)
    if not replaced:
        info = rpk.entry(NETWORK_INFO)
        uid, gid = (info.fields[2], info.fields[3]) if info else (0, 0)
        ino = max((e.fields[0] for e in rpk.entries), default=-1) + 1
        fields = (ino, 0o100644, uid, gid, 1, 0, 0, 0, 0, 0, 0, 0, 0)
        parts.append(_newc_entry(NETWORK_INTRINSICS, fields, payload))
    parts.append(rpk.trailer.raw)
    archive_len = sum(len(p) for p in parts[1:])
    parts.append(b"\0" * (-archive_len % CPIO_PAD_BLOCK))
    out = b"".join(parts)
    parse_rpk(out)  # never hand back something we cannot read ourselves
    return out


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
        os.chmod(tmp, 0o644)
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
