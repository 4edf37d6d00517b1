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
def default_convert_run(tmp_path_factory: pytest.TempPathFactory):
    """``imx500-sam convert --json`` of the bundled default model, through the real CLI, real MCT and real
    imxconv-pt. Returns (ConvertOutputDir, stdout)."""
    import contextlib
    import io

    from imx500_sam.cli import main
    from imx500_sam.convert_output import ConvertOutputDir

    out = tmp_path_factory.mktemp("convert") / "default_imx500"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = main(["convert", "-o", str(out), "--calib-count", "32", "--json"])
    assert rc == 0, f"convert failed with exit code {rc}"
    return ConvertOutputDir.load(out), stdout.getvalue()


@pytest.fixture(scope="session")
def converted_default(request: pytest.FixtureRequest):
    """A real convert output of the bundled default model (``imx500_sam.convert_output.ConvertOutputDir``).

    Shared by every test that needs one; the conversion runs once per test session, unless
    $IMX500_SAM_CONVERT_DIR names an existing convert output of the bundled model to reuse (development runs).
    """
    from imx500_sam.convert_output import ConvertOutputDir

    reuse = os.environ.get("IMX500_SAM_CONVERT_DIR")
    if reuse:
        return ConvertOutputDir.load(reuse)
    return request.getfixturevalue("default_convert_run")[0]
