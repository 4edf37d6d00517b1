"""Rewriting an .rpk: new ``network_intrinsics`` or ``network_info.txt`` values, firmware kept byte for byte."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from firmware_packaging.rpk.cpio import newc_entry
from firmware_packaging.rpk.intrinsics import encode_intrinsics, validate_intrinsics
from firmware_packaging.rpk.layout import (
    CPIO_HEADER_LEN,
    CPIO_PAD_BLOCK,
    CPIO_TRAILER,
    NETWORK_INFO,
    NETWORK_INTRINSICS,
)
from firmware_packaging.rpk.reader import Rpk, parse_rpk, read_rpk
from imx500_sam.errors import BadInputError
from imx500_sam.outputs import file_mode


def trailer_bytes(rpk: Rpk) -> bytes:
    """The original trailer when all of it lies in the file, else a plain one."""
    t = rpk.trailer
    if len(t.raw) == CPIO_HEADER_LEN + 12 + t.fields[6] + (-t.fields[6] & 3):
        return t.raw
    return newc_entry(CPIO_TRAILER, (0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0), b"")


def _assemble(rpk: Rpk, members: list[bytes]) -> bytes:
    """``rpk``'s firmware blocks, then ``members`` and its trailer, zero-padded to a multiple of 512 bytes counted
    from the archive's own start; checked by reading it back (never hand back something we cannot read)."""
    archive = b"".join([*members, trailer_bytes(rpk)])
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
            members.append(newc_entry(e.name, e.fields, payload))
            replaced = True
    if not replaced:
        info = rpk.entry(NETWORK_INFO)
        uid, gid = (info.fields[2], info.fields[3]) if info else (0, 0)
        ino = max((e.fields[0] for e in rpk.entries), default=-1) + 1
        fields = (ino & 0xFFFFFFFF, 0o100644, uid, gid, 1, 0, 0, 0, 0, 0, 0, 0, 0)
        members.append(newc_entry(NETWORK_INTRINSICS, fields, payload))
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
    return _assemble(rpk, [newc_entry(e.name, e.fields, text) if e is info else e.raw for e in rpk.entries])


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
