"""``imx500-sam doctor``: the set-up problems IMX500 users hit, one row each.

Every check is a ``Row``: name, status (ok / warn / fail), what was found, the exact command that fixes it,
and whether it is required (a required check that fails makes ``doctor`` exit 5, like ToolchainMissingError).

On a host the rows cover the conversion toolchain (Python, the pinned packages and their known bad
combinations, the torchvision-on-CPU-torch work-around, Java, ``imxconv-pt`` and its Java back end, memory,
the teacher cache; ``--full`` converts a tiny network end to end). On a Raspberry Pi they cover the camera
side (OS and model, picamera2 / libcamera from this interpreter and its venv, the sensor firmware, the
IMX500's v4l subdevice, ``imx500-package``, ``vcgencmd``, the firmware upload state).

Light module: no torch, MCT or ``converter`` import at import time (it runs on a Pi that has none of them).
Every probe reads files under ``DoctorEnv.root``, runs tools found on ``DoctorEnv.path`` and inspects the
interpreter ``DoctorEnv.python`` in a subprocess, so tests can simulate a Pi with a directory tree and a venv.
IMX500 / Pi facts come from ``imx500_sam.facts`` (imx500.json); toolchain facts from facts/toolchain.json;
pinned versions from the repository's constraints.txt, else from the installed imx500-sam's requirements.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from imx500_sam.errors import ExitCode, clip_words, first_line, last_line
from imx500_sam.facts import cite, fact, toolchain_fact
from imx500_sam.procs import map_in_threads, run_captured

Status = Literal["ok", "warn", "fail"]
Role = Literal["host", "pi"]
REPO_ROOT = Path(__file__).resolve().parents[1]
PI_DIST_PACKAGES = "/usr/lib/python3/dist-packages"  # where Debian's python3-* packages install
_PROBE_MARK = "@@imx500-sam-doctor@@"
_OS_ORDER = ["stretch", "buster", "bullseye", "bookworm", "trixie", "forky"]


@dataclass(frozen=True)
class Row:
    """One check: ``status`` ok / warn / fail, what was ``found``, the command that fixes it."""

    name: str
    status: Status
    found: str
    fix: str | None = None
    required: bool = True
    group: str = "host"


def problem(required: bool) -> Status:
    """The status of a check that found a problem: fail when required, warn otherwise."""
    return "fail" if required else "warn"


@dataclass(frozen=True)
class DoctorEnv:
    """Where the checks look. Defaults: this machine, this interpreter, this PATH."""

    root: Path = Path("/")  # prefix for /proc, /sys, /etc, /lib/firmware, /dev, /usr/lib/python3
    python: Path = field(default_factory=lambda: Path(sys.executable))
    path: str | None = None  # PATH for tools (java, imxconv-pt, imx500-package, vcgencmd); None: $PATH
    cache: Path | None = None  # imx500-sam cache; None: imx500_sam.defaults.cache_dir()
    repo: Path | None = REPO_ROOT  # where constraints.txt is looked for
    role: Role | None = None  # None: detect from <root>/proc/device-tree/model

    def file(self, absolute: str) -> Path:
        """``absolute`` (a path on the target machine) under ``root``."""
        return self.root / absolute.lstrip("/")

    @property
    def search_path(self) -> str:
        return self.path if self.path is not None else os.environ.get("PATH", os.defpath)

    def which(self, name: str) -> str | None:
        return shutil.which(name, path=self.search_path)

    def run_env(self) -> dict[str, str]:
        return dict(os.environ, PATH=self.search_path)


def run(
    args: Sequence[str], env: DoctorEnv, timeout: float = 120.0, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a program (argument list, never a shell); output as text. OSError / timeout become rc 127 / 124.

    In a process group of its own (imx500_sam.procs): a timeout, a stop or this process's death ends the
    program and everything it started (imxconv-pt's shell scripts and JVMs included).
    """
    try:
        return run_captured(list(args), name=Path(str(args[0])).name, timeout_s=timeout, env=env.run_env(), cwd=cwd)
    except OSError as exc:
        return subprocess.CompletedProcess(list(args), 127, "", str(exc))


# --------------------------------------------------------------------------------------------- the interpreter

# Runs inside the probed interpreter (stdlib only; any Python 3.8+): its version, venv, distributions, imports.
_PROBE_SRC = r"""
import importlib, json, os, platform, sys
sys.path[:] = [p for p in sys.path if p not in ("", ".", os.getcwd())]
import importlib.metadata as md
names, modules = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {"version": list(sys.version_info[:3]), "executable": sys.executable, "prefix": sys.prefix,
       "base_prefix": getattr(sys, "base_prefix", sys.prefix), "machine": platform.machine(),
       "dists": {}, "modules": {}}
for n in names:
    try:
        d = md.distribution(n)
        out["dists"][n] = {"version": d.version, "location": str(d.locate_file(""))}
    except Exception:
        out["dists"][n] = None
for m in modules:
    try:
        mod = importlib.import_module(m)
        out["modules"][m] = {"ok": True, "file": getattr(mod, "__file__", None)}
    except BaseException as e:
        out["modules"][m] = {"ok": False, "error": ("%s: %s" % (type(e).__name__, e)).strip()[:300]}
print("\n@@imx500-sam-doctor@@" + json.dumps(out))
"""


@dataclass(frozen=True)
class Interpreter:
    """What the probe saw in one Python interpreter."""

    python: Path
    version: tuple[int, int, int] | None = None
    prefix: str = ""
    base_prefix: str = ""
    machine: str = ""
    dists: Mapping[str, Mapping[str, str] | None] = field(default_factory=dict)
    modules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    error: str | None = None  # the probe itself failed

    @property
    def in_venv(self) -> bool:
        return bool(self.prefix) and self.prefix != self.base_prefix

    def pyvenv_cfg(self) -> dict[str, str]:
        """``key = value`` lines of the venv's pyvenv.cfg (empty outside a venv)."""
        cfg = Path(self.prefix) / "pyvenv.cfg"
        if not self.in_venv or not cfg.is_file():
            return {}
        out = {}
        for line in cfg.read_text(errors="replace").splitlines():
            if "=" in line:
                key, _, value = line.partition("=")
                out[key.strip().lower()] = value.strip()
        return out

    @property
    def sees_system_site(self) -> bool:
        return not self.in_venv or self.pyvenv_cfg().get("include-system-site-packages", "false").lower() == "true"

    def version_of(self, dist: str) -> str | None:
        info = self.dists.get(dist)
        return info["version"] if info else None


def probe_interpreter(env: DoctorEnv, dists: Sequence[str], modules: Sequence[str]) -> Interpreter:
    """Run the probe in ``env.python``: versions of ``dists``, and which ``modules`` import (and from where)."""
    proc = run([str(env.python), "-c", _PROBE_SRC, json.dumps(list(dists)), json.dumps(list(modules))], env, 120)
    marker = proc.stdout.rfind(_PROBE_MARK)
    if marker < 0:
        why = last_line(proc.stderr) or f"exit code {proc.returncode}"
        return Interpreter(python=env.python, error=why)
    data = json.loads(proc.stdout[marker + len(_PROBE_MARK) :].strip().splitlines()[0])
    return Interpreter(
        python=env.python,
        version=tuple(data["version"]),  # type: ignore[arg-type]
        prefix=data["prefix"],
        base_prefix=data["base_prefix"],
        machine=data["machine"],
        dists=data["dists"],
        modules=data["modules"],
    )


def _requires_python() -> str:
    """imx500-sam's Requires-Python (installed metadata, else pyproject.toml's value)."""
    from importlib import metadata

    try:
        return metadata.metadata("imx500-sam").get("Requires-Python") or ">=3.10"
    except metadata.PackageNotFoundError:
        return ">=3.10"


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def check_python(interp: Interpreter, group: str) -> Row:
    """The interpreter's version against imx500-sam's Requires-Python."""
    if interp.version is None:
        return Row(
            "Python", "fail", f"{interp.python} does not run: {interp.error}", "Check the interpreter.", True, group
        )
    spec = _requires_python()
    minimum = _version_tuple(spec)
    found = f"{'.'.join(map(str, interp.version))} ({interp.python})"
    if minimum and tuple(interp.version) < minimum:
        return Row("Python", "fail", f"{found}; imx500-sam needs {spec}", "Use Python 3.10 or newer.", True, group)
    return Row("Python", "ok", found, None, True, group)


# --------------------------------------------------------------------------------------------- role


def pi_model(env: DoctorEnv) -> str | None:
    """The Raspberry Pi model of ``env``'s machine, or None when it is not a Pi (imx500_sam.pi)."""
    from imx500_sam.pi import pi_model as model_under

    return model_under(env.root)


def check_pi_only(env: DoctorEnv) -> Row:
    """On a host: the commands that run only on a Raspberry Pi, so that no one expects them to work here."""
    from imx500_sam.pi import PI_ONLY_COMMANDS

    return Row(
        "Pi-only commands",
        "warn",
        "not a Raspberry Pi: " + ", ".join(PI_ONLY_COMMANDS) + " run only on the Pi",
        "Run them on the Pi (`flash --host user@pi` reaches Pis from here).",
        False,
    )


def detect_role(env: DoctorEnv) -> Role:
    """``pi`` on a Raspberry Pi (its device-tree model says so), else ``host``."""
    return env.role or ("pi" if pi_model(env) else "host")


def os_release(env: DoctorEnv) -> dict[str, str]:
    """<root>/etc/os-release as a dict."""
    out = {}
    try:
        for line in env.file("/etc/os-release").read_text(errors="replace").splitlines():
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip()] = value.strip().strip('"')
    except OSError:
        pass
    return out


# --------------------------------------------------------------------------------------------- host checks


def canonical(name: str) -> str:
    """PEP 503 name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pins:
    """Tested version specifiers by canonical package name, and where they came from."""

    specs: Mapping[str, str]
    source: str
    constraints: Path | None = None


def load_pins(repo: Path | None) -> Pins:
    """constraints.txt in ``repo`` when present; else the installed imx500-sam's own requirements (pyproject)."""
    from packaging.requirements import InvalidRequirement, Requirement

    constraints = repo / "constraints.txt" if repo is not None else None
    if constraints is not None and constraints.is_file():
        specs = {}
        for line in constraints.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            specs[canonical(req.name)] = str(req.specifier)
        return Pins(specs, str(constraints), constraints)
    from importlib import metadata

    specs = {}
    try:
        for line in metadata.requires("imx500-sam") or []:
            req = Requirement(line)
            if str(req.specifier):
                specs.setdefault(canonical(req.name), str(req.specifier))
    except metadata.PackageNotFoundError:
        return Pins({}, "none (no constraints.txt and imx500-sam is not installed)")
    return Pins(specs, "imx500-sam's requirements (pyproject.toml)")


def _pip(interp: Interpreter, pins: Pins, names: Sequence[str]) -> str:
    """The pip command that installs ``names`` at their pinned versions into the probed interpreter."""
    reqs = []
    for n in names:
        spec = pins.specs.get(canonical(n.split("[")[0]), "")
        reqs.append(shlex.quote(f"{n}{spec}" if spec else n))
    con = f" -c {shlex.quote(str(pins.constraints))}" if pins.constraints else ""
    return f"{shlex.quote(str(interp.python))} -m pip install{con} {' '.join(reqs)}"


def check_packages(interp: Interpreter, pins: Pins) -> list[Row]:
    """One row per toolchain package: installed, and at the tested version."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    rows = []
    for name in toolchain_fact("checked_packages").value:
        version = interp.version_of(name)
        spec = pins.specs.get(canonical(name), "")
        install = name if name != "imx500-converter" else "imx500-converter[pt]"
        if version is None:
            rows.append(Row(name, "fail", "not installed", _pip(interp, pins, [install]), True))
            continue
        try:
            in_spec = not spec or Version(version) in SpecifierSet(spec)
        except InvalidVersion:
            in_spec = False
        if in_spec:
            rows.append(Row(name, "ok", version + (f" (pinned {spec})" if spec else ""), None, True))
        else:
            rows.append(
                Row(
                    name,
                    "warn",
                    f"{version}, tested: {spec} ({cite(pins.source)})",
                    _pip(interp, pins, [install]),
                    True,
                )
            )
    return rows


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


def check_conflicts(interp: Interpreter, pins: Pins, env: DoctorEnv) -> Row:
    """Known bad combinations first (with what to reinstall), then ``pip check`` in the probed interpreter."""
    bad = known_bad(interp)
    if bad:
        names = sorted({n for _, reinstall in bad for n in reinstall})
        return Row("known bad combinations", "fail", "; ".join(why for why, _ in bad), _pip(interp, pins, names))
    proc = run([str(interp.python), "-m", "pip", "check"], env, 120)
    text = (proc.stdout + proc.stderr).strip()
    if proc.returncode == 0:
        return Row("dependency conflicts", "ok", "none (pip check)", None)
    if "No module named pip" in text:
        return Row("dependency conflicts", "warn", "pip is not installed in this interpreter", None, False)
    toolchain = {canonical(n) for n in toolchain_fact("checked_packages").value} | {"uni-pytorch", "protobuf"}
    lines = [ln for ln in text.splitlines() if ln.strip()]
    ours = [ln for ln in lines if canonical(ln.split()[0]) in toolchain or any(t in ln.lower() for t in toolchain)]
    found = "; ".join((ours or lines)[:3]) + (f" (+{len(lines) - 3} more)" if len(lines) > 3 else "")
    fix = f"{_pip(interp, pins, ['imx500-converter[pt]', 'model-compression-toolkit'])}  (then re-run doctor)"
    return Row("dependency conflicts", "fail" if ours else "warn", found, fix, bool(ours))


_MCT_PROBE_SRC = r"""
import json
import torch
from imx500_sam.compat import import_mct, import_torchvision
tv = import_torchvision()
try:
    from torchvision.extension import _has_ops
    ops = bool(_has_ops())
except Exception:
    ops = False
mct = import_mct()
print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "torchvision": tv.__version__,
                  "tv_ops": ops, "mct": getattr(mct, "__version__", "?")}))
"""


def check_mct_import(interp: Interpreter, env: DoctorEnv, pins: Pins) -> Row:
    """MCT imports in the probed interpreter through imx500-sam's torchvision work-around (imx500_sam/compat.py)."""
    if interp.version_of("model-compression-toolkit") is None or interp.version_of("torch") is None:
        return Row("MCT import (torchvision work-around)", "fail", "torch or MCT is not installed (see above)", None)
    proc = run([str(interp.python), "-c", _MCT_PROBE_SRC], env, 300, cwd=str(REPO_ROOT))
    last = last_line(proc.stdout)
    if proc.returncode != 0 or not last.startswith("{"):
        err = last_line(proc.stderr) or f"exit code {proc.returncode}"
        names = ["model-compression-toolkit", "mct-quantizers"]
        if "torchvision" in err:
            names = ["torch", "torchvision"]
        fix = _pip(interp, pins, names).replace(" install", " install --force-reinstall", 1)
        return Row("MCT import (torchvision work-around)", "fail", err, fix)
    info = json.loads(last)
    build = f"CUDA {info['cuda']}" if info["cuda"] else "CPU-only"
    if info["tv_ops"]:
        tv = "its C++ ops load"
    else:
        tv = (
            "its C++ ops cannot load beside this torch (a CUDA torchvision wheel): imx500-sam's import "
            "work-around applies (imx500_sam/compat.py); PicoSAM3 and MCT need none of them"
        )
    onnx = ""
    if _version_tuple(info["torch"]) >= (2, 9):
        onnx = "; torch >= 2.9: ONNX export with dynamo=False (applied by imx500-sam)"
    return Row(
        "MCT import (torchvision work-around)",
        "ok",
        f"MCT {info['mct']} imports; torch {info['torch']} ({build}), torchvision {info['torchvision']}: {tv}{onnx}",
        None,
    )


def check_java(env: DoctorEnv) -> Row:
    """Java >= 17 on PATH (imxconv-pt's back end is Java)."""
    from converter.imxconv import JAVA_INSTALL, JAVA_MIN, java_version

    version = java_version(env.search_path)
    if version is None:
        return Row("Java", "fail", "no `java` on PATH (imxconv-pt's back end is Java)", JAVA_INSTALL)
    if version < JAVA_MIN:
        return Row("Java", "fail", f"java {version} at {env.which('java')}; imxconv-pt needs {JAVA_MIN}+", JAVA_INSTALL)
    return Row("Java", "ok", f"java {version} ({env.which('java')})", None)


def check_imxconv(interp: Interpreter, env: DoctorEnv, pins: Pins) -> Row:
    """``imxconv-pt --version --logger-level debug`` starts the front end, uni-pytorch and the Java back end."""
    from converter.imxconv import JAVA_INSTALL, JAVA_MIN, imxconv_path, java_version

    exe = imxconv_path(env.search_path, str(interp.python))
    if exe is None:
        return Row("imxconv-pt", "fail", "not found", _pip(interp, pins, ["imx500-converter[pt]"]))
    proc = run([str(exe), "--version", "--logger-level", "debug"], env, 180)
    text = proc.stdout + "\n" + proc.stderr
    versions = dict(re.findall(r"^(imxconv-pt|uni-pytorch|SDSPConv)(?: version:)? (\d\S*)", text, re.MULTILINE))
    if proc.returncode == 0 and "SDSPConv" in versions:
        found = ", ".join(f"{k} {v}" for k, v in versions.items()) + " (the Java back end starts)"
        return Row("imxconv-pt", "ok", f"{found}; {exe}", None)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    java_err = next((ln for ln in lines if re.search(r"\bjava\b", ln, re.IGNORECASE)), None)
    java = java_version(env.search_path)
    if java_err is not None and (java is None or java < JAVA_MIN):
        return Row("imxconv-pt", "fail", f"its Java back end does not start: {java_err}", JAVA_INSTALL)
    missing_tool = next((ln for ln in lines if "command not found" in ln), None)
    if missing_tool is not None:
        return Row(
            "imxconv-pt",
            "fail",
            f"its back-end scripts cannot run: {missing_tool}",
            "Put the basic tools (bash, readlink, dirname, tr) on PATH: export PATH=/usr/bin:/bin:$PATH",
        )
    err = next((ln for ln in lines if "Error" in ln or "ERROR" in ln), last_line(text))
    fix = _pip(interp, pins, ["imx500-converter[pt]"]).replace(" install", " install --force-reinstall", 1)
    what = "the front end fails" if proc.returncode else "the Java back end reports no version"
    return Row("imxconv-pt", "fail", f"{what} (exit {proc.returncode}): {err or 'no output'}", fix)


def mem_available(env: DoctorEnv) -> int | None:
    """MemAvailable from <root>/proc/meminfo, bytes."""
    try:
        text = env.file("/proc/meminfo").read_text()
    except OSError:
        return None
    m = re.search(r"^MemAvailable:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


def check_memory(env: DoctorEnv) -> Row:
    """Free memory against the measured peak of MCT + imxconv-pt in one convert run."""
    need = sum(toolchain_fact("convert_peak_rss_bytes").value.values())
    avail = mem_available(env)
    if avail is None:
        return Row("free memory", "warn", "unknown (no /proc/meminfo)", None, False)
    found = f"{avail / 1e9:.1f} GB available; a convert peaks near {need / 1e9:.1f} GB (MCT + imxconv-pt, measured)"
    if avail < need:
        return Row("free memory", "warn", found, "Close other programs or add swap before `imx500-sam convert`.", False)
    return Row("free memory", "ok", found, None, False)


def check_machine(interp: Interpreter) -> Row:
    """imxconv-pt was measured on x86-64 only."""
    measured = toolchain_fact("converter_measured_machines").value
    if interp.machine in measured:
        return Row("machine", "ok", f"{interp.machine} (imxconv-pt measured here)", None, False)
    return Row(
        "machine",
        "warn",
        f"{interp.machine or 'unknown'}: imxconv-pt is measured on x86-64 Linux only",
        "Convert on an x86-64 Linux host if imxconv-pt fails here.",
        False,
    )


def check_teacher(env: DoctorEnv) -> Row:
    """The MobileSAM teacher (distill / eval) in the cache."""
    from imx500_sam.train.teachers import mobilesam_cached, mobilesam_dir

    where = mobilesam_dir(env.cache)
    if mobilesam_cached(env.cache):
        return Row("teacher cache (MobileSAM)", "ok", str(where), None, False)
    code = "from imx500_sam.train.teachers import fetch_mobilesam; fetch_mobilesam()"
    fix = f"{shlex.quote(str(Path(sys.executable)))} -c {shlex.quote(code)}"
    if env.cache is not None:
        fix = f"IMX500_SAM_CACHE={shlex.quote(str(env.cache))} {fix}"
    return Row(
        "teacher cache (MobileSAM)",
        "warn",
        f"not fetched ({where}); `imx500-sam distill` / `eval` download it on first use",
        fix,
        False,
    )


def check_full_conversion() -> Row:
    """``--full``: convert a tiny network with the real MCT and imxconv-pt (tens of seconds)."""
    from converter.selftest import convert_tiny
    from imx500_sam.errors import ImxSamError

    try:
        res = convert_tiny()
    except ImxSamError as exc:
        return Row("tiny network end to end", "fail", str(exc), "Fix the rows above, then re-run doctor --full.")
    except Exception as exc:  # MCT / torch raise many kinds: report the first line
        first = first_line(str(exc))
        return Row("tiny network end to end", "fail", f"{type(exc).__name__}: {first}", "Run `make setup`.")
    return Row(
        "tiny network end to end",
        "ok",
        f"{res.input_size}x{res.input_size} conv net: MCT PTQ + export {res.quantize_s:.1f} s, imxconv-pt "
        f"{res.convert_s:.1f} s, packerOut.zip {res.packer_out_bytes:,} B, IMX500 memory {res.memory_usage_bytes:,} B",
        None,
    )


def host_rows(env: DoctorEnv, full: bool = False) -> list[Row]:
    """Every host (conversion) check, in display order; the slow probes run in parallel."""
    interp = probe_interpreter(env, [*toolchain_fact("checked_packages").value, "protobuf", "uni-pytorch"], [])
    rows = [check_python(interp, "host")]
    if interp.version is None:
        return rows
    rows.append(check_machine(interp))
    pins = load_pins(env.repo)
    rows += check_packages(interp, pins)
    jobs: list[Callable[[], Row]] = [
        lambda: check_conflicts(interp, pins, env),
        lambda: check_mct_import(interp, env, pins),
        lambda: check_java(env),
        lambda: check_imxconv(interp, env, pins),
    ]
    rows += map_in_threads(lambda job: job(), jobs, len(jobs))  # a stop ends the probes' programs first
    rows += [check_memory(env), check_teacher(env), check_pi_only(env)]
    if full:
        rows.append(check_full_conversion())
    return rows


# --------------------------------------------------------------------------------------------- Pi checks


def check_pi_os(env: DoctorEnv) -> Row:
    """Raspberry Pi model and OS release (Bookworm or later)."""
    model = pi_model(env) or "not a Raspberry Pi"
    rel = os_release(env)
    codename = rel.get("VERSION_CODENAME", "")
    found = f"{model}; {rel.get('PRETTY_NAME', 'unknown OS')}"
    minimum = fact("pi_os_min_codename").value
    if codename in _OS_ORDER and _OS_ORDER.index(codename) < _OS_ORDER.index(minimum):
        return Row(
            "Raspberry Pi OS",
            "fail",
            f"{found}: the AI Camera needs {minimum.capitalize()} or later",
            f"Flash Raspberry Pi OS ({minimum.capitalize()} or later, 64-bit) with Raspberry Pi Imager.",
            True,
            "pi",
        )
    return Row("Raspberry Pi OS", "ok", found, None, True, "pi")


def _apt_has(env: DoctorEnv, module: str) -> bool:
    return env.file(f"{PI_DIST_PACKAGES}/{module}").exists()


def check_venv(interp: Interpreter) -> Row:
    """A venv on the Pi must see the system site-packages (picamera2 and libcamera come from apt)."""
    if not interp.in_venv:
        return Row("venv sees apt packages", "ok", f"system interpreter ({interp.prefix})", None, True, "pi")
    cfg = Path(interp.prefix) / "pyvenv.cfg"
    if interp.sees_system_site:
        return Row(
            "venv sees apt packages", "ok", f"{interp.prefix}: include-system-site-packages = true", None, True, "pi"
        )
    fix = (
        f"sed -i 's/^include-system-site-packages *= *false/include-system-site-packages = true/' "
        f"{shlex.quote(str(cfg))}   (or make it again: "
        f"python3 -m venv --system-site-packages {shlex.quote(interp.prefix)})"
    )
    return Row(
        "venv sees apt packages",
        "fail",
        f"{interp.prefix} was made without --system-site-packages: apt's picamera2 and libcamera are invisible",
        fix,
        True,
        "pi",
    )


def _import_row(name: str, module: str, apt_pkg: str, interp: Interpreter, env: DoctorEnv) -> Row:
    """``module`` imports in the probed interpreter; when not, the fix that matches the cause."""
    info = interp.modules.get(module, {"ok": False, "error": "not probed"})
    if info.get("ok"):
        where = info.get("file") or "?"
        apt_dir = str(env.file(PI_DIST_PACKAGES))
        if _apt_has(env, module.split(".")[0]) and not str(where).startswith(apt_dir):
            return Row(
                name,
                "warn",
                f"imports from {where}, shadowing the apt package in {apt_dir}",
                f"{shlex.quote(str(interp.python))} -m pip uninstall -y {module.split('.')[0]}",
                True,
                "pi",
            )
        return Row(name, "ok", f"imports ({where})", None, True, "pi")
    err = str(info.get("error", ""))
    if "undefined symbol" in err or (".so" in err and "cannot open" in err):
        fix = "sudo apt update && sudo apt full-upgrade -y && sudo reboot   (the bindings and libcamera must match)"
        return Row(name, "fail", f"does not import: {err}", fix, True, "pi")
    if (
        "No module named" in err
        and interp.in_venv
        and not interp.sees_system_site
        and _apt_has(env, module.split(".")[0])
    ):
        return Row(
            name, "fail", f"installed by apt, invisible to this venv: {err}", "Fix the venv (row above).", True, "pi"
        )
    if "No module named" in err and not _apt_has(env, module.split(".")[0]):
        return Row(name, "fail", f"not installed: {err}", f"sudo apt install -y {apt_pkg}", True, "pi")
    return Row(name, "fail", f"does not import: {err}", f"sudo apt install --reinstall -y {apt_pkg}", True, "pi")


def check_picamera2_version(interp: Interpreter) -> Row:
    """picamera2 version: tensor injection needs >= 0.3.32."""
    minimum = fact("picamera2_min_tensor_injection").value
    version = interp.version_of("picamera2")
    if version is None:
        return Row("picamera2 version", "warn", "unknown (no package metadata)", None, False, "pi")
    if _version_tuple(version) < _version_tuple(minimum):
        return Row(
            "picamera2 version",
            "warn",
            f"{version}: tensor injection (on-sensor accuracy checks) needs {minimum} or newer",
            "sudo apt update && sudo apt full-upgrade -y",
            False,
            "pi",
        )
    return Row("picamera2 version", "ok", f"{version} (>= {minimum}: tensor injection available)", None, False, "pi")


def check_firmware(env: DoctorEnv) -> Row:
    """The IMX500's loader and main firmware files."""
    files = fact("sensor_firmware_files").value
    apt = fact("pi_apt_packages").value
    missing = [f for f in files if not env.file(f).is_file()]
    if not missing:
        sizes = ", ".join(f"{Path(f).name} {env.file(f).stat().st_size:,} B" for f in files)
        return Row("IMX500 firmware", "ok", sizes, None, True, "pi")
    if len(missing) == len(files):
        fix = f"sudo apt install -y {apt['all']} && sudo reboot"
    else:
        fix = f"sudo apt install --reinstall -y {apt['firmware']} && sudo reboot"
    return Row("IMX500 firmware", "fail", "missing: " + ", ".join(missing), fix, True, "pi")


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


def check_sensor(env: DoctorEnv) -> Row:
    """An IMX500 on a v4l subdevice (the camera is connected and its driver bound)."""
    subdevs = find_imx500_subdevs(env)
    if not subdevs:
        return Row(
            "IMX500 sensor",
            "fail",
            "no v4l subdevice with the imx500 driver (camera not detected)",
            "Power off, re-seat the ribbon cable (contacts facing the right way), boot; check with "
            "`rpicam-hello --list-cameras` (camera_auto_detect=1 in /boot/firmware/config.txt).",
            True,
            "pi",
        )
    missing = [name for name, _ in subdevs if not env.file(f"/dev/{name}").exists()]
    found = ", ".join(f"/dev/{name} ({dev})" for name, dev in subdevs)
    if missing:
        return Row("IMX500 sensor", "fail", f"{found}; device node missing: {missing[0]}", "sudo reboot", True, "pi")
    return Row("IMX500 sensor", "ok", found, None, True, "pi")


def check_fw_upload(env: DoctorEnv) -> Row:
    """The last firmware upload the driver reports in debugfs (a cached network is not uploaded again)."""
    spec = fact("imx500_fw_debugfs").value
    subdevs = find_imx500_subdevs(env)
    if not subdevs:
        return Row("firmware upload (debugfs)", "ok", "no sensor (see above)", None, False, "pi")
    shown = spec["fw_progress"].format(device=subdevs[0][1])
    path = env.file(shown)
    try:
        fields = path.read_text().split()
    except PermissionError:
        return Row(
            "firmware upload (debugfs)", "ok", f"{shown} is readable by root only (sudo to see it)", None, False, "pi"
        )
    except OSError:
        return Row("firmware upload (debugfs)", "ok", f"{shown} not present (debugfs not mounted?)", None, False, "pi")
    try:
        stage, done, size = (int(x) for x in fields[:3])
    except ValueError:
        return Row(
            "firmware upload (debugfs)", "ok", f"unreadable: {clip_words(' '.join(fields), 80)}", None, False, "pi"
        )
    stages = spec["stages"]
    name = stages[stage] if 0 <= stage < len(stages) else f"stage {stage}"
    state = "complete" if size and done >= size else f"{done:,} of {size:,} B"
    note = " (the camera caches the last network: the same .rpk again is not re-uploaded)" if name == "network" else ""
    return Row("firmware upload (debugfs)", "ok", f"last upload: {name} firmware, {state}{note}", None, False, "pi")


def check_packager(env: DoctorEnv) -> Row:
    """Sony's imx500-package (packerOut.zip -> network.rpk), from imx500-tools."""
    from firmware_packaging.packager import PACKAGER, packager_available

    if packager_available(env.search_path):
        return Row(PACKAGER, "ok", str(env.which(PACKAGER)), None, False, "pi")
    apt = fact("pi_apt_packages").value
    return Row(
        PACKAGER,
        "warn",
        "not installed: `imx500-sam package` needs it",
        f"sudo apt install -y {apt['packager']}",
        False,
        "pi",
    )


def check_vcgencmd(env: DoctorEnv) -> Row:
    """``vcgencmd pmic_read_adc`` for power readings (Pi 5)."""
    exe = env.which("vcgencmd")
    if exe is None:
        return Row("vcgencmd (power)", "warn", "not on PATH", "sudo apt install -y raspi-utils", False, "pi")
    proc = run([exe, "pmic_read_adc"], env, 15)
    rails = len(re.findall(r"current\(\d+\)=", proc.stdout))
    if proc.returncode == 0 and rails:
        return Row("vcgencmd (power)", "ok", f"pmic_read_adc: {rails} rail current(s) readable", None, False, "pi")
    return Row(
        "vcgencmd (power)",
        "warn",
        f"{exe} present, pmic_read_adc gives no rail currents (a Pi 5 has them)",
        "Measure power with a USB power meter instead.",
        False,
        "pi",
    )


def pi_rows(env: DoctorEnv) -> list[Row]:
    """Every Raspberry Pi (camera side) check, in display order."""
    interp = probe_interpreter(env, ["picamera2"], ["libcamera", "picamera2", "picamera2.devices.imx500"])
    rows = [check_pi_os(env), check_python(interp, "pi")]
    if interp.version is None:
        return rows
    apt = fact("pi_apt_packages").value
    rows += [
        check_venv(interp),
        _import_row("libcamera (Python)", "libcamera", apt["libcamera"], interp, env),
        _import_row("picamera2", "picamera2", apt["picamera2"], interp, env),
    ]
    if interp.modules.get("picamera2", {}).get("ok"):
        rows.append(_import_row("picamera2 IMX500 class", "picamera2.devices.imx500", apt["picamera2"], interp, env))
        rows.append(check_picamera2_version(interp))
    rows += [
        check_firmware(env),
        check_sensor(env),
        check_fw_upload(env),
        check_packager(env),
        check_vcgencmd(env),
    ]
    return rows


# --------------------------------------------------------------------------------------------- report


@dataclass(frozen=True)
class DoctorReport:
    """All rows, the role they were chosen for, and the exit code."""

    role: Role
    rows: list[Row]
    seconds: float

    @cached_property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.status == "fail" and r.required]

    @property
    def exit_code(self) -> int:
        return int(ExitCode.TOOLCHAIN_MISSING if self.failed else ExitCode.OK)

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "exit_code": self.exit_code,
            "ok": not self.failed,
            "seconds": round(self.seconds, 2),
            "checks": [asdict(r) for r in self.rows],
        }


def run_doctor(env: DoctorEnv | None = None, full: bool = False) -> DoctorReport:
    """Run every check for this machine's role (``env.role`` overrides the detection)."""
    env = env or DoctorEnv()
    t0 = time.perf_counter()
    role = detect_role(env)
    rows = pi_rows(env) if role == "pi" else host_rows(env, full=full)
    return DoctorReport(role=role, rows=rows, seconds=time.perf_counter() - t0)


_STYLE = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]"}


def render_table(report: DoctorReport) -> Any:
    """A rich renderable: one line per check."""
    from rich import box
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    where = "Raspberry Pi (camera side)" if report.role == "pi" else "host (conversion toolchain)"
    table = Table(title=f"imx500-sam doctor: {where}", title_justify="left", box=box.SIMPLE_HEAD, expand=False)
    table.add_column("", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("found  [cyan](fix)[/]", overflow="fold")
    for r in report.rows:
        name = escape(r.name) + ("" if r.required else " [dim]*[/]")
        text = escape(r.found) + (f"\n[cyan]fix: {escape(r.fix)}[/]" if r.fix and r.status != "ok" else "")
        table.add_row(_STYLE[r.status], name, text)
    if report.failed:
        summary = Text(
            f"{len(report.failed)} required check(s) failed: {', '.join(r.name for r in report.failed)} (exit 5)."
            " * optional check.",
            style="bold red",
        )
    else:
        warns = sum(r.status == "warn" for r in report.rows)
        summary = Text(
            f"All required checks pass ({warns} warning(s)) in {report.seconds:.1f} s. * optional check.",
            style="green" if not warns else "",
        )
    return Group(table, summary)
