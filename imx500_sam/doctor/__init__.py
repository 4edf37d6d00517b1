"""``imx500-sam doctor``: the set-up problems IMX500 users hit, one row each.

A package of checks, each declared once (name, group, required) in a registry (``registry.check``); its body
returns a ``Finding`` (found, problem or warning, the exact command that fixes it). A required check that
fails makes ``doctor`` exit 5, like ToolchainMissingError.

- ``host``: the conversion toolchain (Python, the pinned packages and their known bad combinations, the
  torchvision-on-CPU-torch work-around, Java, ``imxconv-pt`` and its Java back end, memory, the teacher cache;
  ``--full`` converts a tiny network end to end).
- ``pi``: the camera side (OS and model, picamera2 / libcamera from this interpreter and its venv, the sensor
  firmware, the IMX500's v4l subdevice, ``imx500-package``, ``vcgencmd``, the firmware upload state).

Modules: ``records`` (Finding, Row, DoctorReport), ``registry`` (the checks and groups), ``env`` (where it
looks), ``probes`` (the programs it runs), ``pins`` (tested versions), ``host`` and ``pi`` (the checks),
``runner`` (run_doctor), ``render`` (the table). Light package: no torch, MCT or ``converter`` import at
import time (it runs on a Pi that has none of them). Facts come from imx500_sam/facts/ (imx500.json,
toolchain.json); pinned versions from the repository's constraints.txt, else the installed imx500-sam's
requirements.
"""

from __future__ import annotations

from imx500_sam.doctor import host, pi  # noqa: F401  (declare the checks, in display order)
from imx500_sam.doctor.env import PI_DIST_PACKAGES, REPO_ROOT, DoctorEnv, detect_role, os_release, pi_model
from imx500_sam.doctor.host import (
    check_conflicts,
    check_full_conversion,
    check_imxconv,
    check_java,
    check_known_bad,
    check_machine,
    check_mct_import,
    check_memory,
    check_packages,
    check_pi_only,
    check_python,
    check_teacher,
    known_bad,
)
from imx500_sam.doctor.pi import (
    check_firmware,
    check_fw_upload,
    check_packager,
    check_pi_os,
    check_picamera2_version,
    check_sensor,
    check_vcgencmd,
    check_venv,
    find_imx500_subdevs,
)
from imx500_sam.doctor.pins import Pins, canonical, load_pins
from imx500_sam.doctor.probes import Interpreter, probe_interpreter, run
from imx500_sam.doctor.records import DoctorReport, Finding, Role, Row, Status
from imx500_sam.doctor.registry import Check, check, checks
from imx500_sam.doctor.render import render_table
from imx500_sam.doctor.runner import run_doctor

__all__ = [
    "PI_DIST_PACKAGES",
    "REPO_ROOT",
    "Check",
    "DoctorEnv",
    "DoctorReport",
    "Finding",
    "Interpreter",
    "Pins",
    "Role",
    "Row",
    "Status",
    "canonical",
    "check",
    "check_conflicts",
    "check_firmware",
    "check_full_conversion",
    "check_fw_upload",
    "check_imxconv",
    "check_java",
    "check_known_bad",
    "check_machine",
    "check_mct_import",
    "check_memory",
    "check_packager",
    "check_packages",
    "check_pi_only",
    "check_pi_os",
    "check_picamera2_version",
    "check_python",
    "check_sensor",
    "check_teacher",
    "check_vcgencmd",
    "check_venv",
    "checks",
    "detect_role",
    "find_imx500_subdevs",
    "known_bad",
    "load_pins",
    "os_release",
    "pi_model",
    "probe_interpreter",
    "render_table",
    "run",
    "run_doctor",
]
