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
Light package: standard library (+ ``jsonschema`` for intrinsics); runs on a Pi. One idea a module:
:mod:`.layout` (the byte layout and its error), :mod:`.blocks` (firmware blocks), :mod:`.cpio` (newc members, read
as libarchive reads them and written), :mod:`.network_info`, :mod:`.intrinsics` (picamera2's schema),
:mod:`.reader` (:class:`Rpk`, :func:`read_rpk`) and :mod:`.writer` (rewriting entries, atomic writes).
"""

from firmware_packaging.rpk.blocks import Block
from firmware_packaging.rpk.cpio import CpioEntry
from firmware_packaging.rpk.intrinsics import (
    INTRINSICS_SCHEMA,
    encode_intrinsics,
    intrinsics_problem,
    merge_intrinsics,
    validate_intrinsics,
)
from firmware_packaging.rpk.layout import (
    BLOCK_FOOTER,
    BLOCK_MAGIC,
    BLOCK_OVERHEAD,
    CPIO_HEADER_LEN,
    CPIO_MAGIC,
    CPIO_MAGICS,
    CPIO_PAD_BLOCK,
    CPIO_TRAILER,
    DEVICE_LOCK_EXTRA,
    DEVICE_LOCK_FLAG_INDEX,
    MAX_RPK_BYTES,
    MAX_SYMLINK_BYTES,
    NETWORK_INFO,
    NETWORK_INTRINSICS,
    RpkFormatError,
)
from firmware_packaging.rpk.network_info import parse_network_info
from firmware_packaging.rpk.reader import Rpk, parse_rpk, read_rpk
from firmware_packaging.rpk.writer import set_intrinsics_file, with_intrinsics, with_network_info, write_atomic

__all__ = [
    "BLOCK_FOOTER",
    "BLOCK_MAGIC",
    "BLOCK_OVERHEAD",
    "CPIO_HEADER_LEN",
    "CPIO_MAGIC",
    "CPIO_MAGICS",
    "CPIO_PAD_BLOCK",
    "CPIO_TRAILER",
    "DEVICE_LOCK_EXTRA",
    "DEVICE_LOCK_FLAG_INDEX",
    "INTRINSICS_SCHEMA",
    "MAX_RPK_BYTES",
    "MAX_SYMLINK_BYTES",
    "NETWORK_INFO",
    "NETWORK_INTRINSICS",
    "Block",
    "CpioEntry",
    "Rpk",
    "RpkFormatError",
    "encode_intrinsics",
    "intrinsics_problem",
    "merge_intrinsics",
    "parse_network_info",
    "parse_rpk",
    "read_rpk",
    "set_intrinsics_file",
    "validate_intrinsics",
    "with_intrinsics",
    "with_network_info",
    "write_atomic",
]
