"""The IMX500 operator table (data: imx500_sam/facts/operators.json) and its lookups (no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from imx500_sam.facts import operator_table

STATUSES = ("supported", "unsupported", "conditional")
KINDS = ("conv", "linear", "norm", "act", "eltwise", "alias", "pool", "resize", "concat", "reduce", "const", "other")


@dataclass(frozen=True)
class OpEntry:
    """One operator family of the table."""

    op: str
    kind: str
    status: str
    torch: tuple[str, ...]
    onnx: tuple[str, ...]
    source: str
    replacement: str | None
    condition: str | None


@dataclass(frozen=True)
class OperatorTable:
    """Lookup by torch key (``nn.Conv2d``, ``F.relu``, ``torch.cat``, ``Tensor.view``, ``operator.add``) or ONNX op."""

    entries: tuple[OpEntry, ...]
    sources: dict[str, str]
    conditions: dict[str, str]
    by_torch: dict[str, OpEntry]
    by_onnx: dict[str, OpEntry]

    def torch(self, key: str) -> OpEntry | None:
        """Entry for a torch key, or None (unknown)."""
        return self.by_torch.get(key)

    def onnx(self, op_type: str) -> OpEntry | None:
        """Entry for an ONNX op type, or None (unknown)."""
        return self.by_onnx.get(op_type)


@cache
def load_table() -> OperatorTable:
    """Parse and validate operators.json (ValueError on a malformed entry or a key listed twice)."""
    data = operator_table()
    entries = []
    by_torch: dict[str, OpEntry] = {}
    by_onnx: dict[str, OpEntry] = {}
    conditions = dict(data.get("conditions", {}))
    for raw in data["operators"]:
        entry = OpEntry(
            op=raw["op"],
            kind=raw["kind"],
            status=raw["status"],
            torch=tuple(raw.get("torch", ())),
            onnx=tuple(raw.get("onnx", ())),
            source=raw["source"],
            replacement=raw.get("replacement"),
            condition=raw.get("condition"),
        )
        if entry.status not in STATUSES or entry.kind not in KINDS or not entry.source:
            raise ValueError(f"operators.json: bad entry {entry.op!r}")
        if entry.status == "conditional" and entry.condition not in conditions:
            raise ValueError(f"operators.json: {entry.op!r} names an undefined condition {entry.condition!r}")
        if entry.status == "unsupported" and not entry.replacement:
            raise ValueError(f"operators.json: unsupported {entry.op!r} has no replacement")
        for key, index in [(k, by_torch) for k in entry.torch] + [(k, by_onnx) for k in entry.onnx]:
            if key in index:
                raise ValueError(f"operators.json: {key!r} is listed by both {index[key].op!r} and {entry.op!r}")
            index[key] = entry
        entries.append(entry)
    return OperatorTable(
        entries=tuple(entries),
        sources=dict(data.get("sources", {})),
        conditions=conditions,
        by_torch=by_torch,
        by_onnx=by_onnx,
    )
