"""The Raspberry Pi's checks (the camera side), in display order.

Model and OS, the interpreter and its venv, picamera2 / libcamera importable from it, the sensor firmware,
the IMX500's v4l subdevice, the last firmware upload, ``imx500-package``, ``vcgencmd``. IMX500 / Pi facts
(firmware paths, apt packages, sysfs layout, OS codenames, minimum picamera2) come from facts/imx500.json.
Nothing here imports torch, MCT, ``packaging`` or ``converter`` (a Pi has none of them).
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from firmware_packaging.packager import PACKAGER
from imx500_sam.doctor.env import PI_DIST_PACKAGES, DoctorEnv, os_release, pi_model
from imx500_sam.doctor.host import python_version
from imx500_sam.doctor.probes import Interpreter, pmic_read_adc, version_tuple
from imx500_sam.doctor.records import Finding
from imx500_sam.doctor.registry import check, define_group
from imx500_sam.errors import clip_words
from imx500_sam.facts import fact

IMX500_MODULE = "picamera2.devices.imx500"
define_group(
    "pi",
    title="Raspberry Pi (camera side)",
    dists=["picamera2"],
    modules=["libcamera", "picamera2", IMX500_MODULE],
)


@check(name="Raspberry Pi OS", group="pi", required=True)
def check_pi_os(env: DoctorEnv) -> Finding:
    """Raspberry Pi model and OS release (the minimum codename in facts/imx500.json or later)."""
    model = pi_model(env) or "not a Raspberry Pi"
    rel = os_release(env)
    codename = rel.get("VERSION_CODENAME", "")
    found = f"{model}; {rel.get('PRETTY_NAME', 'unknown OS')}"
    minimum = fact("pi_os_min_codename").value
    order = fact("debian_codenames").value
    if codename in order and order.index(codename) < order.index(minimum):
        return Finding(
            found=f"{found}: the AI Camera needs {minimum.capitalize()} or later",
            fix=f"Flash Raspberry Pi OS ({minimum.capitalize()} or later, 64-bit) with Raspberry Pi Imager.",
            problem=True,
        )
    return Finding(found=found)


check_pi_python = check(name="Python", group="pi", required=True)(python_version)


def _apt_has(env: DoctorEnv, module: str) -> bool:
    return env.file(f"{PI_DIST_PACKAGES}/{module}").exists()


@check(name="venv sees apt packages", group="pi", required=True)
def check_venv(interp: Interpreter) -> Finding:
    """A venv on the Pi must see the system site-packages (picamera2 and libcamera come from apt)."""
    if not interp.in_venv:
        return Finding(found=f"system interpreter ({interp.prefix})")
    cfg = Path(interp.prefix) / "pyvenv.cfg"
    if interp.sees_system_site:
        return Finding(found=f"{interp.prefix}: include-system-site-packages = true")
    fix = (
        f"sed -i 's/^include-system-site-packages *= *false/include-system-site-packages = true/' "
        f"{shlex.quote(str(cfg))}   (or make it again: "
        f"python3 -m venv --system-site-packages {shlex.quote(interp.prefix)})"
    )
    return Finding(
        found=f"{interp.prefix} was made without --system-site-packages: apt's picamera2 and libcamera are invisible",
        fix=fix,
        problem=True,
    )


def imports(module: str, apt_pkg: str, interp: Interpreter, env: DoctorEnv) -> Finding:
    """``module`` imports in the probed interpreter; when not, the fix that matches the cause."""
    info = interp.modules.get(module, {"ok": False, "error": "not probed"})
    top = module.split(".")[0]
    if info.get("ok"):
        where = info.get("file") or "?"
        apt_dir = str(env.file(PI_DIST_PACKAGES))
        if _apt_has(env, top) and not str(where).startswith(apt_dir):
            return Finding(
                found=f"imports from {where}, shadowing the apt package in {apt_dir}",
                fix=f"{shlex.quote(str(interp.python))} -m pip uninstall -y {top}",
                warning=True,
            )
        return Finding(found=f"imports ({where})")
    err = str(info.get("error", ""))
    if "undefined symbol" in err or (".so" in err and "cannot open" in err):
        fix = "sudo apt update && sudo apt full-upgrade -y && sudo reboot   (the bindings and libcamera must match)"
        return Finding(found=f"does not import: {err}", fix=fix, problem=True)
    if "No module named" in err and interp.in_venv and not interp.sees_system_site and _apt_has(env, top):
        return Finding(
            found=f"installed by apt, invisible to this venv: {err}", fix="Fix the venv (row above).", problem=True
        )
    if "No module named" in err and not _apt_has(env, top):
        return Finding(found=f"not installed: {err}", fix=f"sudo apt install -y {apt_pkg}", problem=True)
    return Finding(found=f"does not import: {err}", fix=f"sudo apt install --reinstall -y {apt_pkg}", problem=True)


@check(name="libcamera (Python)", group="pi", required=True)
def check_libcamera(interp: Interpreter, env: DoctorEnv) -> Finding:
    """libcamera's Python bindings (apt's python3-libcamera)."""
    return imports("libcamera", fact("pi_apt_packages").value["libcamera"], interp, env)


@check(name="picamera2", group="pi", required=True)
def check_picamera2(interp: Interpreter, env: DoctorEnv) -> Finding:
    """picamera2 (apt's python3-picamera2)."""
    return imports("picamera2", fact("pi_apt_packages").value["picamera2"], interp, env)


@check(name="picamera2 IMX500 class", group="pi", required=True)
def check_picamera2_imx500(interp: Interpreter, env: DoctorEnv) -> Finding | None:
    """picamera2's IMX500 class (no row when picamera2 itself does not import)."""
    if not interp.imports("picamera2"):
        return None
    return imports(IMX500_MODULE, fact("pi_apt_packages").value["picamera2"], interp, env)


@check(name="picamera2 version", group="pi", required=False)
def check_picamera2_version(interp: Interpreter) -> Finding | None:
    """picamera2 version: tensor injection needs the minimum in facts/imx500.json (no row without picamera2)."""
    if not interp.imports("picamera2"):
        return None
    minimum = fact("picamera2_min_tensor_injection").value
    version = interp.version_of("picamera2")
    if version is None:
        return Finding(found="unknown (no package metadata)", problem=True)
    if version_tuple(version) < version_tuple(minimum):
        return Finding(
            found=f"{version}: tensor injection (on-sensor accuracy checks) needs {minimum} or newer",
            fix="sudo apt update && sudo apt full-upgrade -y",
            problem=True,
        )
    return Finding(found=f"{version} (>= {minimum}: tensor injection available)")


@check(name="IMX500 firmware", group="pi", required=True)
def check_firmware(env: DoctorEnv) -> Finding:
    """The IMX500's loader and main firmware files."""
    files = fact("sensor_firmware_files").value
    apt = fact("pi_apt_packages").value
    missing = [f for f in files if not env.file(f).is_file()]
    if not missing:
        return Finding(found=", ".join(f"{Path(f).name} {env.file(f).stat().st_size:,} B" for f in files))
    if len(missing) == len(files):
        fix = f"sudo apt install -y {apt['all']} && sudo reboot"
    else:
        fix = f"sudo apt install --reinstall -y {apt['firmware']} && sudo reboot"
    return Finding(found="missing: " + ", ".join(missing), fix=fix, problem=True)


def find_imx500_subdevs(env: DoctorEnv) -> list[tuple[str, str]]:
    """(v4l-subdevN, device id) of every IMX500, found the way picamera2's IMX500 class finds it."""
    spec = fact("imx500_subdev_sysfs").value
    base = env.file(str(Path(spec["glob"]).parent))
    found = []
    for d in sorted(base.glob(Path(spec["glob"]).name), key=lambda p: int(re.sub(r"\D", "", p.name) or 0)):
        module, of_node = d / spec["driver_module_link"], d / spec["of_node_link"]
        try:
            if module.is_symlink() and of_node.is_symlink() and spec["module_contains"] in os.readlink(module):
                found.append((d.name, os.readlink(d / "device").rstrip("/").split("/")[-1]))
        except OSError:
            continue
    return found


@check(name="IMX500 sensor", group="pi", required=True)
def check_sensor(env: DoctorEnv) -> Finding:
    """An IMX500 on a v4l subdevice (the camera is connected and its driver bound)."""
    subdevs = find_imx500_subdevs(env)
    if not subdevs:
        return Finding(
            found="no v4l subdevice with the imx500 driver (camera not detected)",
            fix="Power off, re-seat the ribbon cable (contacts facing the right way), boot; check with "
            "`rpicam-hello --list-cameras` (camera_auto_detect=1 in /boot/firmware/config.txt).",
            problem=True,
        )
    missing = [name for name, _ in subdevs if not env.file(f"/dev/{name}").exists()]
    found = ", ".join(f"/dev/{name} ({dev})" for name, dev in subdevs)
    if missing:
        return Finding(found=f"{found}; device node missing: {missing[0]}", fix="sudo reboot", problem=True)
    return Finding(found=found)


@check(name="firmware upload (debugfs)", group="pi", required=False)
def check_fw_upload(env: DoctorEnv) -> Finding:
    """The last firmware upload the driver reports in debugfs (a cached network is not uploaded again)."""
    spec = fact("imx500_fw_debugfs").value
    subdevs = find_imx500_subdevs(env)
    if not subdevs:
        return Finding(found="no sensor (see above)")
    shown = spec["fw_progress"].format(device=subdevs[0][1])
    try:
        fields = env.file(shown).read_text().split()
    except PermissionError:
        return Finding(found=f"{shown} is readable by root only (sudo to see it)")
    except OSError:
        return Finding(found=f"{shown} not present (debugfs not mounted?)")
    try:
        stage, done, size = (int(x) for x in fields[:3])
    except ValueError:
        return Finding(found=f"unreadable: {clip_words(' '.join(fields), 80)}")
    stages = spec["stages"]
    name = stages[stage] if 0 <= stage < len(stages) else f"stage {stage}"
    state = "complete" if size and done >= size else f"{done:,} of {size:,} B"
    note = " (the camera caches the last network: the same .rpk again is not re-uploaded)" if name == "network" else ""
    return Finding(found=f"last upload: {name} firmware, {state}{note}")


@check(name=PACKAGER, group="pi", required=False)
def check_packager(env: DoctorEnv) -> Finding:
    """Sony's imx500-package (packerOut.zip -> network.rpk), from imx500-tools."""
    from firmware_packaging.packager import packager_available

    if packager_available(env.search_path):
        return Finding(found=str(env.which(PACKAGER)))
    return Finding(
        found="not installed: `imx500-sam package` needs it",
        fix=f"sudo apt install -y {fact('pi_apt_packages').value['packager']}",
        problem=True,
    )


@check(name="vcgencmd (power)", group="pi", required=False)
def check_vcgencmd(env: DoctorEnv) -> Finding:
    """``vcgencmd pmic_read_adc`` for power readings (Pi 5)."""
    exe = env.which("vcgencmd")
    if exe is None:
        return Finding(
            found="not on PATH", fix=f"sudo apt install -y {fact('pi_apt_packages').value['vcgencmd']}", problem=True
        )
    proc = pmic_read_adc(exe, env)
    rails = len(re.findall(r"current\(\d+\)=", proc.stdout))
    if proc.returncode == 0 and rails:
        return Finding(found=f"pmic_read_adc: {rails} rail current(s) readable")
    return Finding(
        found=f"{exe} present, pmic_read_adc gives no rail currents (a Pi 5 has them)",
        fix="Measure power with a USB power meter instead.",
        problem=True,
    )
