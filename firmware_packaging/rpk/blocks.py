"""Firmware blocks: the ``9464`` ... ``3695`` records in front of the CPIO archive."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from firmware_packaging.rpk.layout import (
    BLOCK_FOOTER,
    BLOCK_MAGIC,
    BLOCK_OVERHEAD,
    DEVICE_LOCK_EXTRA,
    DEVICE_LOCK_FLAG_INDEX,
    RpkFormatError,
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


def parse_blocks(data: bytes) -> list[Block]:
    """The firmware blocks from the start of ``data``, one after another (at least one)."""
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
