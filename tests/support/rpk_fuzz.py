"""Structure-aware mutations of real .rpk files (hypothesis strategies), shared by the fuzz test and benchmark.

Mutations are biased toward the bytes a parser reads: block headers and footers, the CPIO headers and the
network_info / network_intrinsics payloads, plus plain random flips, truncations, insertions and deletions.
The strategy draws a small *plan* (base file + operations); ``apply_plan`` builds the mutant bytes. Hypothesis
keeps every drawn value around, so drawing multi-megabyte mutants directly would cost gigabytes of memory.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from firmware_packaging import rpk as R

Plan = tuple[str, tuple[tuple[Any, ...], ...]]
OPS = ("flip", "u32", "hex", "text", "truncate", "insert", "delete", "lockbit")


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


@st.composite
def _position(draw: st.DrawFn, rpk: R.Rpk) -> int:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.integers(0, len(rpk.data) - 1))
    a, b = draw(st.sampled_from(hot_spans(rpk)))
    return draw(st.integers(a, b - 1))


_U32 = st.sampled_from([0, 1, 3, 44, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFC0, 1048512]) | st.integers(0, 2**32 - 1)
_HEX8 = st.sampled_from([b"00000000", b"FFFFFFFF", b"7FFFFFFF", b"-0000001", b"0x000010", b"  12    "]) | st.binary(
    min_size=8, max_size=8
)
_TEXT = st.sampled_from(
    [b"=", b"\r\n", b"networkOrdinal=", b"networkNum=", b"inputTensorWidth=", b"\xff", b"{", b"}", b'"task":', b"\0"]
) | st.binary(min_size=1, max_size=12)


@st.composite
def mutation_plans(draw: st.DrawFn, bases: dict[str, R.Rpk]) -> Plan:
    """A base file name and 1-4 mutations (op, position, argument)."""
    name = draw(st.sampled_from(sorted(bases)))
    rpk = bases[name]
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(OPS))
        pos = draw(_position(rpk))
        arg: Any = None
        if op == "flip":
            arg = draw(st.integers(0, 7))
        elif op == "u32":
            arg = draw(_U32)
        elif op == "hex":
            arg = draw(_HEX8)
        elif op == "text":
            arg = draw(_TEXT)
        elif op == "insert":
            arg = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            arg = draw(st.integers(1, 64))
        elif op == "lockbit":
            arg = draw(st.integers(0, len(rpk.blocks) - 1))
        ops.append((op, pos, arg))
    return name, tuple(ops)


def apply_plan(bases: dict[str, R.Rpk], plan: Plan) -> bytes:
    """The mutant bytes for ``plan`` (positions are clamped to the current length)."""
    name, ops = plan
    rpk = bases[name]
    data = bytearray(rpk.data)
    for op, pos, arg in ops:
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
