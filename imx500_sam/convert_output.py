"""The layout of an ``imx500-sam convert`` output directory and the readers of its files.

Shared by the host converter (which writes the directory) and the device side (the emulator, eval, the Pi
runtime), which read it. Light module: standard library only; no torch, no MCT, nothing from ``converter``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imx500_sam.errors import BadInputError

# File names inside a convert output directory.
PACKER_OUT = "packerOut.zip"
MCTQ_ONNX = "model_mctq.onnx"  # MCT's MCTQ export: what imxconv-pt takes
QDQ_ONNX = "model_int8_qdq.onnx"  # the host network: standard QDQ ONNX derived from the MCTQ file (converter.mctq)
DNN_PARAMS = "dnnParams.xml"
MEMORY_REPORT_GLOB = "*_MemoryReport.json"
INTRINSICS_JSON = "network_intrinsics.json"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
RPK = "network.rpk"
CONVERTER_LOG = "imxconv-pt.log"

_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def parse_size(text: str | int | float) -> int:
    """'2403424B' / '1.01MB' / '1.00KB' -> bytes (binary units, as imxconv-pt prints them)."""
    if isinstance(text, (int, float)):
        return int(text)
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMG]?B)\s*", str(text), flags=re.IGNORECASE)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    return int(round(float(m.group(1)) * _UNITS[m.group(2).upper()]))


@dataclass(frozen=True)
class MemoryReport:
    """imxconv-pt's ``<name>_MemoryReport.json``, sizes in bytes."""

    path: Path
    name: str
    fit_in_chip: bool
    usage_bytes: int
    available_bytes: int
    weights_bytes: int
    runtime_bytes: int
    reserved_bytes: int
    input_persistent: bool

    @property
    def utilization(self) -> float:
        """Usage as a fraction of the memory available on chip."""
        return self.usage_bytes / self.available_bytes

    @classmethod
    def from_json(cls, path: Path) -> MemoryReport:
        """Parse a MemoryReport.json written by imxconv-pt (any size unit)."""
        try:
            data: dict[str, Any] = json.loads(Path(path).read_text())["Memory Report"]
            return cls(
                path=Path(path),
                name=str(data.get("Name", "")),
                fit_in_chip=bool(data["Fit In Chip"]),
                usage_bytes=parse_size(data["Memory Usage"]),
                available_bytes=parse_size(data["Total Memory Available On Chip"]),
                weights_bytes=parse_size(data["Model Memory Physical Size"]),
                runtime_bytes=parse_size(data["Runtime Memory Physical Size"]),
                reserved_bytes=parse_size(data.get("Reserved Memory", "0B")),
                input_persistent=bool(data.get("Input Persistent", True)),
            )
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise BadInputError(f"{path}: not an imxconv-pt memory report ({exc}).") from exc


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of dnnParams.xml: shape in PyTorch order (C, H, W), 8-bit quantisation."""

    name: str
    shape: tuple[int, ...]
    scale: float
    shift: int
    signed: bool
    bits: int


@dataclass(frozen=True)
class DnnParams:
    """The converter's ``dnnParams.xml``: input and output tensors of the first network."""

    path: Path
    network_name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    l2_total_bytes: int

    @property
    def input(self) -> TensorSpec:
        """The (single) input tensor."""
        return self.inputs[0]

    @classmethod
    def from_xml(cls, path: Path) -> DnnParams:
        """Parse dnnParams.xml as written by imxconv-pt 3.x."""

        def tensor(el: ET.Element) -> TensorSpec:
            dims = sorted(el.iter("dimension"), key=lambda d: int(d.get("ordinal", "0")))
            return TensorSpec(
                name=el.get("name", ""),
                shape=tuple(int(d.get("size", "0")) for d in dims),
                scale=float(el.get("scale", "1")),
                shift=int(el.get("shift", "0")),
                signed=el.get("format", "unsigned") == "signed",
                bits=int(el.get("bitsPerElement", "8")),
            )

        try:
            root = ET.parse(path).getroot()
            net = root.find("./networks/network")
            if net is None:
                raise ValueError("no <network>")
            l2 = root.find("l2memory")
            return cls(
                path=Path(path),
                network_name=net.get("name", ""),
                inputs=tuple(tensor(t) for t in net.iter("inputTensor")),
                outputs=tuple(tensor(t) for t in net.iter("outputTensor")),
                l2_total_bytes=int(l2.get("totalSize", "0")) if l2 is not None else 0,
            )
        except (OSError, ET.ParseError, ValueError) as exc:
            raise BadInputError(f"{path}: not a converter dnnParams.xml ({exc}).") from exc


@dataclass(frozen=True)
class ConvertOutputDir:
    """A complete ``imx500-sam convert`` output directory, parsed (what the emulator and eval read)."""

    out_dir: Path
    packer_out: Path
    mctq_onnx: Path
    qdq_onnx: Path
    memory_report: MemoryReport
    dnn_params: DnnParams
    intrinsics: dict[str, Any]
    report: dict[str, Any]
    rpk: Path | None

    @property
    def input_preprocessor(self) -> Any:
        """The sensor's input preprocessor settings (``imx500_sam.preprocessor.InputPreprocessor``) from report.json,
        or None: gain 1, offset 0 (the network takes pixels / 256, its normalisation inside)."""
        return _preprocessor_in(self.report)

    @property
    def prompt_crop(self) -> str:
        """The crop convention of the converted model (report.json; older outputs: ``shifted``, the default's)."""
        return crop_in_report(self.report, self.out_dir / REPORT_JSON)

    @classmethod
    def load(cls, out_dir: str | Path) -> ConvertOutputDir:
        """Read a convert output directory; BadInputError naming what is missing."""
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise BadInputError(
                f"{out}: a file, not a convert output folder.",
                hint="Give the folder `imx500-sam convert MODEL -o OUT` wrote (it holds packerOut.zip, report.json).",
            )
        hint = f"Run `imx500-sam convert MODEL -o {out}` to make one."
        if not out.is_dir():
            raise BadInputError(f"{out}: no such convert output folder.", hint=hint)
        required = [PACKER_OUT, MCTQ_ONNX, QDQ_ONNX, DNN_PARAMS, INTRINSICS_JSON, REPORT_JSON]
        missing = [n for n in required if not (out / n).is_file()]
        reports = sorted(out.glob(MEMORY_REPORT_GLOB))
        if not reports:
            missing.append(MEMORY_REPORT_GLOB)
        if missing:
            raise BadInputError(f"{out}: incomplete convert output, missing {', '.join(missing)}.", hint=hint)
        try:
            intrinsics = json.loads((out / INTRINSICS_JSON).read_text())
            report = json.loads((out / REPORT_JSON).read_text())
        except (OSError, ValueError) as exc:
            raise BadInputError(f"{out}: unreadable convert output ({exc}).", hint=hint) from exc
        rpk = out / RPK
        return cls(
            out_dir=out,
            packer_out=out / PACKER_OUT,
            mctq_onnx=out / MCTQ_ONNX,
            qdq_onnx=out / QDQ_ONNX,
            memory_report=MemoryReport.from_json(reports[0]),
            dnn_params=DnnParams.from_xml(out / DNN_PARAMS),
            intrinsics=intrinsics,
            report=report,
            rpk=rpk if rpk.is_file() else None,
        )


def crop_in_report(report: dict[str, Any], where: Path | str) -> str:
    """``model.prompt_crop`` of a report.json (``imx500_sam.prompt``); ``shifted`` when it has none."""
    from imx500_sam.prompt import SHIFTED, check_convention

    value = (report.get("model") or {}).get("prompt_crop") or SHIFTED
    try:
        return check_convention(value)
    except ValueError as exc:
        raise BadInputError(f"{where}: model.prompt_crop: {exc}.") from exc


def _report_beside(path: str | Path) -> dict[str, Any] | None:
    report = Path(path).with_name(REPORT_JSON)
    if not report.is_file():
        return None
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _preprocessor_in(report: dict[str, Any]) -> Any:
    """report.json's input preprocessor (``imx500_sam.preprocessor.InputPreprocessor``), or None."""
    from imx500_sam.preprocessor import InputPreprocessor

    data = (report.get("input") or {}).get("preprocessor")
    return InputPreprocessor.from_dict(data) if isinstance(data, dict) else None


def network_info_beside(path: str | Path) -> dict[str, str] | None:
    """The input preprocessor's network_info.txt values from the report.json beside ``path`` (a convert output's
    packerOut.zip or network.rpk), when it needs other than imx500-package's (gain 1, offset 0 / -128)."""
    pre = _preprocessor_in(_report_beside(path) or {})
    return None if pre is None or pre.is_identity() else pre.network_info()


def prompt_crop_beside(rpk: str | Path) -> str | None:
    """The crop convention in the report.json beside a network.rpk (a convert output packaged on the Pi), or None."""
    data = _report_beside(rpk)
    return crop_in_report(data, Path(rpk).with_name(REPORT_JSON)) if data is not None else None


def converted_prompt_crop(convert_out: ConvertOutputDir | None, rpk: str | Path | None) -> str:
    """The crop convention of the converted model a sensor runs: its convert output's (the emulator), else the one
    in the report.json beside its network.rpk (the camera), else ``shifted`` (the bundled model's)."""
    from imx500_sam.prompt import SHIFTED

    if convert_out is not None:
        return convert_out.prompt_crop
    return (prompt_crop_beside(rpk) if rpk is not None else None) or SHIFTED
