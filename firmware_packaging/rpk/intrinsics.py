"""Network intrinsics: picamera2's ``NetworkIntrinsics`` schema, checked, encoded and merged."""

from __future__ import annotations

import json
from typing import Any

from imx500_sam.errors import BadInputError

#: The schema picamera2 0.3.38's ``NetworkIntrinsics`` validates against (devices/imx500/imx500.py), verbatim.
INTRINSICS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft-07/schema",
    "title": "network_intrinsics",
    "type": "object",
    "properties": {
        "task": {
            "type": "string",
            "enum": ["classification", "object detection", "pose estimation", "segmentation"],
            "description": "Network task",
        },
        "inference_rate": {"type": "number", "minimum": 0},
        "cpu": {
            "type": "object",
            "properties": {
                "bbox_normalization": {"type": "boolean"},
                "bbox_order": {"type": "string", "enum": ["xy", "yx"]},
                "softmax": {"type": "boolean"},
                "post_processing": {"type": "string"},
            },
        },
        "input_aspect_ratio": {
            "type": "object",
            "properties": {
                "width": {"type": "integer", "exclusiveMinimum": 0},
                "height": {"type": "integer", "exclusiveMinimum": 0},
            },
            "required": ["width", "height"],
        },
        "classes": {
            "type": "object",
            "properties": {
                "labels": {"type": "array", "items": {"type": "string"}},
                "ignore_undefined": {"type": "boolean"},
            },
        },
    },
}


def intrinsics_problem(value: Any, *, strict: bool = True) -> str | None:
    """None when ``value`` passes picamera2's intrinsics schema, else a one-line reason.

    ``strict`` (what the writer asks) also refuses NaN and infinities, which picamera2 reads but JSON has not.
    """
    import jsonschema

    try:
        # Draft 7, as the schema's $schema says (picamera2 lets jsonschema guess from an unlisted URL and gets
        # the latest draft, which judges every keyword of this schema the same way).
        jsonschema.Draft7Validator(INTRINSICS_SCHEMA).validate(value)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        return f"{where}: {exc.message}"
    except (RecursionError, TypeError, ValueError) as exc:  # absurdly nested or non-JSON values
        return f"invalid value ({type(exc).__name__})"
    if strict:
        try:
            json.dumps(value, allow_nan=False)
        except (ValueError, TypeError, RecursionError):
            return "not plain JSON (NaN, infinity or a non-JSON type)"
    return None


def validate_intrinsics(value: Any) -> dict[str, Any]:
    """Return ``value`` if picamera2 would accept it as network intrinsics, else raise BadInputError."""
    problem = intrinsics_problem(value)
    if problem:
        raise BadInputError(
            f"network intrinsics rejected by picamera2's schema: {problem}.",
            hint="See `imx500-sam intrinsics --help` for the keys and allowed values.",
        )
    return value


def encode_intrinsics(value: dict[str, Any]) -> bytes:
    """The bytes stored in ``network_intrinsics`` (same style as Raspberry Pi's files: json.dumps + newline)."""
    return (json.dumps(value) + "\n").encode("utf-8")


def merge_intrinsics(current: dict[str, Any] | None, updates: dict[str, Any]) -> dict[str, Any]:
    """``current`` with ``updates`` applied (nested dicts merged one level deep, like picamera2's setters)."""
    merged = dict(current or {})
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged
