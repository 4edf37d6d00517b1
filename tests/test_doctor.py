"""``imx500-sam doctor``: real checks on this host, and simulated Raspberry Pi conditions.

Host: the real venv, Java, imxconv-pt (its Java back end) and pip; a PATH without ``java`` is a real missing
Java. Pi: a directory tree stands in for the Pi's / (device-tree model, os-release, firmware files, the
IMX500's sysfs links, /dev nodes, apt's dist-packages holding picamera2 0.3.38's real code and the libcamera
stand-in) and real venvs made with ``python -m venv`` are the Pi's interpreters.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from imx500_sam import doctor as D
from imx500_sam.cli import main
from imx500_sam.errors import DOCTOR_HINT, ToolchainMissingError
from imx500_sam.facts import fact

REPO = Path(__file__).resolve().parents[1]
STANDIN = REPO / "tests" / "support" / "pi_standin"
SITE = Path(metadata.distribution("picamera2").locate_file(""))  # this venv's site-packages (picamera2 0.3.38)


def run_cli(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(args)
    return rc, out.getvalue()


def by_name(rows: list[D.Row]) -> dict[str, D.Row]:
    return {r.name: r for r in rows}


def path_without(tmp: Path, *excluded: str) -> str:
    """A PATH directory with every program on this PATH except ``excluded`` (a real 'not installed')."""
    d = tmp / "bin"
    d.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            src = Path(folder) / name
            if name not in excluded and not (d / name).exists() and os.access(src, os.X_OK) and src.is_file():
                (d / name).symlink_to(src)
    return str(d)


# ------------------------------------------------------------------------------------------------ host


@pytest.mark.slow
def test_doctor_on_this_host_passes_with_real_checks() -> None:
    rc, out = run_cli(["doctor", "--json"])
    report = json.loads(out)
    assert rc == 0 and report["exit_code"] == 0 and report["ok"] and report["role"] == "host"
    rows = {r["name"]: r for r in report["checks"]}
    for name in ["Python", "Java", "imxconv-pt", "MCT import (torchvision work-around)", "dependency conflicts"]:
        assert rows[name]["status"] == "ok", rows[name]
    for name in ["torch", "model-compression-toolkit", "mct-quantizers", "imx500-converter", "onnx", "onnxruntime"]:
        assert rows[name]["found"].startswith(metadata.version(name)), rows[name]
        assert rows[name]["required"]
    # the converter really started its Java back end and reported the installed versions
    assert f"imxconv-pt {metadata.version('imx500-converter')}" in rows["imxconv-pt"]["found"]
    assert f"SDSPConv {metadata.version('sdspconv')}" in rows["imxconv-pt"]["found"]
    assert (
        f"MCT {metadata.version('model-compression-toolkit')} imports"
        in rows["MCT import (torchvision work-around)"]["found"]
    )
    assert all(r["status"] in {"ok", "warn"} for r in report["checks"])
    pi_only = rows["Pi-only commands"]  # flash / package / run --rpk: said plainly on a host
    assert pi_only["status"] == "warn" and "run only on the Pi" in pi_only["found"] and not pi_only["required"]


@pytest.mark.slow
def test_no_java_on_path_fails_java_and_the_converter_back_end(tmp_path: Path, monkeypatch) -> None:
    from converter.imxconv import JAVA_INSTALL

    monkeypatch.setenv("PATH", path_without(tmp_path, "java"))
    rc, out = run_cli(["doctor", "--json"])
    report = json.loads(out)
    assert rc == 5 and report["exit_code"] == 5
    rows = {r["name"]: r for r in report["checks"]}
    failed = {name for name, r in rows.items() if r["status"] == "fail"}
    assert failed == {"Java", "imxconv-pt"}
    assert rows["Java"]["fix"] == JAVA_INSTALL and "no `java` on PATH" in rows["Java"]["found"]
    # imxconv-pt's front end starts, its Java back end does not: found by running it for real
    assert "Java back end does not start" in rows["imxconv-pt"]["found"] and rows["imxconv-pt"]["fix"] == JAVA_INSTALL


def test_human_table_names_every_check() -> None:
    from rich.console import Console

    from converter.imxconv import JAVA_INSTALL

    rows = [D.Row(name="Java", status="fail", found="no `java` on PATH", fix=JAVA_INSTALL)]
    rows.append(
        D.Row(name="teacher cache (MobileSAM)", status="warn", found="not fetched", fix="fetch", required=False)
    )
    console = Console(width=200, record=True)
    console.print(D.render_table(D.DoctorReport(role="host", rows=rows, seconds=1.0)))
    text = console.export_text()
    assert "FAIL" in text and "Java" in text and f"fix: {JAVA_INSTALL}" in text
    assert "1 required check(s) failed: Java (exit 5)" in text


def interp(**versions: str | None) -> D.Interpreter:
    return D.Interpreter(
        python=Path(sys.executable),
        version=(3, 11, 7),
        prefix=sys.prefix,
        base_prefix=sys.base_prefix,
        machine="x86_64",
        dists={k.replace("_", "-"): ({"version": v} if v else None) for k, v in versions.items()},
    )


PINNED = {
    "torch": "2.13.0",
    "torchvision": "0.28.0",
    "model_compression_toolkit": "2.5.1",
    "mct_quantizers": "1.6.0",
    "imx500_converter": "3.19.2",
    "onnx": "1.17.0",
    "onnxruntime": "1.21.1",
    "protobuf": "4.25.5",
}


def test_pins_come_from_constraints_and_agree_with_pyproject() -> None:
    pins = D.load_pins(REPO)
    assert pins.constraints == REPO / "constraints.txt"
    assert pins.specs["model-compression-toolkit"] == "==2.5.1" and pins.specs["torch"] == "==2.13.0"
    installed = D.load_pins(None)  # no constraints.txt: the installed imx500-sam's requirements (pyproject)
    assert "pyproject" in installed.source
    for name, spec in installed.specs.items():
        if spec.startswith("==") and name in pins.specs:
            assert pins.specs[name] == spec, f"constraints.txt and pyproject.toml disagree on {name}"
    checked = ["model-compression-toolkit", "mct-quantizers", "imx500-converter", "onnx", "onnxruntime"]
    assert all(installed.specs[n].startswith("==") for n in checked)


def test_missing_and_off_pin_packages() -> None:
    pins = D.load_pins(REPO)
    rows = by_name(D.check_packages(interp(**{**PINNED, "torch": None, "onnx": "1.18.0"}), pins))
    assert rows["torch"].status == "fail" and rows["torch"].found == "not installed"
    assert rows["torch"].fix.endswith("torch==2.13.0") and f"-c {REPO / 'constraints.txt'}" in rows["torch"].fix
    assert rows["onnx"].status == "warn" and "1.18.0, tested: ==1.17.0" in rows["onnx"].found
    assert rows["onnx"].fix.endswith("onnx==1.17.0")
    assert rows["imx500-converter"].status == "ok"


def test_known_bad_combination_mct_26_with_converter_319() -> None:
    pins = D.load_pins(REPO)
    env = D.DoctorEnv()
    bad = interp(**{**PINNED, "model_compression_toolkit": "2.6.1", "mct_quantizers": "1.7.0"})
    row = D.check_known_bad(bad, pins)
    assert row.status == "fail" and row.required and row.name == "known bad combinations"
    assert D.check_conflicts(bad, pins, env) is None  # pip check is not run: the combination explains it
    assert "model-compression-toolkit 2.6.1, imx500-converter 3.19.2" in row.found and "mct-quantizers" in row.found
    assert row.fix.endswith(
        f"-m pip install -c {REPO / 'constraints.txt'} mct-quantizers==1.6.0 model-compression-toolkit==2.5.1"
    )
    assert D.known_bad(interp(**PINNED)) == [] and D.check_known_bad(interp(**PINNED), pins) is None


def test_low_memory_warns(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "meminfo").write_text("MemTotal: 4000000 kB\nMemAvailable:    1500000 kB\n")
    row = D.check_memory(D.DoctorEnv(root=tmp_path))
    assert row.status == "warn" and not row.required and "1.5 GB available" in row.found


def test_teacher_cache(tmp_path: Path) -> None:
    from imx500_sam.train.teachers import mobilesam_dir

    row = D.check_teacher(D.DoctorEnv(cache=tmp_path))
    assert row.status == "warn" and "fetch_mobilesam()" in row.fix and str(tmp_path) in row.fix
    root = mobilesam_dir(tmp_path)
    (root / "mobile_sam").mkdir(parents=True)
    (root / "mobile_sam" / "__init__.py").write_text("")
    (root / "mobile_sam.pt").write_bytes(b"x")
    assert D.check_teacher(D.DoctorEnv(cache=tmp_path)).status == "ok"


def test_each_check_is_declared_once_with_what_the_runner_gives() -> None:
    from imx500_sam.doctor.registry import INPUTS, check, get_group
    from imx500_sam.doctor.runner import Context
    from imx500_sam.facts import toolchain_fact

    for group in ("host", "pi"):
        names = [c.name for c in D.checks(group)]
        assert len(names) == len(set(names)) and "Python" in names
        assert all(c.group == group for c in D.checks(group))
    assert [c.name for c in D.checks("host")][2:9] == toolchain_fact("checked_packages").value
    with pytest.raises(ValueError, match="declared twice"):
        check(name="Java", group="host", required=True)(lambda env: None)
    with pytest.raises(ValueError, match="not declared"):
        check(name="x", group="nowhere", required=True)(lambda env: None)
    with pytest.raises(TypeError, match="asks for"):
        check(name="x", group="host", required=True)(lambda environment: None)
    assert "x" not in [c.name for c in D.checks("host")]
    context = Context(env=D.DoctorEnv(), group=get_group("host"))
    assert all(hasattr(type(context), name) or name in vars(context) for name in INPUTS)


def test_a_finding_becomes_the_row_its_declaration_says() -> None:
    required = D.Check(name="r", group="host", required=True, body=lambda: None)
    optional = D.Check(name="o", group="pi", required=False, body=lambda: None)
    ok, problem = D.Finding(found="fine"), D.Finding(found="broken", fix="do this", problem=True)
    assert required.row(ok) == D.Row(name="r", status="ok", found="fine", required=True, group="host")
    assert required.row(problem) == D.Row(name="r", status="fail", found="broken", fix="do this", group="host")
    assert optional.row(problem).status == "warn" and not optional.row(problem).required
    soft = required.row(D.Finding(found="old", warning=True))
    assert soft.status == "warn" and soft.required  # works, but worth a look: counts as no failure
    waived = required.row(D.Finding(found="not ours", problem=True, optional=True))
    assert waived.status == "warn" and not waived.required
    assert required.row(None) is None  # the check does not apply here: no row


def test_the_java_minimum_is_one_fact_read_by_imxconv_and_the_makefile() -> None:
    from converter.imxconv import JAVA_INSTALL, JAVA_MIN
    from imx500_sam.facts import toolchain_fact

    minimum, package = toolchain_fact("java_min_major").value, toolchain_fact("java_apt_package").value
    assert minimum == JAVA_MIN and JAVA_INSTALL.endswith(f" {package}")
    # the Makefile reads it with the system python3 (no venv needed): what `make java` would run
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}  # under `make test`
    proc = subprocess.run(
        ["make", "--no-print-directory", "-n", "java"], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert proc.stdout.startswith(f"set -- {minimum} {package};"), proc.stdout


def test_toolchain_missing_errors_point_to_doctor() -> None:
    assert str(ToolchainMissingError("imxconv-pt not found.", hint="Install it.")).endswith(DOCTOR_HINT)
    assert str(ToolchainMissingError("no hint")) == f"no hint {DOCTOR_HINT}"
    assert DOCTOR_HINT.endswith("run `imx500-sam doctor`.")


@pytest.mark.slow
def test_full_converts_a_tiny_network_end_to_end() -> None:
    row = D.check_full_conversion(full=True)
    assert row.status == "ok", row
    assert "packerOut.zip" in row.found and "32x32" in row.found


# ------------------------------------------------------------------------------------------------ Pi


def make_pi_root(root: Path, *, codename: str = "bookworm", firmware: tuple[str, ...] | None = None) -> Path:
    """A Raspberry Pi 5's / as the doctor reads it, with one IMX500 on v4l-subdev2."""
    (root / "proc" / "device-tree").mkdir(parents=True)
    (root / "proc" / "device-tree" / "model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\0")
    (root / "proc" / "meminfo").write_text("MemAvailable: 3000000 kB\n")
    (root / "etc").mkdir()
    pretty = {"bookworm": "Debian GNU/Linux 12 (bookworm)", "bullseye": "Debian GNU/Linux 11 (bullseye)"}[codename]
    (root / "etc" / "os-release").write_text(f'PRETTY_NAME="{pretty}"\nVERSION_CODENAME={codename}\n')
    files = fact("sensor_firmware_files").value if firmware is None else firmware
    for f in files:
        p = root / f.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"\0" * 64)
    # sysfs as the kernel lays it out: the subdev's device is the i2c client, bound to the imx500 module
    dev = root / "sys" / "devices" / "platform" / "axi" / "i2c@88000" / "i2c-6" / "6-001a"
    (dev / "driver").mkdir(parents=True)
    (root / "sys" / "module" / "imx500").mkdir(parents=True)
    (root / "sys" / "firmware" / "devicetree" / "base" / "imx500@1a").mkdir(parents=True)
    (dev / "driver" / "module").symlink_to("../../../../../../module/imx500")
    (dev / "of_node").symlink_to("../../../../../firmware/devicetree/base/imx500@1a")
    v4l = root / "sys" / "class" / "video4linux"
    for n, target in [(0, None), (2, dev)]:
        sub = v4l / f"v4l-subdev{n}"
        sub.mkdir(parents=True)
        if target is not None:
            (sub / "device").symlink_to(os.path.relpath(target, sub))
    (root / "dev").mkdir()
    (root / "dev" / "v4l-subdev2").write_bytes(b"")
    # apt's python3-picamera2 / python3-libcamera: picamera2 0.3.38's real code, libcamera's stand-in
    apt = root / D.PI_DIST_PACKAGES.lstrip("/")
    apt.mkdir(parents=True)
    (apt / "picamera2").symlink_to(SITE / "picamera2")
    for name in ("libcamera", "pykms", "_dummy.py"):
        (apt / name).symlink_to(STANDIN / name)
    return root


def make_venv(path: Path, apt_site: Path | None, *, system_site: bool) -> Path:
    """A real venv; when it sees the system site-packages, apt's dist-packages (and picamera2's pip-side
    dependencies, numpy, libarchive-c, ...) are on its path, as on Raspberry Pi OS."""
    args = [sys.executable, "-m", "venv", "--without-pip"] + (["--system-site-packages"] if system_site else [])
    subprocess.run([*args, str(path)], check=True)
    if system_site and apt_site is not None:
        site = next(path.glob("lib/python3*/site-packages"))
        (site / "zz_system_site.pth").write_text(f"{apt_site}\n{SITE}\n")
    return path / "bin" / "python"


@pytest.fixture
def pi(tmp_path: Path):
    def build(*, system_site: bool = True, **kw) -> D.DoctorEnv:
        root = make_pi_root(tmp_path / "root", **kw)
        python = make_venv(tmp_path / "venv", root / D.PI_DIST_PACKAGES.lstrip("/"), system_site=system_site)
        return D.DoctorEnv(root=root, python=python, path=str(tmp_path / "nobin"), cache=tmp_path / "cache")

    return build


def test_fake_device_tree_model_makes_a_pi(tmp_path: Path) -> None:
    assert D.detect_role(D.DoctorEnv(root=tmp_path)) == "host"
    make_pi_root(tmp_path)
    assert D.pi_model(D.DoctorEnv(root=tmp_path)) == "Raspberry Pi 5 Model B Rev 1.0"
    assert D.detect_role(D.DoctorEnv(root=tmp_path)) == "pi"


def test_simulated_pi_set_up_right_passes(pi) -> None:
    report = D.run_doctor(pi())
    rows = by_name(report.rows)
    assert report.role == "pi" and report.exit_code == 0, [r for r in report.rows if r.status == "fail"]
    assert "Raspberry Pi 5 Model B Rev 1.0" in rows["Raspberry Pi OS"].found
    assert rows["venv sees apt packages"].status == "ok"
    for name in ["libcamera (Python)", "picamera2", "picamera2 IMX500 class"]:
        assert rows[name].status == "ok", rows[name]
    assert rows["picamera2 version"].status == "ok" and "0.3.38" in rows["picamera2 version"].found
    assert rows["IMX500 sensor"].found == "/dev/v4l-subdev2 (6-001a)"
    assert rows["IMX500 firmware"].status == "ok"
    # nothing on PATH: the optional tools warn with their apt command, the exit code stays 0
    assert rows["imx500-package"].status == "warn" and rows["imx500-package"].fix == "sudo apt install -y imx500-tools"
    assert rows["vcgencmd (power)"].status == "warn"
    assert "torch" not in rows  # a Pi needs no host toolchain


def test_venv_without_system_site_packages_fails_with_the_fix(pi) -> None:
    env = pi(system_site=False)
    report = D.run_doctor(env)
    rows = by_name(report.rows)
    assert report.exit_code == 5
    venv = rows["venv sees apt packages"]
    assert venv.status == "fail" and "without --system-site-packages" in venv.found
    cfg = Path(env.python).parent.parent / "pyvenv.cfg"
    assert venv.fix.startswith(
        "sed -i 's/^include-system-site-packages *= *false/include-system-site-packages = true/'"
    )
    assert str(cfg) in venv.fix
    for name in ["libcamera (Python)", "picamera2"]:
        assert rows[name].status == "fail" and "invisible to this venv" in rows[name].found
    # the fix works: apply it (and the system site-packages appear), then the rows pass
    cfg.write_text(
        cfg.read_text().replace("include-system-site-packages = false", "include-system-site-packages = true")
    )
    site = next(Path(env.python).parent.parent.glob("lib/python3*/site-packages"))
    (site / "zz_system_site.pth").write_text(f"{env.root / D.PI_DIST_PACKAGES.lstrip('/')}\n{SITE}\n")
    assert D.run_doctor(env).exit_code == 0


def test_missing_firmware_file_fails_with_the_reinstall(pi) -> None:
    loader, main_fw = fact("sensor_firmware_files").value
    rows = by_name(D.run_doctor(pi(firmware=(loader,))).rows)
    row = rows["IMX500 firmware"]
    assert row.status == "fail" and row.found == f"missing: {main_fw}"
    assert row.fix == "sudo apt install --reinstall -y imx500-firmware && sudo reboot"


def test_no_firmware_at_all_and_no_sensor(tmp_path: Path) -> None:
    env = D.DoctorEnv(root=make_pi_root(tmp_path, firmware=()))
    row = D.check_firmware(env)
    assert row.status == "fail" and row.fix == "sudo apt install -y imx500-all && sudo reboot"
    assert D.check_sensor(env).status == "ok"
    for link in (tmp_path / "sys" / "class" / "video4linux").glob("*/device"):
        link.unlink()
    row = D.check_sensor(env)
    assert row.status == "fail" and row.required and "rpicam-hello --list-cameras" in row.fix


def test_old_os_fails(tmp_path: Path) -> None:
    row = D.check_pi_os(D.DoctorEnv(root=make_pi_root(tmp_path, codename="bullseye")))
    assert row.status == "fail" and "Bookworm or later" in row.found


def test_libcamera_symbol_mismatch_says_full_upgrade(pi, tmp_path: Path) -> None:
    env = pi()
    lib = env.root / D.PI_DIST_PACKAGES.lstrip("/") / "libcamera"
    lib.unlink()
    lib.mkdir()
    # what an apt upgrade that left the bindings and libcamera.so at different versions raises on import
    (lib / "__init__.py").write_text(
        "raise ImportError('/usr/lib/python3/dist-packages/libcamera/_libcamera.cpython-311-aarch64-linux-gnu.so: "
        "undefined symbol: _ZN9libcamera7Request8reuseEv')\n"
    )
    rows = by_name(D.run_doctor(env).rows)
    for name in ["libcamera (Python)", "picamera2"]:
        assert rows[name].status == "fail" and "undefined symbol" in rows[name].found
        assert rows[name].fix.startswith("sudo apt update && sudo apt full-upgrade -y && sudo reboot")


def test_old_picamera2_warns_and_readable_fw_progress(pi) -> None:
    env = pi()
    apt = env.root / D.PI_DIST_PACKAGES.lstrip("/")
    info = apt / "picamera2-0.3.30.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: picamera2\nVersion: 0.3.30\n")
    fw = env.root / "sys" / "kernel" / "debug" / "imx500-fw:6-001a"
    fw.mkdir(parents=True)
    (fw / "fw_progress").write_text("2 1048576 1048576\n")
    rows = by_name(D.run_doctor(env).rows)
    row = rows["picamera2 version"]
    assert row.status == "warn" and "0.3.30" in row.found and "0.3.32" in row.found
    assert rows["firmware upload (debugfs)"].found.startswith("last upload: network firmware, complete")


def test_pip_picamera2_shadowing_apt_warns(pi) -> None:
    env = pi()
    site = next(Path(env.python).parent.parent.glob("lib/python3*/site-packages"))
    (site / "picamera2").symlink_to(SITE / "picamera2")  # what `pip install picamera2` in the venv leaves
    row = by_name(D.run_doctor(env).rows)["picamera2"]
    assert row.status == "warn" and "shadowing the apt package" in row.found
    assert row.fix == f"{env.python} -m pip uninstall -y picamera2"


def test_vcgencmd_power_rails(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "vcgencmd"
    # `vcgencmd pmic_read_adc` output lines as a Pi 5 prints them (shared/notes/imx500-runtime.md)
    tool.write_text(
        '#!/bin/sh\n[ "$1" = pmic_read_adc ] || exit 1\n'
        "echo '  VDD_CORE_A current(7)=1.42880000A'\necho '  VDD_CORE_V volt(15)=0.72000000V'\n"
        "echo '     EXT5V_V volt(24)=5.05716000V'\n"
    )
    tool.chmod(0o755)
    row = D.check_vcgencmd(D.DoctorEnv(root=tmp_path, path=str(bin_dir)))
    assert row.status == "ok" and row.found == "pmic_read_adc: 1 rail current(s) readable"


def test_doctor_on_a_pi_imports_no_host_toolchain(pi) -> None:
    """The Pi has no torch, MCT or converter: the doctor's Pi path must not import them."""
    env = pi()
    code = (
        "import json, sys; from pathlib import Path; from imx500_sam.doctor import DoctorEnv, run_doctor; "
        "r = run_doctor(DoctorEnv(root=Path(sys.argv[1]), python=Path(sys.argv[2]), path=sys.argv[3])); "
        "heavy = {'torch', 'model_compression_toolkit', 'converter', 'onnx', 'onnxruntime', 'packaging'}; "
        "print(json.dumps([r.role, r.exit_code, sorted(m for m in sys.modules if m.split('.')[0] in heavy)]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(env.root), str(env.python), str(env.path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == ["pi", 0, []]


def test_imxconv_back_end_without_basic_tools_on_path(tmp_path: Path) -> None:
    """The converter's back end is shell scripts + Java: with an empty PATH its front end starts, the rest cannot."""
    (tmp_path / "empty").mkdir()
    env = D.DoctorEnv(path=str(tmp_path / "empty"))
    row = D.check_imxconv(D.probe_interpreter(env, ["imx500-converter"], []), env, D.load_pins(REPO))
    assert row.status == "fail" and "command not found" in row.found and "export PATH=" in row.fix
