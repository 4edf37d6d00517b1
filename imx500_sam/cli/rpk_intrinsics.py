"""``imx500-sam intrinsics FILE.rpk``: set picamera2 network intrinsics inside an .rpk (firmware untouched)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from imx500_sam.cli.app import app
from imx500_sam.errors import BadInputError

_KEYS = {
    "task": ("task", str),
    "inference_rate": ("inference_rate", float),
    "cpu.bbox_normalization": ("cpu", bool),
    "cpu.bbox_order": ("cpu", str),
    "cpu.softmax": ("cpu", bool),
    "cpu.post_processing": ("cpu", str),
    "input_aspect_ratio": ("input_aspect_ratio", str),
    "classes.labels": ("classes", list),
    "classes.ignore_undefined": ("classes", bool),
}


def _value(key: str, raw: str, kind: type) -> Any:
    if kind is bool:
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise BadInputError(f"--set {key}={raw}: expected true or false.")
    if kind is float:
        try:
            number = float(raw)
        except ValueError:
            raise BadInputError(f"--set {key}={raw}: expected a number.") from None
        if not math.isfinite(number):
            raise BadInputError(f"--set {key}={raw}: expected a finite number.")
        return int(number) if number.is_integer() and "." not in raw else number
    if kind is list:
        return [s.strip() for s in raw.split(",") if s.strip()]
    return raw


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    """``["task=segmentation", "cpu.softmax=true", "input_aspect_ratio=1:1"]`` -> a nested intrinsics dict."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or key not in _KEYS:
            raise BadInputError(f"--set {pair!r}: unknown key.", hint=f"Keys: {', '.join(_KEYS)} (key=value).")
        top, kind = _KEYS[key]
        if key == "input_aspect_ratio":
            w, _, h = raw.partition(":")
            if not (w.isdigit() and h.isdigit()):
                raise BadInputError(f"--set {pair!r}: expected W:H, e.g. 1:1.")
            out[top] = {"width": int(w), "height": int(h)}
        elif "." in key:
            out.setdefault(top, {})[key.split(".", 1)[1]] = _value(key, raw, kind)
        else:
            out[top] = _value(key, raw, kind)
    return out


def _load_from(text: str) -> dict[str, Any]:
    try:
        raw = text if text.lstrip().startswith("{") else Path(text).read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInputError(
            f"--from {text}: cannot read ({exc.strerror}).", hint="Pass a JSON file or JSON text."
        ) from None
    except UnicodeDecodeError:
        raise BadInputError(f"--from {text}: not text (UTF-8).", hint="Pass a JSON file or JSON text.") from None
    try:
        value = json.loads(raw)
    except RecursionError:
        raise BadInputError("--from: JSON nested too deeply.", hint="Pass a flat JSON object of intrinsics.") from None
    except ValueError as exc:
        raise BadInputError(f"--from: not JSON ({exc}).", hint="Pass a JSON object of network intrinsics.") from None
    if not isinstance(value, dict):
        raise BadInputError("--from: expected a JSON object.")
    return value


@app.command("intrinsics")
def intrinsics(
    rpk: Path = typer.Argument(..., help="Network firmware file (.rpk)."),
    set_: list[str] = typer.Option(
        None,
        "--set",
        help="key=value to change (repeatable): task, inference_rate, input_aspect_ratio=W:H, cpu.*, classes.*",
    ),
    from_: str = typer.Option(
        None,
        "--from",
        help="Intrinsics from this JSON object (file or inline), merged into the file's: keys it does not name "
        "are kept (nested objects such as cpu merge key by key). With --replace it replaces them all.",
    ),
    replace: bool = typer.Option(False, "--replace", help="With --from: drop every key the JSON does not name."),
    out: Path = typer.Option(None, "-o", "--out", help="Write the result here (the input is left as it is)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing -o file."),
    in_place: bool = typer.Option(False, "--in-place", help="Rewrite FILE.rpk itself (atomic)."),
) -> None:
    """Add or change network_intrinsics, validated against picamera2's schema; firmware bytes untouched."""
    from firmware_packaging.rpk import merge_intrinsics, read_rpk, set_intrinsics_file
    from imx500_sam.outputs import refuse_existing

    if bool(set_) == bool(from_):
        raise BadInputError(
            "give either --set key=value ... or --from JSON.", hint="See `imx500-sam intrinsics --help`."
        )
    if (out is None) != in_place:
        raise BadInputError("say where to write: either -o OUT.rpk or --in-place (rewrites FILE.rpk).")
    if replace and not from_:
        raise BadInputError("--replace goes with --from JSON (--set always changes only the keys it names).")
    if out is not None and rpk.exists() and out.exists() and out.resolve() == rpk.resolve():
        raise BadInputError(f"-o {out} is the input file.", hint="Pass --in-place (without -o) to rewrite it.")
    if out is not None:
        refuse_existing(out, option="-o OUT.rpk", overwrite=overwrite)
    current = read_rpk(rpk).intrinsics
    updates = _load_from(from_) if from_ else parse_sets(set_)
    new = updates if replace else merge_intrinsics(current, updates)
    dest = set_intrinsics_file(rpk, new, out)
    typer.echo(f"{dest}: intrinsics {json.dumps(new)}")
