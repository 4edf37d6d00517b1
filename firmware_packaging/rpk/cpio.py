"""newc CPIO members: read step by step as libarchive 3.6 reads them, and written the same way."""

from __future__ import annotations

import re
from dataclasses import dataclass

from firmware_packaging.rpk.layout import (
    CPIO_HEADER_LEN,
    CPIO_MAGIC,
    CPIO_MAGICS,
    CPIO_TRAILER,
    MAX_SYMLINK_BYTES,
    RpkFormatError,
)

_NEWC_HEADER = re.compile(rb"07070[12][0-9A-Fa-f]{104}")  # libarchive: magic 07070[12], all 110 bytes hex


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


def parse_cpio(data: bytes, start: int) -> tuple[list[CpioEntry], CpioEntry, list[str]]:
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


def newc_header(fields: tuple[int, ...]) -> bytes:
    """A newc header (magic and the 13 fields in hex), without the name."""
    return CPIO_MAGIC + b"".join(b"%08X" % v for v in fields)


def newc_entry(name: str, fields: tuple[int, ...], payload: bytes) -> bytes:
    """One newc member; padding counted from its header (the archive is laid out from its own start)."""
    name_b = name.encode("utf-8") + b"\0"
    f = list(fields)
    f[6] = len(payload)
    f[11] = len(name_b)
    head = newc_header(tuple(f)) + name_b + b"\0" * ((2 - len(name_b)) & 3)
    return head + payload + b"\0" * (-len(payload) & 3)
