"""Typed results of the operator and SRAM gate (no torch here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from imx500_sam.errors import BadInputError, ExitCode, OverBudgetError, UnsupportedOperatorError
from imx500_sam.facts import SRAM_AVAILABLE_BYTES


@dataclass(frozen=True)
class SourceLoc:
    """Where the user's code created an operation."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Finding:
    """One operation the IMX500 cannot run (or the gate cannot vouch for)."""

    status: str  # "unsupported" | "unknown" | "untraceable" | "input"
    op: str  # table key as traced, e.g. "nn.LSTM", "torch.cumsum", "onnx:CumSum"
    module_path: str  # nn.Module path ("" = the model's own forward)
    source: SourceLoc | None
    reason: str
    replacement: str | None = None
    table_source: str | None = None

    def message(self) -> str:
        """One line: what, where, why, what to use instead."""
        where = f"module '{self.module_path}'" if self.module_path else "the model's forward"
        loc = f" ({self.source})" if self.source else ""
        fix = f" Use instead: {self.replacement}." if self.replacement else ""
        return f"{self.op} in {where}{loc}: {self.reason}.{fix}"


@dataclass(frozen=True)
class MemoryEstimate:
    """The gate's SRAM estimate in bytes (no tools run)."""

    weights_bytes: int
    activations_bytes: int  # peak live activations under the schedule
    input_persistence_bytes: int
    reserved_bytes: int
    peak_op: str  # the operation at which activations peak
    peak_module_path: str
    available_bytes: int

    @property
    def runtime_bytes(self) -> int:
        """What the converter calls 'Runtime Memory' (activations + the persistent input)."""
        return self.activations_bytes + self.input_persistence_bytes

    @property
    def total_bytes(self) -> int:
        """Comparable with the converter's 'Memory Usage'."""
        return self.weights_bytes + self.runtime_bytes + self.reserved_bytes

    @property
    def fits(self) -> bool:
        """True when the estimate is within the on-chip budget."""
        return self.total_bytes <= self.available_bytes

    @property
    def utilization(self) -> float:
        """Estimate as a fraction of the available SRAM."""
        return self.total_bytes / self.available_bytes


@dataclass(frozen=True)
class ConverterMemory:
    """The exact figures from ``imxconv-pt --memory-report`` (``--full``)."""

    usage_bytes: int
    runtime_bytes: int
    weights_bytes: int
    fit_in_chip: bool
    report_path: Path
    seconds: float


@dataclass
class GateReport:
    """Everything ``imx500-sam check`` found about one model."""

    model: str
    input_size: tuple[int, int]
    op_count: int
    findings: list[Finding] = field(default_factory=list)
    memory: MemoryEstimate | None = None
    converter: ConverterMemory | None = None
    seconds: float = 0.0
    file: str | None = None  # the model file (annotations without a source line point here)

    @property
    def unsupported(self) -> list[Finding]:
        """Findings that stop conversion (unsupported, unknown, untraceable)."""
        return [f for f in self.findings if f.status != "input"]

    @property
    def input_errors(self) -> list[Finding]:
        """Input-limit violations (size, channels, layout)."""
        return [f for f in self.findings if f.status == "input"]

    @property
    def over_budget(self) -> bool:
        """True when the model does not fit (the converter's exact figure wins when known)."""
        if self.converter is not None:
            return not self.converter.fit_in_chip
        return self.memory is not None and not self.memory.fits

    @property
    def exit_code(self) -> ExitCode:
        """0 pass, 2 bad input, 3 unsupported operator, 4 over budget (first that applies)."""
        if self.input_errors:
            return ExitCode.BAD_INPUT
        if self.unsupported:
            return ExitCode.UNSUPPORTED_OPERATOR
        if self.over_budget:
            return ExitCode.OVER_BUDGET
        return ExitCode.OK

    @property
    def passed(self) -> bool:
        """True when the gate lets the model through."""
        return self.exit_code == ExitCode.OK

    def raise_for_verdict(self) -> None:
        """Raise BadInputError / UnsupportedOperatorError / OverBudgetError when the gate fails."""
        if self.input_errors:
            raise BadInputError(self.input_errors[0].message())
        if self.unsupported:
            first = self.unsupported[0]
            more = (
                f" (and {len(self.unsupported) - 1} more: run `imx500-sam check` for the list)"
                if len(self.unsupported) > 1
                else ""
            )
            raise UnsupportedOperatorError(f"{self.model}: IMX500 cannot run {first.message()}{more}")
        if self.over_budget:
            raise OverBudgetError(self.budget_line(), hint=self.budget_hint())

    def budget_line(self) -> str:
        """One line: the SRAM figure against the budget."""
        m = self.memory
        if self.converter is not None:
            c = self.converter
            avail = m.available_bytes if m else SRAM_AVAILABLE_BYTES
            share = c.usage_bytes / avail
            return f"{self.model}: needs {c.usage_bytes:,} B of IMX500 SRAM (imxconv-pt), {share:.0%} of {avail:,} B."
        assert m is not None
        return (
            f"{self.model}: needs about {m.total_bytes:,} B of IMX500 SRAM at "
            f"{self.input_size[0]}x{self.input_size[1]} "
            f"({m.utilization:.0%} of {m.available_bytes:,} B): weights {m.weights_bytes:,} B, peak activations "
            f"{m.activations_bytes:,} B at '{m.peak_module_path or m.peak_op}'."
        )

    def budget_hint(self) -> str:
        """What to do when over budget."""
        m = self.memory
        if m is not None and m.weights_bytes > m.available_bytes // 2:
            return "Reduce the channel widths (weights dominate), or prune the largest layers."
        return "Use a smaller input size, or fewer channels / an earlier downsample at full resolution."

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the `--format json` output)."""
        mem = None
        if self.memory is not None:
            mem = asdict(self.memory) | {
                "runtime_bytes": self.memory.runtime_bytes,
                "total_bytes": self.memory.total_bytes,
                "fits": self.memory.fits,
                "utilization": round(self.memory.utilization, 4),
            }
        conv = None
        if self.converter is not None:
            conv = asdict(self.converter) | {"report_path": str(self.converter.report_path)}
            if self.memory is not None:
                conv["estimate_error"] = round(self.memory.total_bytes / self.converter.usage_bytes - 1, 4)
        return {
            "model": self.model,
            "input_size": list(self.input_size),
            "verdict": self.exit_code.name.lower(),
            "exit_code": int(self.exit_code),
            "op_count": self.op_count,
            "findings": [
                asdict(f) | {"source": str(f.source) if f.source else None, "message": f.message()}
                for f in self.findings
            ],
            "memory_estimate": mem,
            "converter_memory": conv,
            "seconds": round(self.seconds, 3),
            "file": self.file,
        }
