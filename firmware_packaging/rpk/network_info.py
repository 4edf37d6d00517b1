"""``network_info.txt``: parsed and checked as picamera2 reads it."""

from __future__ import annotations

import io
from typing import Any

from firmware_packaging.rpk.layout import NETWORK_INFO, RpkFormatError

_NORM_KEYS = tuple(f"inputTensorNorm_K{k}" for k in ("00", "02", "03", "11", "13", "20", "22", "23"))


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
