"""The one rule for what commands write: an existing output is refused unless the user says otherwise.

``convert``, ``eval``, ``distill``, ``bench host``, ``intrinsics`` and ``run --save`` refuse an existing output
(exit 2) unless ``--overwrite`` (or ``--resume`` / ``--in-place`` where that is what is meant); files are written
with an ordinary file's mode (0666 less the umask, 0644 under the usual umask), never mkstemp's 0600.
Light module: standard library only; runs on a Pi.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from imx500_sam.errors import BadInputError


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def file_mode() -> int:
    """The mode a new ordinary file gets under the current umask (0644 under umask 022)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """The mode a new folder gets under the current umask (0755 under umask 022)."""
    return 0o777 & ~_umask()


def refuse_existing(path: Path, *, option: str, overwrite: bool, also: str = "") -> None:
    """BadInputError (exit 2) when ``path`` exists and ``overwrite`` is not given.

    ``option`` names the flag that chose ``path`` (e.g. ``-o OUT``); ``also`` adds another way out (e.g.
    ``--resume to continue it``).
    """
    if not (path.exists() or path.is_symlink()) or overwrite:
        return
    ways = ["--overwrite to replace it", *([also] if also else [])]
    raise BadInputError(f"{path}: already exists.", hint=f"Pass {' or '.join(ways)}, or choose another {option}.")


def clear_dir(path: Path, marker: str) -> None:
    """Make ``path`` an empty folder (what ``--overwrite`` does to an output folder).

    Only an empty folder or one holding ``marker`` (the file that command writes) is emptied: a mistyped
    ``--out .`` never deletes anything else. A file or a link is refused.
    """
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise BadInputError(f"{path}: exists and is not a folder.", hint="Choose another output folder.")
    if path.exists() and any(path.iterdir()) and not (path / marker).is_file():
        raise BadInputError(
            f"{path}: not empty and not an output of this command (no {marker}): not removed.",
            hint="Choose another output folder.",
        )
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
