"""packerOut.zip validation, the off-Pi path (exit 5 + exact commands) and packaging with a stand-in packager."""

from __future__ import annotations

import hashlib
import json
import shlex
import stat
import zipfile
from pathlib import Path

import pytest

from firmware_packaging import packager as P
from firmware_packaging import rpk as R
from imx500_sam.cli import main
from imx500_sam.errors import BadInputError, ToolchainMissingError, ToolFailedError
from imx500_sam.facts import fact
from tests.rpk_fixtures import DEEPLAB, rpk_path
from tests.support.picamera2_host import import_imx500_module, picamera2_read_rpk

pytestmark = pytest.mark.filterwarnings("ignore:The metaschema specified:DeprecationWarning")

MEMBERS = {
    "SdspA": "sdpsA.bin",
    "SdspC": "sdpsC.bin",
    "CfgBank1": "cfgA.bin",
    "CfgBank2": "cfgC.bin",
    "xmlSchema": "dnnParams.xsd",
    "xml": "dnnParams.xml",
    "coef": "l2staticData.bin",
    "Versions": "verTable.txt",
}


def make_packer_zip(path: Path, target: str = "IMX500", extra: dict[str, bytes] | None = None, md5_of=None) -> Path:
    """A zip laid out like imxconv-pt 3.19's packerOut.zip (manifest.json with Target, File, md5, Size)."""
    files = {name: hashlib.sha256(name.encode()).digest() * 40 for name in MEMBERS.values()}
    manifest: dict[str, object] = {"Release Version": "3.19.1", "Description": "Created by Packer", "Target": target}
    for key, name in MEMBERS.items():
        data = files[name] if md5_of is None else md5_of.get(name, files[name])
        manifest[key] = {"File": name, "md5": hashlib.md5(data).hexdigest().upper(), "Size": len(files[name])}
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("manifest.json", json.dumps(manifest, indent=2))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def test_valid_zip_passes(tmp_path: Path) -> None:
    manifest = P.validate_packer_zip(make_packer_zip(tmp_path / "packerOut.zip"))
    assert manifest["Target"] == "IMX500"


@pytest.mark.parametrize(
    ("label", "kwargs", "match"),
    [
        ("wrong target", {"target": "IMX501"}, "not 'IMX500'"),
        ("traversal", {"extra": {"../../evil.sh": b"x"}}, "unsafe path"),
        ("absolute", {"extra": {"/etc/cron.d/x": b"x"}}, "unsafe path"),
        ("backslash", {"extra": {"..\\evil": b"x"}}, "unsafe path"),
        ("md5", {"md5_of": {"cfgA.bin": b"tampered"}}, "md5"),
    ],
)
def test_bad_zips_are_refused(tmp_path: Path, label: str, kwargs: dict, match: str) -> None:
    with pytest.raises(BadInputError, match=match):
        P.validate_packer_zip(make_packer_zip(tmp_path / "packerOut.zip", **kwargs))


def test_more_bad_zips(tmp_path: Path) -> None:
    not_zip = tmp_path / "a.zip"
    not_zip.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(BadInputError, match="not a zip"):
        P.validate_packer_zip(not_zip)
    no_manifest = tmp_path / "b.zip"
    with zipfile.ZipFile(no_manifest, "w") as zf:
        zf.writestr("sdpsA.bin", b"x")
    with pytest.raises(BadInputError, match=r"no manifest\.json"):
        P.validate_packer_zip(no_manifest)
    link = make_packer_zip(tmp_path / "c.zip")
    with zipfile.ZipFile(link, "a") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(BadInputError, match="symbolic link"):
        P.validate_packer_zip(link)
    missing = tmp_path / "d.zip"
    with zipfile.ZipFile(make_packer_zip(tmp_path / "full.zip")) as src, zipfile.ZipFile(missing, "w") as dst:
        for i in src.infolist():
            if i.filename != "cfgA.bin":
                dst.writestr(i, src.read(i))
    with pytest.raises(BadInputError, match="lacks it"):
        P.validate_packer_zip(missing)


def test_picosam3_intrinsics_accepted_by_picamera2() -> None:
    intr = P.picosam3_intrinsics()
    assert intr["task"] == "segmentation" and intr["input_aspect_ratio"] == {"width": 1, "height": 1}
    assert intr["inference_rate"] == fact("default_inference_rate").value
    ni = import_imx500_module().NetworkIntrinsics(intr)
    assert (ni.task, ni.preserve_aspect_ratio) == ("segmentation", True)


def test_off_pi_exit_5_with_exact_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    zip_path = make_packer_zip(tmp_path / "packerOut.zip")
    assert not P.packager_available()
    with pytest.raises(ToolchainMissingError) as info:
        P.package(zip_path, tmp_path / "out")
    assert info.value.exit_code == 5 and "imx500-package -i packerOut.zip -o out -f out/input_format.json" in str(
        info.value
    )
    assert "runs only on a Raspberry Pi" in str(info.value) and "doctor" not in str(info.value)
    assert main(["package", str(zip_path), "-o", str(tmp_path / "out2"), "--color", "BGR"]) == 5
    err = capsys.readouterr().err
    lines = P.pi_commands(zip_path.name, tmp_path / "out2", "BGR")
    assert all(line in err for line in lines)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()
    assert main(["package", str(zip_path), "-o", str(tmp_path / "o"), "--color", "CMYK"]) == 2


def test_pi_commands_are_exact_shell() -> None:
    lines = P.pi_commands("packerOut.zip", "my out", "Y")
    words = [shlex.split(line) for line in lines]
    pkg = next(w for w in words if w[0] == "imx500-package")
    assert pkg == ["imx500-package", "-i", "packerOut.zip", "-o", "my out", "-f", "my out/input_format.json"]
    printf = next(w for w in words if w[0] == "printf")
    assert json.loads(printf[2]) == [{"ordinal": 0, "format": "Y"}]
    intr = next(w for w in words if w[:2] == ["imx500-sam", "intrinsics"])
    assert json.loads(intr[intr.index("--from") + 1]) == P.picosam3_intrinsics() and "--in-place" in intr


STANDIN_PACKAGER = """#!/bin/sh
# Stand-in for Sony's imx500-package (Raspberry Pi only): records its arguments, writes a real .rpk.
echo "$@" > {log}
while [ $# -gt 0 ]; do
  case "$1" in
    -i) in="$2"; shift 2;;
    -o) out="$2"; shift 2;;
    -f) fmt="$2"; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
cp "$fmt" {fmt_copy}
{action}
"""


def _standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "imx500-package"
    exe.write_text(STANDIN_PACKAGER.format(log=tmp_path / "args.txt", fmt_copy=tmp_path / "fmt.json", action=action))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return exe


def test_package_with_standin_packager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _standin(tmp_path, monkeypatch, f'cp {shlex.quote(str(rpk_path(DEEPLAB)))} "$out/network.rpk"')
    zip_path = make_packer_zip(tmp_path / "packerOut.zip")
    out = tmp_path / "out"
    rpk = P.package(zip_path, out, color="BGR")
    assert rpk == out / "network.rpk"
    args = (tmp_path / "args.txt").read_text().split()
    assert args[:2] == ["-i", str(zip_path.resolve())] and args[2] == "-o" and args[4] == "-f"
    assert json.loads((tmp_path / "fmt.json").read_text()) == [{"ordinal": 0, "format": "BGR"}]
    cfg = picamera2_read_rpk(rpk)
    assert cfg["intrinsics"].intrinsics == P.picosam3_intrinsics()
    assert rpk.read_bytes()[: R.read_rpk(rpk).cpio_offset] == R.read_rpk(rpk_path(DEEPLAB)).firmware
    assert sorted(p.name for p in out.iterdir()) == ["input_format.json", "network.rpk"]  # no temp dirs left


def test_package_failures_leave_no_rpk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _standin(tmp_path, monkeypatch, 'echo "packager exploded" >&2; exit 1')
    zip_path = make_packer_zip(tmp_path / "packerOut.zip")
    with pytest.raises(ToolFailedError, match="exit 1"):
        P.package(zip_path, tmp_path / "out")
    assert not (tmp_path / "out" / "network.rpk").exists()
    assert "packager exploded" in (tmp_path / "out" / "imx500-package.log").read_text()
    assert main(["package", str(zip_path), "-o", str(tmp_path / "out")]) == 6


def test_package_refuses_bad_packager_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _standin(tmp_path, monkeypatch, 'head -c 5000 /dev/zero > "$out/network.rpk"')
    with pytest.raises(ToolFailedError, match=r"bad network\.rpk"):
        P.package(make_packer_zip(tmp_path / "packerOut.zip"), tmp_path / "out")
    assert not (tmp_path / "out" / "network.rpk").exists()


@pytest.mark.slow
def test_real_packer_out_zip_validates(converted_default) -> None:
    """The packerOut.zip from a real imxconv-pt run passes the checks (manifest target, md5s, sizes)."""
    manifest = P.validate_packer_zip(converted_default.packer_out)
    assert manifest["Target"] == "IMX500"


def test_firmware_packaging_imports_no_torch_or_mct() -> None:
    """A Pi has neither torch nor MCT: firmware_packaging and its CLI commands must not import them."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import firmware_packaging.rpk, firmware_packaging.packager, firmware_packaging.flash\n"
        "import imx500_sam.cli.rpk_inspect, imx500_sam.cli.rpk_intrinsics\n"
        "import imx500_sam.cli.package, imx500_sam.cli.flash\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'model_compression_toolkit', 'onnx'))\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
