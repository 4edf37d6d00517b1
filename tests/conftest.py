"""Shared fixtures. ``converted_default`` runs the real convert pipeline once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def rpk_fixture_dir() -> Path:
    """Real .rpk files (never copied into the repo): $IMX500_SAM_RPK_DIR or ../shared/fixtures/rpk."""
    return Path(os.environ.get("IMX500_SAM_RPK_DIR", REPO.parent / "shared" / "fixtures" / "rpk"))


@pytest.fixture(scope="session")
def converted_default(tmp_path_factory: pytest.TempPathFactory):
    """A real ``imx500-sam convert`` of the bundled default model (real MCT + real imxconv-pt).

    Returns a ``converter.artifacts.ConvertOutput``. Shared by every test that needs a convert output.
    """
    from converter.pipeline import ConvertOptions, run_convert

    from converter.artifacts import ConvertOutput

    out = tmp_path_factory.mktemp("convert") / "default_imx500"
    run_convert(ConvertOptions(model=None, out=out, calib_count=32, quiet=True))
    return ConvertOutput.load(out)
