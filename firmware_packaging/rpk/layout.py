"""The .rpk byte layout (see the package docstring) and RpkFormatError, raised for every refused input."""

from __future__ import annotations

import os

from imx500_sam.errors import BadInputError

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
