"""The host's checks (the conversion toolchain), in display order.

Python, the pinned packages and their known bad combinations, ``pip check``, the torchvision-on-CPU-torch
work-around, Java, ``imxconv-pt`` and its Java back end, memory, the teacher cache, which commands need a
Pi; ``--full`` converts a tiny network end to end. The slow probes (``parallel=True``) run in threads.
Toolchain facts come from facts/toolchain.json; ``packaging``, torch, MCT and ``converter`` are imported
only inside the checks that need them.
"""

from __future__ import annotations

import re
import shlex
import sys
from functools import partial
from pathlib import Path

from imx500_sam.doctor.env import DoctorEnv, mem_available
from imx500_sam.doctor.pins import Pins, canonical, pip_install
from imx500_sam.doctor.probes import (
    Interpreter,
    imxconv_version,
    pip_check,
    probe_mct_import,
    version_tuple,
)
from imx500_sam.doctor.records import Finding, Row
from imx500_sam.doctor.registry import check, define_group
from imx500_sam.errors import first_line, last_line
from imx500_sam.facts import cite, toolchain_fact

CHECKED_PACKAGES: list[str] = toolchain_fact("checked_packages").value
define_group(
    "host",
    title="host (conversion toolchain)",
    dists=[*CHECKED_PACKAGES, "protobuf", "uni-pytorch"],
)


def _requires_python() -> str:
    """imx500-sam's Requires-Python (installed metadata, else pyproject.toml's value)."""
    from importlib import metadata

    try:
        return metadata.metadata("imx500-sam").get("Requires-Python") or ">=3.10"
    except metadata.PackageNotFoundError:
        return ">=3.10"


def python_version(interp: Interpreter) -> Finding:
    """The interpreter's version against imx500-sam's Requires-Python (the Pi's group declares it too)."""
    if interp.version is None:
        return Finding(
            found=f"{interp.python} does not run: {interp.error}", fix="Check the interpreter.", problem=True, stop=True
        )
    spec = _requires_python()
    minimum = version_tuple(spec)
    found = f"{'.'.join(map(str, interp.version))} ({interp.python})"
    if minimum and tuple(interp.version) < minimum:
        return Finding(found=f"{found}; imx500-sam needs {spec}", fix="Use Python 3.10 or newer.", problem=True)
    return Finding(found=found)


check_python = check(name="Python", group="host", required=True)(python_version)


@check(name="machine", group="host", required=False)
def check_machine(interp: Interpreter) -> Finding:
    """imxconv-pt was measured on x86-64 only."""
    if interp.machine in toolchain_fact("converter_measured_machines").value:
        return Finding(found=f"{interp.machine} (imxconv-pt measured here)")
    return Finding(
        found=f"{interp.machine or 'unknown'}: imxconv-pt is measured on x86-64 Linux only",
        fix="Convert on an x86-64 Linux host if imxconv-pt fails here.",
        problem=True,
    )


def package_version(name: str, interp: Interpreter, pins: Pins) -> Finding:
    """One toolchain package: installed, and at the tested version."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    version = interp.version_of(name)
    spec = pins.specs.get(canonical(name), "")
    install = name if name != "imx500-converter" else "imx500-converter[pt]"
    if version is None:
        return Finding(found="not installed", fix=pip_install(interp, pins, [install]), problem=True)
    try:
        in_spec = not spec or Version(version) in SpecifierSet(spec)
    except InvalidVersion:
        in_spec = False
    if in_spec:
        return Finding(found=version + (f" (pinned {spec})" if spec else ""))
    return Finding(
        found=f"{version}, tested: {spec} ({cite(pins.source)})",
        fix=pip_install(interp, pins, [install]),
        warning=True,
    )


PACKAGE_CHECKS = [
    check(name=name, group="host", required=True)(partial(package_version, name)) for name in CHECKED_PACKAGES
]


def check_packages(interp: Interpreter, pins: Pins) -> list[Row]:
    """One row per toolchain package (the checks declared from facts/toolchain.json's ``checked_packages``)."""
    return [row for package in PACKAGE_CHECKS if (row := package(interp, pins)) is not None]


def known_bad(interp: Interpreter) -> list[tuple[str, list[str]]]:
    """Known bad combinations (facts/toolchain.json) present in the interpreter: (why, packages to reinstall)."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    hits = []
    for combo in toolchain_fact("known_bad_combinations").value:
        matched = True
        for name, spec in combo["when"].items():
            version = interp.version_of(name)
            try:
                matched = matched and version is not None and Version(version) in SpecifierSet(spec)
            except InvalidVersion:
                matched = False
        if matched:
            versions = ", ".join(f"{n} {interp.version_of(n)}" for n in combo["when"])
            hits.append((f"{versions}: {combo['why']}", combo["reinstall"]))
    return hits


@check(name="known bad combinations", group="host", required=True, parallel=True)
def check_known_bad(interp: Interpreter, pins: Pins) -> Finding | None:
    """Known bad combinations, with what to reinstall (no row when there is none)."""
    bad = known_bad(interp)
    if not bad:
        return None
    names = sorted({n for _, reinstall in bad for n in reinstall})
    return Finding(found="; ".join(why for why, _ in bad), fix=pip_install(interp, pins, names), problem=True)


@check(name="dependency conflicts", group="host", required=True, parallel=True)
def check_conflicts(interp: Interpreter, pins: Pins, env: DoctorEnv) -> Finding | None:
    """``pip check`` in the probed interpreter (not run when a known bad combination already explains it)."""
    if known_bad(interp):
        return None
    proc = pip_check(interp, env)
    text = (proc.stdout + proc.stderr).strip()
    if proc.returncode == 0:
        return Finding(found="none (pip check)")
    if "No module named pip" in text:
        return Finding(found="pip is not installed in this interpreter", warning=True, optional=True)
    toolchain = {canonical(n) for n in CHECKED_PACKAGES} | {"uni-pytorch", "protobuf"}
    lines = [ln for ln in text.splitlines() if ln.strip()]
    ours = [ln for ln in lines if canonical(ln.split()[0]) in toolchain or any(t in ln.lower() for t in toolchain)]
    found = "; ".join((ours or lines)[:3]) + (f" (+{len(lines) - 3} more)" if len(lines) > 3 else "")
    fix = f"{pip_install(interp, pins, ['imx500-converter[pt]', 'model-compression-toolkit'])}  (then re-run doctor)"
    return Finding(found=found, fix=fix, problem=True, optional=not ours)


@check(name="MCT import (torchvision work-around)", group="host", required=True, parallel=True)
def check_mct_import(interp: Interpreter, env: DoctorEnv, pins: Pins) -> Finding:
    """MCT imports in the probed interpreter through imx500-sam's torchvision work-around (imx500_sam/compat.py)."""
    if interp.version_of("model-compression-toolkit") is None or interp.version_of("torch") is None:
        return Finding(found="torch or MCT is not installed (see above)", problem=True)
    res = probe_mct_import(interp, env)
    if res.error is not None:
        names = (
            ["torch", "torchvision"] if "torchvision" in res.error else ["model-compression-toolkit", "mct-quantizers"]
        )
        return Finding(found=res.error, fix=pip_install(interp, pins, names, force=True), problem=True)
    build = f"CUDA {res.cuda}" if res.cuda else "CPU-only"
    if res.torchvision_ops:
        tv = "its C++ ops load"
    else:
        tv = (
            "its C++ ops cannot load beside this torch (a CUDA torchvision wheel): imx500-sam's import "
            "work-around applies (imx500_sam/compat.py); PicoSAM3 and MCT need none of them"
        )
    onnx = ""
    if version_tuple(res.torch) >= (2, 9):
        onnx = "; torch >= 2.9: ONNX export with dynamo=False (applied by imx500-sam)"
    return Finding(
        found=f"MCT {res.mct} imports; torch {res.torch} ({build}), torchvision {res.torchvision}: {tv}{onnx}"
    )


@check(name="Java", group="host", required=True, parallel=True)
def check_java(env: DoctorEnv) -> Finding:
    """Java at the minimum version (facts/toolchain.json) on PATH: imxconv-pt's back end is Java."""
    from converter.imxconv import JAVA_INSTALL, JAVA_MIN, java_version

    version = java_version(env.search_path)
    if version is None:
        return Finding(found="no `java` on PATH (imxconv-pt's back end is Java)", fix=JAVA_INSTALL, problem=True)
    if version < JAVA_MIN:
        found = f"java {version} at {env.which('java')}; imxconv-pt needs {JAVA_MIN}+"
        return Finding(found=found, fix=JAVA_INSTALL, problem=True)
    return Finding(found=f"java {version} ({env.which('java')})")


@check(name="imxconv-pt", group="host", required=True, parallel=True)
def check_imxconv(interp: Interpreter, env: DoctorEnv, pins: Pins) -> Finding:
    """``imxconv-pt --version --logger-level debug`` starts the front end, uni-pytorch and the Java back end."""
    from converter.imxconv import JAVA_INSTALL, JAVA_MIN, imxconv_path, java_version

    exe = imxconv_path(env.search_path, str(interp.python))
    if exe is None:
        return Finding(found="not found", fix=pip_install(interp, pins, ["imx500-converter[pt]"]), problem=True)
    proc = imxconv_version(exe, env)
    text = proc.stdout + "\n" + proc.stderr
    versions = dict(re.findall(r"^(imxconv-pt|uni-pytorch|SDSPConv)(?: version:)? (\d\S*)", text, re.MULTILINE))
    if proc.returncode == 0 and "SDSPConv" in versions:
        found = ", ".join(f"{k} {v}" for k, v in versions.items()) + " (the Java back end starts)"
        return Finding(found=f"{found}; {exe}")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    java_err = next((ln for ln in lines if re.search(r"\bjava\b", ln, re.IGNORECASE)), None)
    java = java_version(env.search_path)
    if java_err is not None and (java is None or java < JAVA_MIN):
        return Finding(found=f"its Java back end does not start: {java_err}", fix=JAVA_INSTALL, problem=True)
    missing_tool = next((ln for ln in lines if "command not found" in ln), None)
    if missing_tool is not None:
        return Finding(
            found=f"its back-end scripts cannot run: {missing_tool}",
            fix="Put the basic tools (bash, readlink, dirname, tr) on PATH: export PATH=/usr/bin:/bin:$PATH",
            problem=True,
        )
    err = next((ln for ln in lines if "Error" in ln or "ERROR" in ln), last_line(text))
    fix = pip_install(interp, pins, ["imx500-converter[pt]"], force=True)
    what = "the front end fails" if proc.returncode else "the Java back end reports no version"
    return Finding(found=f"{what} (exit {proc.returncode}): {err or 'no output'}", fix=fix, problem=True)


@check(name="free memory", group="host", required=False)
def check_memory(env: DoctorEnv) -> Finding:
    """Free memory against the measured peak of MCT + imxconv-pt in one convert run."""
    need = sum(toolchain_fact("convert_peak_rss_bytes").value.values())
    avail = mem_available(env)
    if avail is None:
        return Finding(found="unknown (no /proc/meminfo)", problem=True)
    found = f"{avail / 1e9:.1f} GB available; a convert peaks near {need / 1e9:.1f} GB (MCT + imxconv-pt, measured)"
    if avail < need:
        return Finding(found=found, fix="Close other programs or add swap before `imx500-sam convert`.", problem=True)
    return Finding(found=found)


@check(name="teacher cache (MobileSAM)", group="host", required=False)
def check_teacher(env: DoctorEnv) -> Finding:
    """The MobileSAM teacher (distill / eval) in the cache."""
    from imx500_sam.train.teachers import mobilesam_cached, mobilesam_dir

    where = mobilesam_dir(env.cache)
    if mobilesam_cached(env.cache):
        return Finding(found=str(where))
    code = "from imx500_sam.train.teachers import fetch_mobilesam; fetch_mobilesam()"
    fix = f"{shlex.quote(str(Path(sys.executable)))} -c {shlex.quote(code)}"
    if env.cache is not None:
        fix = f"IMX500_SAM_CACHE={shlex.quote(str(env.cache))} {fix}"
    return Finding(
        found=f"not fetched ({where}); `imx500-sam distill` / `eval` download it on first use", fix=fix, problem=True
    )


@check(name="Pi-only commands", group="host", required=False)
def check_pi_only(env: DoctorEnv) -> Finding:
    """On a host: the commands that run only on a Raspberry Pi, so that no one expects them to work here."""
    from imx500_sam.pi import PI_ONLY_COMMANDS

    return Finding(
        found="not a Raspberry Pi: " + ", ".join(PI_ONLY_COMMANDS) + " run only on the Pi",
        fix="Run them on the Pi (`flash --host user@pi` reaches Pis from here).",
        problem=True,
    )


@check(name="tiny network end to end", group="host", required=True)
def check_full_conversion(full: bool) -> Finding | None:
    """``--full``: convert a tiny network with the real MCT and imxconv-pt (tens of seconds)."""
    if not full:
        return None
    from converter.selftest import convert_tiny
    from imx500_sam.errors import ImxSamError

    try:
        res = convert_tiny()
    except ImxSamError as exc:
        return Finding(found=str(exc), fix="Fix the rows above, then re-run doctor --full.", problem=True)
    except Exception as exc:  # MCT / torch raise many kinds: report the first line
        return Finding(found=f"{type(exc).__name__}: {first_line(str(exc))}", fix="Run `make setup`.", problem=True)
    return Finding(
        found=f"{res.input_size}x{res.input_size} conv net: MCT PTQ + export {res.quantize_s:.1f} s, imxconv-pt "
        f"{res.convert_s:.1f} s, packerOut.zip {res.packer_out_bytes:,} B, IMX500 memory {res.memory_usage_bytes:,} B"
    )
