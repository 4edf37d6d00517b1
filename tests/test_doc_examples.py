"""Every example in README.md and docs/*.md runs as written after ``make demo`` (issue 22).

An example is a line of a fenced ``bash`` block (``text`` blocks are synopses). Skipped, and only these:
lines whose comment starts with ``# Pi`` (needs a Raspberry Pi with the AI Camera), ``# your file``
(needs a file the user brings: the authors' checkpoint, a video), ``# webcam``; a block whose first line
is ``# Pi``; ``make demo`` / ``make test`` themselves. Each document's examples run in order in one bash
(``set -euo pipefail``) from a folder laid out like the repository after ``make demo``: ``.venv``, the
demo's ``picosam3_default_imx500`` (this session's real convert of the bundled model) and ``../shared``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SKIP_MARKS = ("# Pi", "# your file", "# webcam")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)


def examples(doc: Path) -> list[str]:
    """The runnable example commands of one document, continuation lines joined."""
    commands: list[str] = []
    for lang, body in FENCE.findall(doc.read_text(encoding="utf-8")):
        if lang != "bash":
            continue
        lines = body.rstrip("\n").split("\n")
        if lines and lines[0].strip().startswith("# Pi"):
            continue
        joined: list[str] = []
        for line in lines:
            if joined and joined[-1].endswith("\\"):
                joined[-1] = joined[-1][:-1] + " " + line.strip()
            else:
                joined.append(line)
        for line in joined:
            text = line.strip()
            comment = text.split("  #", 1)[1].strip() if "  #" in text else ""
            if not text or text.startswith("#") or text.startswith("make "):
                continue
            if any(("# " + comment).startswith(mark) for mark in SKIP_MARKS):
                continue
            commands.append(text)
    return commands


TOPICS = {"int8-host-network.md", "stopping.md", "verification.md"}  # pages about a topic, not a command


def test_every_command_page_has_examples() -> None:
    """The extraction sees the examples (a test that finds nothing to run would pass vacuously), and every
    command's page shows a synopsis or an example."""
    assert len(examples(REPO / "README.md")) >= 8
    for doc in DOCS[1:]:
        if doc.name not in TOPICS:
            assert FENCE.search(doc.read_text(encoding="utf-8")), f"{doc.name}: no code block"


def test_marked_lines_are_skipped() -> None:
    sample = REPO / "README.md"
    text = sample.read_text(encoding="utf-8")
    assert "# Pi" in text
    assert not any("--rpk" in c for c in examples(sample)), "a Pi-only example was selected to run"


RUNNABLE = [d for d in DOCS if examples(d)]


@pytest.mark.slow
@pytest.mark.parametrize("doc", RUNNABLE, ids=[d.name for d in RUNNABLE])
def test_examples_run_as_written(doc: Path, converted_default, tmp_path: Path) -> None:
    commands = examples(doc)
    root = tmp_path / "imx500-sam"
    root.mkdir()
    (root / ".venv").symlink_to(Path(sys.prefix))
    (root / "picosam3_default_imx500").symlink_to(converted_default.out_dir)
    (tmp_path / "shared").symlink_to(REPO.parent / "shared")
    script = "set -euo pipefail\n" + "\n".join(f"echo '+ {c[:60]}'\n{c}" for c in commands) + "\n"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        ["bash", "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert proc.returncode == 0, f"{doc.name}: example failed\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
