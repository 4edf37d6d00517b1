"""Structure-aware mutations of real .rpk files (hypothesis strategies), shared by the fuzz test and benchmark.

Mutations are biased toward the bytes a parser reads: block headers and footers, the CPIO headers and the
network_info / network_intrinsics payloads, plus plain random flips, truncations, insertions and deletions.
"""

from __future__ import annotations

from hypothesis import strategies as st

from firmware_packaging import rpk as R


def hot_offsets(rpk: R.Rpk) -> list[tuple[int, int]]:
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
def position(draw: st.DrawFn, rpk: R.Rpk, n: int) -> int:
    """A byte offset, usually inside a hot span of ``rpk`` (clamped to the current length ``n``)."""
    if n == 0:
        return 0
    if draw(st.integers(0, 9)) == 0:
        return draw(st.integers(0, n - 1))
    a, b = draw(st.sampled_from(hot_offsets(rpk)))
    return min(draw(st.integers(a, b - 1)), n - 1)


_U32 = st.sampled_from([0, 1, 3, 44, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFC0, 1048512]) | st.integers(0, 2**32 - 1)
_HEX8 = st.sampled_from([b"00000000", b"FFFFFFFF", b"7FFFFFFF", b"-0000001", b"0x000010", b"  12    "]) | st.binary(
    min_size=8, max_size=8
)
_TEXT = st.sampled_from(
    [b"=", b"\r\n", b"networkOrdinal=", b"networkNum=", b"inputTensorWidth=", b"\xff", b"{", b"}", b'"task":', b"\0"]
) | st.binary(min_size=1, max_size=12)


@st.composite
def mutated(draw: st.DrawFn, bases: dict[str, R.Rpk]) -> bytes:
    """One mutant: a real rpk with 1-4 structure-aware mutations."""
    rpk = bases[draw(st.sampled_from(sorted(bases)))]
    data = bytearray(rpk.data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "u32", "hex", "text", "truncate", "insert", "delete", "lockbit"]))
        pos = draw(position(rpk, len(data)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "u32":
            data[pos : pos + 4] = draw(_U32).to_bytes(4, "big")
        elif op == "hex":
            data[pos : pos + 8] = draw(_HEX8)
        elif op == "text":
            chunk = draw(_TEXT)
            data[pos : pos + len(chunk)] = chunk
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "lockbit" and rpk.blocks:
            b = draw(st.sampled_from(rpk.blocks))
            if b.offset + 14 < len(data):
                data[b.offset + 14] ^= 0x01
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
