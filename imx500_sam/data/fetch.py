"""Fetch real sources into the user cache: registry downloads, checksums and safe extraction.

Everything here goes through the ordinary package clients (``pip download``, ``apt-get download``)
run with argument lists, and every archive member is checked before extraction (no absolute
paths, no ``..``, no links leaving the target). Light: numpy only, no torch.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from imx500_sam.defaults import cache_dir
from imx500_sam.errors import BadInputError, ToolchainMissingError, ToolFailedError, last_line
from imx500_sam.procs import OWNER_FILE, owned_temp_dir, publish_dir, run_captured


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_sha256(path: Path, expected: str | None) -> None:
    """Raise BadInputError if ``path`` does not have sha256 ``expected`` (no check when None)."""
    if expected is None:
        return
    got = sha256_file(path)
    if got != expected:
        raise BadInputError(
            f"{path}: sha256 {got} does not match the expected {expected}.",
            hint="Delete the file and fetch again; if it persists the registry serves another file.",
        )


def safe_member_path(name: str) -> PurePosixPath:
    """Archive member name -> a relative path that stays inside the target, or BadInputError."""
    p = PurePosixPath(name.replace("\\", "/"))
    parts = [x for x in p.parts if x not in ("", ".")]
    if p.is_absolute() or ".." in parts or not parts:
        raise BadInputError(f"archive member {name!r} would be written outside its folder; refusing the archive.")
    return PurePosixPath(*parts)


FETCH_TIMEOUT_S = 1800.0  # a download that hangs longer than this is stopped (exit 6)


def _run(args: list[str], cwd: Path, what: str) -> None:
    exe = shutil.which(args[0]) if not Path(args[0]).is_absolute() else args[0]
    if exe is None:
        raise ToolchainMissingError(f"{args[0]} not found (needed to {what}).", hint=f"Install {args[0]}.")
    # a process group of its own (imx500_sam.procs): a stop, a timeout or our death ends it and its children
    proc = run_captured([exe, *args[1:]], name=Path(args[0]).name, timeout_s=FETCH_TIMEOUT_S, cwd=cwd)
    if proc.returncode != 0:
        tail = last_line(proc.stderr or proc.stdout) or "no output"
        raise ToolFailedError(f"{' '.join(args[:3])} failed ({tail}).", hint=f"Check access to {what}.")


def pip_download(requirement: str, dest: Path) -> Path:
    """``pip download --no-deps REQUIREMENT`` into ``dest``; returns the downloaded file."""
    dest.mkdir(parents=True, exist_ok=True)
    with owned_temp_dir(".download-", dest) as tmp:  # owner-marked: one left by a killed run goes next time
        _run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", requirement, "-d", tmp],
            Path(tmp),
            f"download {requirement} from PyPI",
        )
        files = sorted(p for p in Path(tmp).iterdir() if p.name != OWNER_FILE)  # not the owner mark
        if len(files) != 1:
            raise ToolFailedError(f"pip download {requirement} gave {len(files)} files, expected one.")
        final = dest / files[0].name
        files[0].replace(final)
    return final


def registry_file(requirement: str, pattern: str, cache: Path | None = None, sha256: str | None = None) -> Path:
    """A package file from PyPI: the cached download matching ``pattern`` under the cache's ``downloads``,
    else ``pip download --no-deps REQUIREMENT``; checked against ``sha256`` when given."""
    downloads = (cache or cache_dir()) / "downloads"
    found = sorted(downloads.glob(pattern))
    path = found[0] if found else pip_download(requirement, downloads)
    check_sha256(path, sha256)
    return path


def apt_download(package: str, dest: Path) -> Path:
    """``apt-get download PACKAGE`` into ``dest``; returns the .deb."""
    dest.mkdir(parents=True, exist_ok=True)
    found = sorted(dest.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    with owned_temp_dir(".download-", dest) as tmp:
        _run(["apt-get", "download", package], Path(tmp), f"download the Debian package {package}")
        debs = sorted(Path(tmp).glob(f"{package}_*.deb"))
        if not debs:
            raise ToolFailedError(f"apt-get download {package} wrote no .deb.")
        final = dest / debs[-1].name
        debs[-1].replace(final)
    return final


def extract_tar(archive: Path | io.BytesIO, dest: Path, prefix: str = "", suffixes: tuple[str, ...] = ()) -> list[Path]:
    """Extract regular files of a tar (any compression) whose path starts with ``prefix`` into ``dest``.

    Member paths are checked (no absolute paths or ``..``); links and devices are skipped.
    ``suffixes`` limits extraction to names ending in one of them. Returns the written files.
    """
    written: list[Path] = []
    kwargs = {"fileobj": archive} if isinstance(archive, io.BytesIO) else {"name": str(archive)}
    with tarfile.open(mode="r:*", **kwargs) as tf:
        for m in tf:
            if not m.isfile():
                continue
            rel = safe_member_path(m.name)
            if prefix and not str(rel).startswith(prefix):
                continue
            if suffixes and not str(rel).lower().endswith(suffixes):
                continue
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(m)
            if src is None:
                continue
            with open(out, "wb") as f:
                shutil.copyfileobj(src, f)
            written.append(out)
    return written


def extract_zip(archive: Path, dest: Path, prefix: str = "") -> list[Path]:
    """Extract the files of a zip (e.g. a wheel) under ``prefix`` into ``dest``, safely."""
    written: list[Path] = []
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            rel = safe_member_path(info.filename)
            if prefix and not str(rel).startswith(prefix):
                continue
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(out, "wb") as f:
                shutil.copyfileobj(src, f)
            written.append(out)
    return written


def deb_data_tar(deb: Path) -> io.BytesIO:
    """The ``data.tar.*`` member of a .deb (an ar archive), read in Python (no dpkg needed)."""
    with open(deb, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise BadInputError(f"{deb}: not a Debian package (no ar header).")
        while True:
            header = f.read(60)
            if len(header) < 60:
                break
            name = header[:16].decode().strip().rstrip("/")
            size = int(header[48:58].decode().strip())
            data = f.read(size)
            if size % 2:
                f.read(1)
            if name.startswith("data.tar"):
                return io.BytesIO(data)
    raise BadInputError(f"{deb}: no data.tar member.")


def fetch_deb_files(
    package: str, prefix: str, suffixes: tuple[str, ...] = (), cache: Path | None = None, sha256: str | None = None
) -> Path:
    """Download a Debian package and extract its files under ``prefix``; returns the extraction root.

    ``sha256``: the .deb must have it (checked before extraction)."""
    root = (cache or cache_dir()) / "debs" / package
    done = root / ".extracted"
    if done.is_file():
        return root
    deb = apt_download(package, (cache or cache_dir()) / "downloads")
    check_sha256(deb, sha256)
    root.parent.mkdir(parents=True, exist_ok=True)
    with owned_temp_dir(f".{package}-", root.parent) as box:  # a killed run's goes next time (imx500_sam.procs)
        tmp = box / "out"
        tmp.mkdir()
        extract_tar(deb_data_tar(deb), tmp, prefix=prefix, suffixes=suffixes)
        (tmp / ".extracted").write_text(deb.name + "\n")
        publish_dir(tmp, root)
    return root
