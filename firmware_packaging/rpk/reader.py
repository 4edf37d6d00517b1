"""The parsed .rpk (:class:`Rpk`) and its readers, :func:`read_rpk` and :func:`parse_rpk`."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware_packaging.rpk.blocks import Block, parse_blocks
from firmware_packaging.rpk.cpio import CpioEntry, parse_cpio
from firmware_packaging.rpk.intrinsics import intrinsics_problem
from firmware_packaging.rpk.layout import MAX_RPK_BYTES, NETWORK_INFO, NETWORK_INTRINSICS, RpkFormatError
from firmware_packaging.rpk.network_info import parse_network_info
from imx500_sam.errors import BadInputError


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
    blocks = parse_blocks(data)
    cpio_offset = blocks[-1].offset + blocks[-1].length
    entries, trailer, warnings = parse_cpio(data, cpio_offset)
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
