"""Is this a Raspberry Pi? (the device-tree model), and the commands that run only on one.

Light module: standard library only.
"""

from __future__ import annotations

from pathlib import Path

from imx500_sam.errors import PiOnlyError

#: What needs the Pi itself: Sony's packager (Raspberry Pi OS only) and the AI Camera through picamera2.
PI_ONLY_COMMANDS = (
    "package (imx500-package)",
    "flash FILE.rpk without --host",
    "run --rpk",
    "bench device --rpk",
    "eval --device --rpk",
)


def pi_model(root: Path = Path("/")) -> str | None:
    """The Raspberry Pi model from <root>/proc/device-tree/model, or None when this is not a Pi."""
    try:
        text = (root / "proc/device-tree/model").read_bytes().decode(errors="replace").strip("\0 \n")
    except OSError:
        return None
    return text if "raspberry pi" in text.lower() else None


def require_pi(what: str, hint: str) -> None:
    """PiOnlyError (exit 5) saying ``what`` runs only on a Raspberry Pi, unless this is one."""
    if pi_model() is None:
        raise PiOnlyError(f"{what} runs only on a Raspberry Pi (Raspberry Pi OS); this machine is not one.", hint=hint)
