"""Real .rpk fixtures for the firmware-packaging tests (read from $IMX500_SAM_RPK_DIR, never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import rpk_fixture_dir

DEEPLAB = "imx500_network_deeplabv3plus.rpk"
HIGHERHRNET = "imx500_network_higherhrnet_coco.rpk"


def rpk_path(name: str) -> Path:
    """Path of a real fixture .rpk; fails (not skips) with what to do when it is missing."""
    path = rpk_fixture_dir() / name
    if not path.is_file():
        pytest.fail(f"missing real .rpk fixture {path}: set IMX500_SAM_RPK_DIR to the folder holding {name}")
    return path
