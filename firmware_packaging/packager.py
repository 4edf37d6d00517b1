"""packerOut.zip (from imxconv-pt) -> network.rpk with PicoSAM3's intrinsics, via Sony's ``imx500-package``.

``imx500-package`` exists only on Raspberry Pi OS (``sudo apt install imx500-tools``). Off a Pi, ``package``
raises ToolchainMissingError (exit 5) whose message holds the exact commands to run there;
``pi_commands`` returns those lines for reports.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from firmware_packaging.rpk import (
    RpkFormatError,
    read_rpk,
    set_intrinsics_file,
    validate_intrinsics,
    with_network_info,
    write_atomic,
)
from imx500_sam.errors import BadInputError, ToolchainMissingError, ToolFailedError
from imx500_sam.facts import fact
from imx500_sam.pi import require_pi
from imx500_sam.procs import DEFAULT_TOOL_TIMEOUT_S, owned_temp_dir, run_tool

PACKAGER = "imx500-package"
RPK_NAME = "network.rpk"
INPUT_FORMAT_JSON = "input_format.json"
COLOR_FORMATS: tuple[str, ...] = tuple(fact("input_color_formats").value)
MAX_ZIP_MEMBERS = 256
MAX_ZIP_UNCOMPRESSED = 64 * 1024 * 1024  # the converter's output for an 8 MiB SRAM network is ~1-10 MB


def picosam3_intrinsics(inference_rate: float | None = None) -> dict[str, Any]:
    """PicoSAM3's network intrinsics: segmentation, square input (1:1), inference rate from imx500_sam.facts."""
    rate = fact("default_inference_rate").value if inference_rate is None else inference_rate
    return validate_intrinsics(
        {"task": "segmentation", "inference_rate": rate, "input_aspect_ratio": {"width": 1, "height": 1}}
    )


def packager_available(path: str | None = None) -> bool:
    """True when Sony's ``imx500-package`` is on PATH (or ``path``): a Raspberry Pi with imx500-tools."""
    return shutil.which(PACKAGER, path=path) is not None


def _safe_member(name: str) -> bool:
    p = PurePosixPath(name)
    return (
        bool(name)
        and "\\" not in name
        and "\0" not in name
        and not p.is_absolute()
        and ".." not in p.parts
        and not (len(name) > 1 and name[1] == ":")
    )


def validate_packer_zip(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check a packerOut.zip: a zip, safe member names, no links, manifest target IMX500, files and md5s as listed.

    Returns the parsed manifest.json. Raises BadInputError with what to do.
    """
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"{p} does not exist.", hint="Pass the packerOut.zip written by `imx500-sam convert`.")
    fix = "Re-run `imx500-sam convert` to regenerate packerOut.zip."
    try:
        with zipfile.ZipFile(p) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ZIP_MEMBERS:
                raise BadInputError(f"{p}: {len(infos)} entries is too many for a packerOut.zip.", hint=fix)
            total = 0
            for info in infos:
                if not _safe_member(info.filename):
                    raise BadInputError(f"{p}: unsafe path {info.filename!r} in the zip.", hint=fix)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise BadInputError(f"{p}: {info.filename!r} is a symbolic link.", hint=fix)
                total += info.file_size
            if total > MAX_ZIP_UNCOMPRESSED:
                raise BadInputError(f"{p}: {total} bytes uncompressed, too large for a packerOut.zip.", hint=fix)
            names = {i.filename: i for i in infos}
            if "manifest.json" not in names:
                raise BadInputError(f"{p}: no manifest.json; this is not a packerOut.zip.", hint=fix)
            try:
                manifest = json.loads(zf.read("manifest.json").decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise BadInputError(f"{p}: manifest.json is not JSON ({exc}).", hint=fix) from None
            if not isinstance(manifest, dict) or manifest.get("Target") != "IMX500":
                target = manifest.get("Target") if isinstance(manifest, dict) else None
                raise BadInputError(f"{p}: manifest target is {target!r}, not 'IMX500'.", hint=fix)
            for key, item in manifest.items():
                if not (isinstance(item, dict) and isinstance(item.get("File"), str)):
                    continue
                member = item["File"]
                if member not in names:
                    raise BadInputError(f"{p}: manifest lists {member} ({key}) but the zip lacks it.", hint=fix)
                data = zf.read(member)
                if "Size" in item and item["Size"] != len(data):
                    raise BadInputError(f"{p}: {member} is {len(data)} bytes, manifest says {item['Size']}.", hint=fix)
                md5 = item.get("md5")
                if isinstance(md5, str) and hashlib.md5(data).hexdigest().lower() != md5.lower():
                    raise BadInputError(f"{p}: {member} does not match its md5 in manifest.json.", hint=fix)
    except zipfile.BadZipFile as exc:
        raise BadInputError(f"{p} is not a zip file ({exc}).", hint=fix) from None
    except (OSError, EOFError, RuntimeError, NotImplementedError, zipfile.LargeZipFile) as exc:
        raise BadInputError(f"{p}: unreadable zip ({exc}).", hint=fix) from None
    return manifest


def _check_color(color: str) -> str:
    if color not in COLOR_FORMATS:
        raise BadInputError(f"unknown input colour format {color!r}.", hint=f"Use one of {', '.join(COLOR_FORMATS)}.")
    return color


def input_format_config(color: str = "RGB") -> list[dict[str, Any]]:
    """Content of input_format.json for ``imx500-package -f`` (as Sony's Raspberry Pi library writes it)."""
    return [{"ordinal": 0, "format": _check_color(color)}]


def pi_commands(
    packer_out_zip: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    color: str = "RGB",
    intrinsics: dict[str, Any] | None = None,
    network_info: dict[str, str] | None = None,
) -> list[str]:
    """The exact shell lines that package ``packer_out_zip`` into ``out_dir/network.rpk`` on a Pi.

    ``network_info``: network_info.txt values to set after packaging (the input preprocessor's gain/offset).
    """
    zip_q, out_q = shlex.quote(str(packer_out_zip)), shlex.quote(str(out_dir))
    fmt_q = shlex.quote(str(Path(out_dir) / INPUT_FORMAT_JSON))
    lines = [
        "sudo apt install -y imx500-tools",
        f"mkdir -p {out_q}",
        f"printf '%s\\n' {shlex.quote(json.dumps(input_format_config(color)))} > {fmt_q}",
        f"{PACKAGER} -i {zip_q} -o {out_q} -f {fmt_q}",
    ]
    rpk_q = shlex.quote(str(Path(out_dir) / RPK_NAME))
    intr = intrinsics if intrinsics is not None else picosam3_intrinsics()
    lines.append(f"imx500-sam intrinsics {rpk_q} --from {shlex.quote(json.dumps(intr))} --in-place")
    if network_info:
        sets = " ".join(f"--set {shlex.quote(f'{k}={v}')}" for k, v in network_info.items())
        lines.append(f"imx500-sam network-info {rpk_q} {sets}")
    return lines


def package(
    packer_out_zip: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    color: str = "RGB",
    intrinsics: dict[str, Any] | None = None,
    *,
    timeout_s: float = DEFAULT_TOOL_TIMEOUT_S,
    network_info: dict[str, str] | None = None,
) -> Path:
    """Run ``imx500-package`` on a validated packerOut.zip, then write intrinsics; returns ``out_dir/network.rpk``.

    The packager runs in a temporary directory beside ``out_dir``; only a complete, valid network.rpk is moved
    into place (other files already in ``out_dir`` are left alone). Off a Pi: ToolchainMissingError (exit 5).
    """
    zip_path = Path(packer_out_zip).resolve()
    out = Path(out_dir)
    _check_color(color)
    intr = validate_intrinsics(intrinsics if intrinsics is not None else picosam3_intrinsics())
    validate_packer_zip(zip_path)
    exe = shutil.which(PACKAGER)
    if exe is None:
        there = f"Copy {zip_path.name} to the Pi and run there: " + " && ".join(
            pi_commands(zip_path.name, out.name, color, intr, network_info)
        )
        require_pi(f"{PACKAGER} (Sony's packager)", there)
        raise ToolchainMissingError(f"{PACKAGER} is not installed on this Pi.", hint="sudo apt install -y imx500-tools")
    out.mkdir(parents=True, exist_ok=True)
    with owned_temp_dir(".package-", out) as work:  # owner-marked: one left by a killed run goes next time
        fmt = work / INPUT_FORMAT_JSON
        fmt.write_text(json.dumps(input_format_config(color), indent=4), encoding="utf-8")
        pkg_out = work / "out"
        pkg_out.mkdir()
        cmd = [exe, "-i", str(zip_path), "-o", str(pkg_out), "-f", str(fmt)]
        log = work / "imx500-package.log"
        kept = out / "imx500-package.log"
        try:
            returncode = run_tool(cmd, name=PACKAGER, log_path=log, timeout_s=timeout_s)
        except ToolFailedError as exc:  # timed out: keep its log
            shutil.copyfile(log, kept)
            raise ToolFailedError(f"{PACKAGER} did not finish within {timeout_s:g} s; its log is in {kept}.") from exc
        rpk = pkg_out / RPK_NAME
        if returncode != 0 or not rpk.is_file():
            shutil.copyfile(log, kept)
            raise ToolFailedError(
                f"{PACKAGER} failed (exit {returncode}); its log is in {kept}.",
                hint="Check that imx500-tools is up to date (sudo apt full-upgrade).",
            )
        try:
            read_rpk(rpk)  # what the packager wrote must be a valid rpk
        except RpkFormatError as exc:
            raise ToolFailedError(f"{PACKAGER} wrote a bad network.rpk: {exc.reason} (byte {exc.offset}).") from None
        set_intrinsics_file(rpk, intr)
        if network_info:  # the input preprocessor's settings (imx500-package writes gain 1, offset 0 / -128)
            write_atomic(rpk, with_network_info(read_rpk(rpk), network_info))
        final = out / RPK_NAME
        os.replace(rpk, final)
        shutil.copyfile(fmt, out / INPUT_FORMAT_JSON)
    return final
