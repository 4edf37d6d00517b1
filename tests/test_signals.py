"""Stopping work (issue 14): Ctrl-C, SIGTERM, kill -9 and a hung tool leave nothing running and nothing behind.

Every process a test starts carries a tag in its environment, inherited by everything below it (the converter's
shell scripts and JVMs included, whatever their session or parent after an orphaning), so "nothing running" is
checked on all of them, not on a list of PIDs.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from imx500_sam import procs
from imx500_sam.errors import ExitCode, ToolFailedError
from tests.support.coffee_coco import write_coffee_coco

REPO = Path(__file__).resolve().parents[1]
TAG = "IMX500_SAM_TEST_TAG"
OUT_NAME = "picosam3_imx500"


def _env(tag: str, **extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, **{TAG: tag}, **extra)


def _tagged(tag: str) -> list[str]:
    """Command lines of the live (non-zombie) processes carrying ``tag``."""
    needle = f"{TAG}={tag}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                if needle not in fh.read().split(b"\0"):
                    continue
            with open(f"/proc/{name}/stat", "rb") as fh:
                if fh.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
                    continue
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                found.append(f"{name}: " + fh.read().replace(b"\0", b" ").decode(errors="replace")[:160])
        except (OSError, IndexError):
            continue
    return found


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


# A process that runs a tool through procs.run_tool under the CLI's signal handling (as `imx500-sam` does).
_TOOL_HOST = """
import sys
from pathlib import Path
from imx500_sam import procs
with procs.stop_on_signals():
    try:
        procs.run_tool(sys.argv[2:], name="fake-tool", log_path=Path(sys.argv[1]))
    except procs.STOP_EXCEPTIONS as exc:
        print(procs.interrupted_line(exc, "demo"), file=sys.stderr)
        sys.exit(procs.exit_code_for(exc))
"""
# A tool that starts a grandchild which ignores SIGTERM (needs the KILL), then waits.
_STUBBORN_TOOL = ["sh", "-c", "sh -c 'trap \"\" TERM; sleep 300' & sleep 300 & wait"]


def _start_tool_host(tmp_path: Path, tag: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _TOOL_HOST, str(tmp_path / "tool.log"), *_STUBBORN_TOOL],
        env=_env(tag),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _wait_for(lambda: sum("sleep 300" in c for c in _tagged(tag)) >= 2, 30, "the fake tool's processes")
    return proc


def test_tool_timeout_ends_the_whole_group(tmp_path: Path) -> None:
    """A hung tool: exit 6 naming the tool and its log; its grandchildren (one ignores SIGTERM) end too."""
    tag = uuid.uuid4().hex
    log = tmp_path / "fake.log"
    t0 = time.monotonic()
    with pytest.raises(ToolFailedError) as info:
        procs.run_tool(
            [*_STUBBORN_TOOL[:2], "echo started; " + _STUBBORN_TOOL[2]],
            name="fake-tool",
            log_path=log,
            timeout_s=1,
            env=_env(tag),
        )
    assert info.value.exit_code == ExitCode.TOOL_FAILED == 6
    assert "fake-tool did not finish within 1 s" in str(info.value) and str(log) in str(info.value)
    assert "--tool-timeout" in str(info.value)
    assert log.read_text().strip() == "started"  # the log is kept
    assert time.monotonic() - t0 < 1 + procs.STOP_GRACE_S + 3
    _wait_for(lambda: not _tagged(tag), 3, "the tool's processes to end")


def test_run_captured_timeout_ends_the_group_and_says_so() -> None:
    """A hung program: timed_out, exit 124, the group ended; a program's own exit 124 is not a timeout."""
    tag = uuid.uuid4().hex
    t0 = time.monotonic()
    proc = procs.run_captured([*_STUBBORN_TOOL[:2], "echo out; " + _STUBBORN_TOOL[2]], name="t", timeout_s=1,
                              env=_env(tag))  # fmt: skip
    assert proc.timed_out and proc.returncode == 124 and proc.stdout == "out\n"
    assert proc.stderr.splitlines()[-1] == "timed out after 1 s"
    assert time.monotonic() - t0 < 1 + procs.STOP_GRACE_S + 3
    _wait_for(lambda: not _tagged(tag), 3, "the program's processes to end")
    own = procs.run_captured(["sh", "-c", "echo err >&2; exit 124"], name="t", timeout_s=30)
    assert not own.timed_out and own.returncode == 124 and own.stderr == "err\n"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_ends_the_tool_group(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    """SIGINT / SIGTERM to the process running a tool: the tool's whole group ends, one line, exit 130 / 143."""
    tag = uuid.uuid4().hex
    proc = _start_tool_host(tmp_path, tag)
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert time.monotonic() - t0 < procs.STOP_GRACE_S + 3
    assert err.strip().splitlines() == [
        f"imx500-sam: demo interrupted by {sig.name} during fake-tool; stopped fake-tool and its processes."
    ]
    _wait_for(lambda: not _tagged(tag), 3, "the tool's processes to end")


def test_killed_parent_takes_its_tools_along(tmp_path: Path) -> None:
    """kill -9 of the process running a tool: the watchdog in the tool's group ends the group (TERM, then KILL)."""
    tag = uuid.uuid4().hex
    proc = _start_tool_host(tmp_path, tag)
    proc.kill()
    proc.communicate(timeout=10)
    _wait_for(lambda: not _tagged(tag), procs.STOP_GRACE_S + 7, "the orphaned tool's processes to end")


def test_stale_work_dirs_only_of_dead_owners(tmp_path: Path) -> None:
    """Removed: marked by a process that has ended (or whose PID now belongs to another process). Kept: a live
    run's, an unmarked directory, one marked on another host."""
    maker = "import sys; from pathlib import Path; from imx500_sam.procs import make_work_dir; "
    dead = subprocess.run(
        [sys.executable, "-c", maker + "print(make_work_dir(Path(sys.argv[1]), '.a.tmp-'))", str(tmp_path)],
        env=_env("x"),
        capture_output=True,
        text=True,
        check=True,
    )
    dead_dir = Path(dead.stdout.strip())
    live = subprocess.Popen(
        [sys.executable, "-c", maker + "print(make_work_dir(Path(sys.argv[1]), '.b.tmp-'), flush=True); input()",
         str(tmp_path)],
        env=_env("x"), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    live_dir = Path(live.stdout.readline().strip())
    mine = procs.make_work_dir(tmp_path, ".c.tmp-")
    reused = procs.make_work_dir(tmp_path, ".d.tmp-")  # our PID, but another start time: a reused PID
    owner = json.loads((reused / procs.OWNER_FILE).read_text())
    (reused / procs.OWNER_FILE).write_text(json.dumps({**owner, "start": owner["start"] - 1}))
    elsewhere = procs.make_work_dir(tmp_path, ".e.tmp-")
    (elsewhere / procs.OWNER_FILE).write_text(json.dumps({**owner, "pid": 1, "host": "another-host"}))
    unmarked = tmp_path / ".f.tmp-unmarked"
    unmarked.mkdir()
    try:
        assert procs.remove_stale_work_dirs(tmp_path, ".*.tmp-*") == [dead_dir, reused]
        assert not dead_dir.exists() and not reused.exists()
        assert live_dir.is_dir() and mine.is_dir() and elsewhere.is_dir() and unmarked.is_dir()
    finally:
        live.communicate("\n", timeout=30)
    assert procs.remove_stale_work_dirs(tmp_path, ".*.tmp-*") == [live_dir]  # its owner has ended now
    assert mine.stat().st_mode & 0o777 == 0o777 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_deferred_stop_finishes_the_block_first() -> None:
    """A SIGTERM inside ``deferred_stop`` is raised when the block ends, as Terminated; handlers come back."""
    before = signal.getsignal(signal.SIGTERM)
    done = []
    with pytest.raises(procs.Terminated) as info:
        for i in range(3):
            with procs.deferred_stop():
                if i == 1:
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(0.1)
                done.append(i)
    assert done == [0, 1] and info.value.signum == signal.SIGTERM
    assert procs.exit_code_for(info.value) == 143
    assert signal.getsignal(signal.SIGTERM) is before


# ---------------------------------------------------------------- the real convert (real MCT and imxconv-pt)


def _start_convert(tmp_path: Path, tag: str, out: Path, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    """``imx500-sam convert`` in a session of its own with TMPDIR in ``tmp_path/tmp``; returns it and its stderr."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    err = tmp_path / f"{tag}.err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "imx500_sam", "convert", "-o", str(out), "--calib-count", "8", *extra],
        env=_env(tag, TMPDIR=str(tmp_path / "tmp")),
        cwd=REPO,  # `python -m` puts the working directory first on sys.path
        stdout=subprocess.DEVNULL,
        stderr=err.open("wb"),
        start_new_session=True,
    )
    return proc, err


def _wait_for_converter(proc: subprocess.Popen[bytes], tag: str, err: Path) -> None:
    """Until the converter's back end (a JVM under imxconv-pt's shell scripts) runs."""

    def java_runs() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"convert ended early ({proc.returncode}): {err.read_text()[-2000:]}")
        return any(" java " in f" {c.split(': ', 1)[1]}" for c in _tagged(tag))

    _wait_for(java_runs, 600, "imxconv-pt's JVM")
    assert "Converting with imxconv-pt" in err.read_text()


def _nothing_left(tmp_path: Path, tag: str, work: Path) -> None:
    time.sleep(10)
    assert _tagged(tag) == []
    assert sorted(p.name for p in work.iterdir() if ".tmp-" in p.name or ".old-" in p.name) == []
    # nothing in $TMPDIR but torch's compile cache (torchinductor_<user>, made by any torch run, meant to stay)
    assert [p.name for p in (tmp_path / "tmp").iterdir() if not p.name.startswith("torchinductor_")] == []


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_convert_stopped_during_imxconv_pt(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) or SIGTERM during imxconv-pt: stops in
    seconds with one line, the converter's processes end, no work directory, OUT absent or as it was."""
    tag = uuid.uuid4().hex
    work = tmp_path / "w"
    work.mkdir()
    out = work / OUT_NAME
    extra: tuple[str, ...] = ()
    if sig == signal.SIGTERM:  # a previous output, to be left as it was
        out.mkdir()
        (out / "previous.txt").write_text("previous run\n")
        extra = ("--overwrite",)
    proc, err = _start_convert(tmp_path, tag, out, *extra)
    _wait_for_converter(proc, tag, err)
    t0 = time.monotonic()
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    assert proc.wait(timeout=60) == code
    assert time.monotonic() - t0 < 15
    last = err.read_text().strip().splitlines()[-1]
    assert last.startswith(
        f"imx500-sam: convert interrupted by {sig.name} during [7/8] Converting with imxconv-pt (Sony converter)"
    ), last
    assert "stopped imxconv-pt and its processes" in last
    _nothing_left(tmp_path, tag, work)
    if sig == signal.SIGTERM:
        assert f"{out} left as it was" in last
        assert [p.name for p in out.iterdir()] == ["previous.txt"]
    else:
        assert f"{out} not written" in last
        assert not out.exists()


@pytest.mark.slow
def test_convert_killed_then_next_run_cleans_up(tmp_path: Path) -> None:
    """kill -9 during imxconv-pt: the converter's processes end with it; the work directory it leaves is removed
    by the next run, which here also shows --tool-timeout: imxconv-pt stopped, exit 6, its log kept."""
    tag = uuid.uuid4().hex
    work = tmp_path / "w"
    work.mkdir()
    proc, err = _start_convert(tmp_path, tag, work / OUT_NAME)
    _wait_for_converter(proc, tag, err)
    proc.kill()
    assert proc.wait(timeout=30) == -signal.SIGKILL
    time.sleep(10)
    assert _tagged(tag) == []
    (stale,) = [p for p in work.iterdir() if p.name.startswith(f".{OUT_NAME}.tmp-")]
    assert (stale / procs.OWNER_FILE).is_file() and not (work / OUT_NAME).exists()

    tag2 = uuid.uuid4().hex
    other = work / "other_imx500"
    proc2, err2 = _start_convert(tmp_path, tag2, other, "--tool-timeout", "3")
    assert proc2.wait(timeout=600) == ExitCode.TOOL_FAILED
    text = err2.read_text()
    assert f"Removed {stale} (left by an imx500-sam run that was killed)" in text
    kept = other / "FAILED-imxconv-pt.log"
    assert f"imx500-sam: error: imxconv-pt did not finish within 3 s and was stopped (log: {kept})" in text
    assert kept.is_file()
    _nothing_left(tmp_path, tag2, work)
    assert _tagged(tag) == []


@pytest.mark.slow
def test_published_output_carries_no_owner_mark(converted_default) -> None:
    """OUT carries no owner mark (it is published from a folder inside the marked work directory, never the work
    directory itself), so it is never a stale candidate; no work directory is left beside it."""
    assert not (converted_default.out_dir / procs.OWNER_FILE).exists()
    assert not any(".tmp-" in p.name for p in converted_default.out_dir.parent.iterdir())


# ---------------------------------------------------------------- distill: SIGTERM, then --resume


@pytest.mark.slow
def test_distill_sigterm_resumes_from_its_step(tmp_path: Path) -> None:
    """SIGTERM mid-epoch: the step completes, last.pt records it, exit 143; --resume continues from that step and
    ends with the planned steps and the same weights and losses as an uninterrupted run."""
    import torch

    from imx500_sam.train.distill import DistillOptions, run_distill

    ann, images = write_coffee_coco(tmp_path / "data")
    epochs, steps = 2, 40
    args = dict(teacher="none", epochs=epochs, steps_per_epoch=steps, batch=4, low_res=32, low_res_epochs=epochs,
                seed=3, threads=1, warmup_steps=1)  # fmt: skip
    reference = run_distill(DistillOptions(out=tmp_path / "ref", coco=ann, images=images, quiet=True, **args))

    cli = [sys.executable, "-m", "imx500_sam", "distill", "-o", str(tmp_path / "run"), "--coco", str(ann)]
    cli += ["--images", str(images)] + [f"--{k.replace('_', '-')}={v}" for k, v in args.items()]
    proc = subprocess.Popen(
        cli, env=_env("distill"), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith(f"epoch 1/{epochs} step 20/{steps}"):
            proc.send_signal(signal.SIGTERM)
            break
    rest, _ = proc.communicate(timeout=120)[::-1]
    lines += rest.splitlines(keepends=True)
    assert proc.returncode == 143, "".join(lines)
    state = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=True)
    stopped_at = state["epoch"] * steps + state["step"]
    assert state["epoch"] == 0 and 20 <= state["step"] < steps, (state["epoch"], state["step"])
    assert lines[-1].strip() == (
        f"imx500-sam: distill interrupted by SIGTERM during training; saved {tmp_path / 'run' / 'last.pt'} "
        f"at epoch 1 step {state['step']}/{steps}: continue with --resume."
    )

    resumed = subprocess.run(
        [*cli, "--resume"], env=_env("distill"), cwd=REPO, capture_output=True, text=True, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"at epoch 1 step {state['step']}" in resumed.stderr
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["steps"] for h in history] == [steps] * epochs and stopped_at < epochs * steps
    for got, want in zip(history, reference.history, strict=True):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5), (got, want)
    a = torch.load(reference.checkpoint, weights_only=True)  # plain state_dicts
    b = torch.load(tmp_path / "run" / "picosam3.pt", weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- convert stopped at each of its stages

TINY = ["py:converter.selftest:tiny_net", "--input-size", "32", "--calib-count", "8"]
#: stage (its progress key) -> (signal, exit code). Each stage once, the three signals in turn, so the default suite
#: stays within minutes; IMX500_SAM_STOP_MATRIX=full runs every stage with every signal (and ``package``, after
#: imxconv-pt, which costs a real conversion per case).
STAGES = ["load", "check", "calibration", "ptq", "export", "accuracy", "convert", "package"]
SIGNALS = [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -signal.SIGKILL)]
if os.environ.get("IMX500_SAM_STOP_MATRIX") == "full":
    STOP_CASES = [(stage, sig, code) for stage in STAGES for sig, code in SIGNALS]
else:
    STOP_CASES = [(stage, *SIGNALS[i % 3]) for i, stage in enumerate(STAGES[:-1])]


def _tree(path: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``path``: relative name -> (mode, bytes); a folder -> (mode, b"")."""
    return {
        str(p.relative_to(path)): (p.stat().st_mode, b"" if p.is_dir() else p.read_bytes())
        for p in sorted(path.rglob("*"))
    } | {".": (path.stat().st_mode, b"")}


def _previous_out(out: Path) -> dict[str, tuple[int, bytes]]:
    """A previous convert output (as far as a later run cares: a folder of files) to be left byte for byte."""
    (out / "logs").mkdir(parents=True)
    (out / "report.json").write_text('{"previous": true}\n')
    (out / "packerOut.zip").write_bytes(bytes(range(256)) * 40)
    (out / "logs" / "mct.log").write_text("previous run\n")
    return _tree(out)


def _start_paused(tmp_path: Path, case: int) -> tuple[subprocess.Popen[bytes], Path, Path, str, dict]:
    """Case ``case`` of STOP_CASES: a convert over a previous OUT, to pause at its stage."""
    stage = STOP_CASES[case][0]
    tag = uuid.uuid4().hex
    work = tmp_path / f"{case}-{stage}"
    work.mkdir()
    out = work / "tiny_imx500"
    before = _previous_out(out)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    err = tmp_path / f"{case}-{stage}.err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "imx500_sam", "convert", *TINY, "-o", str(out), "--overwrite"],
        env=_env(tag, TMPDIR=str(tmp_path / "tmp"), **{procs.PAUSE_ENV: stage}),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=err.open("wb"),
        start_new_session=True,
    )
    return proc, out, err, tag, before


@pytest.mark.slow
def test_convert_stopped_at_each_stage(tmp_path: Path) -> None:
    """SIGINT (to the process group, as a terminal sends it), SIGTERM or SIGKILL at each stage of `convert`: the
    exit code, one line naming the stage, nothing of its tree running 10 s later, the previous OUT unchanged byte
    for byte, and nothing left once the next `convert` has started (it removes what a killed run left)."""
    started = {i: _start_paused(tmp_path, i) for i in range(min(4, len(STOP_CASES)))}  # four on their way
    for i, (stage, sig, code) in enumerate(STOP_CASES):
        proc, out, err, tag, before = started.pop(i) if i in started else _start_paused(tmp_path, i)

        def paused(proc: subprocess.Popen[bytes] = proc, err: Path = err, stage: str = stage) -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"convert ended before {stage} ({proc.returncode}): {err.read_text()[-2000:]}")
            return f"paused at {stage} " in err.read_text()

        _wait_for(paused, 900, f"convert to reach {stage}")
        if i + 4 < len(STOP_CASES):
            started[i + 4] = _start_paused(tmp_path, i + 4)
        t0 = time.monotonic()
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        assert proc.wait(timeout=60) == code, (stage, err.read_text()[-2000:])
        assert time.monotonic() - t0 < 15
        time.sleep(10)
        assert _tagged(tag) == [], stage
        assert _tree(out) == before, stage  # the previous OUT, byte for byte (and modes)
        left = [p for p in out.parent.iterdir() if p != out]
        if sig == signal.SIGKILL:
            (stale,) = left
            assert stale.name.startswith(f".{out.name}.tmp-") and (stale / procs.OWNER_FILE).is_file()
            # the next convert removes it first thing (here stopped as soon as it is loading)
            nerr, ntag = tmp_path / f"{i}-{stage}-next.err", uuid.uuid4().hex
            proc2 = subprocess.Popen(
                [sys.executable, "-m", "imx500_sam", "convert", *TINY, "-o", str(out), "--overwrite"],
                env=_env(ntag, TMPDIR=str(tmp_path / "tmp"), **{procs.PAUSE_ENV: "load"}),
                cwd=REPO, stdout=subprocess.DEVNULL, stderr=nerr.open("wb"), start_new_session=True,
            )  # fmt: skip
            _wait_for(lambda p=proc2, e=nerr: "paused at load " in e.read_text() or p.poll() is not None, 300, "load")
            os.killpg(proc2.pid, signal.SIGINT)
            assert proc2.wait(timeout=60) == 130
            assert f"Removed {stale} (left by an imx500-sam run that was killed)" in nerr.read_text()
            assert [p for p in out.parent.iterdir() if p != out] == []
            assert _tree(out) == before
        else:
            assert left == [], (stage, left)
            last = err.read_text().strip().splitlines()[-1]
            assert last.startswith(f"imx500-sam: convert interrupted by {sig.name} during ["), last
            assert f"{out} left as it was" in last, last
    assert [p.name for p in (tmp_path / "tmp").iterdir() if not p.name.startswith("torchinductor_")] == []


# ---------------------------------------------------------------- publishing OUT in one step

_PUBLISHER = """
import sys
from pathlib import Path
from imx500_sam import procs
box = procs.make_work_dir(Path(sys.argv[1]).parent, ".out.tmp-")
(box / "out").mkdir()
(box / "out" / "new.txt").write_text("new run\\n")
with procs.stop_on_signals():
    try:
        procs.publish_dir(box / "out", Path(sys.argv[1]))
    except procs.STOP_EXCEPTIONS as exc:
        print(procs.interrupted_line(exc, "demo"), file=sys.stderr)
        sys.exit(procs.exit_code_for(exc))
    finally:
        procs.remove_work_dir(box)
"""


def _publisher(out: Path, pause: str, exchange: bool = True) -> subprocess.Popen[str]:
    extra = {procs.PAUSE_ENV: pause} | ({} if exchange else {"IMX500_SAM_NO_RENAME_EXCHANGE": "1"})
    proc = subprocess.Popen(
        [sys.executable, "-c", _PUBLISHER, str(out)], env=_env("pub", **extra), stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert f"paused at {pause} " in line, line
    return proc


def test_publish_exchanges_in_one_step(tmp_path: Path) -> None:
    """An existing OUT is swapped with the result by renameat2(RENAME_EXCHANGE); nothing else is left."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("previous\n")
    box = procs.make_work_dir(tmp_path, ".out.tmp-")
    (box / "out").mkdir()
    (box / "out" / "new.txt").write_text("new\n")
    assert procs.rename_exchange(box / "out", out)  # this file system has it (ext4, tmpfs, btrfs, xfs do)
    assert (out / "new.txt").is_file() and (box / "out" / "old.txt").is_file()
    procs.rename_exchange(box / "out", out)  # back
    procs.publish_dir(box / "out", out)
    procs.remove_work_dir(box)
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and [p.name for p in out.iterdir()] == ["new.txt"]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_publish_stopped_just_before_leaves_the_previous_out(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    out = tmp_path / "out"
    before = _previous_out(out)
    proc = _publisher(out, "publish")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert _tree(out) == before and [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("exchange", [True, False])
def test_publish_killed_midway_heals_on_the_next_run(tmp_path: Path, exchange: bool) -> None:
    """kill -9 at the publish step, and (without rename-exchange) between its two renames: the previous OUT
    is at its place or put back by the next run's clean-up, byte for byte; the work directory goes."""
    out = tmp_path / "out"
    before = _previous_out(out)
    proc = _publisher(out, "publish" if exchange else "publish-two-step", exchange=exchange)
    proc.kill()
    proc.communicate(timeout=30)
    (stale,) = [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]
    if not exchange:
        assert not out.exists() and (stale / procs.PREVIOUS).is_dir()  # between the two renames
    assert procs.remove_stale_work_dirs(tmp_path, ".*.tmp-*") == [stale]
    assert _tree(out) == before and [p.name for p in tmp_path.iterdir()] == ["out"]


# ---------------------------------------------------------------- distill under torchrun (2 CPU ranks, gloo)

_DDP_ARGS = dict(teacher="none", epochs=2, steps_per_epoch=40, batch=4, low_res=32, low_res_epochs=2, seed=3,
                 threads=1, warmup_steps=1)  # fmt: skip


def _torchrun(tmp_path: Path, ann: Path, images: Path, run: str, tag: str, *extra: str) -> subprocess.Popen[str]:
    cli = [
        str(Path(sys.executable).parent / "torchrun"),
        "--standalone",  # a free port on this machine
        "--nproc_per_node",
        "2",
        "-m",
        "imx500_sam",
        "distill",
        "-o",
        str(tmp_path / run),
        "--coco",
        str(ann),
        "--images",
        str(images),
    ]
    cli += [f"--{k.replace('_', '-')}={v}" for k, v in _DDP_ARGS.items()] + list(extra)  # fmt: skip
    return subprocess.Popen(
        cli, env=_env(tag, OMP_NUM_THREADS="1"), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _rank_pid(tag: str, rank: int) -> int:
    for line in _tagged(tag):
        pid = int(line.split(":", 1)[0])
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env and b"imx500_sam" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    raise AssertionError(f"no rank {rank} among {_tagged(tag)}")


@pytest.mark.slow
def test_distill_ddp_sigterm_stops_every_rank_at_one_step(tmp_path: Path) -> None:
    """torchrun with 2 CPU ranks (gloo): SIGTERM to the launcher, or to one rank only, stops both ranks after the
    same step (no rank left waiting in an all-reduce), rank 0 alone writes last.pt, and --resume ends with the
    weights of an uninterrupted run, bit for bit."""
    import torch

    ann, images = write_coffee_coco(tmp_path / "data")
    ref = _torchrun(tmp_path, ann, images, "ref", uuid.uuid4().hex)
    _, err = ref.communicate(timeout=900)
    assert ref.returncode == 0, err[-3000:]
    want = torch.load(tmp_path / "ref" / "picosam3.pt", weights_only=True)

    for target in ("launcher", "rank 1"):
        tag, run = uuid.uuid4().hex, target.replace(" ", "")
        proc = _torchrun(tmp_path, ann, images, run, tag)
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if line.startswith(f"epoch 1/2 step 20/{_DDP_ARGS['steps_per_epoch']}"):
                os.kill(proc.pid if target == "launcher" else _rank_pid(tag, 1), signal.SIGTERM)
                break
        rest = proc.communicate(timeout=120)[1]
        text = "".join(lines) + rest
        assert proc.returncode != 0, text[-3000:]
        _wait_for(lambda tag=tag: not _tagged(tag), 30, "every rank to end")
        saved = re.findall(r"saved \S+last\.pt at epoch 1 step (\d+)/40", text)
        others = re.findall(r"rank 1 stopped at epoch 1 step (\d+)/40", text)
        assert len(saved) == 1 and others == saved, text[-3000:]  # one checkpoint; both ranks at the same step
        state = torch.load(tmp_path / run / "last.pt", map_location="cpu", weights_only=True)
        assert (state["epoch"], state["step"]) == (0, int(saved[0])) and 20 <= state["step"] < 40

        resumed = _torchrun(tmp_path, ann, images, run, uuid.uuid4().hex, "--resume")
        _, err = resumed.communicate(timeout=900)
        assert resumed.returncode == 0, err[-3000:]
        assert f"resumed from {tmp_path / run / 'last.pt'} at epoch 1 step {saved[0]}" in err
        got = torch.load(tmp_path / run / "picosam3.pt", weights_only=True)
        assert got.keys() == want.keys()
        assert all(torch.equal(got[k], want[k]) for k in want), target  # bit for bit


@pytest.mark.slow
def test_doctor_stops_in_seconds_with_its_probes(tmp_path: Path) -> None:
    """SIGTERM while doctor's probes run (imxconv-pt --version starts its JVMs, the MCT import probe, in worker
    threads): exit 143 within seconds, every probe's processes end."""
    tag = uuid.uuid4().hex
    proc = subprocess.Popen(
        [sys.executable, "-m", "imx500_sam", "doctor"], env=_env(tag), cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    # the probes of the worker threads (pip check, the MCT import, java, imxconv-pt): not the interpreter probe
    # that the main thread runs first, which a stop unwinds without stop_live_groups
    threaded = ("-m pip check", "imxconv-pt", "java -version", "import torch")
    _wait_for(lambda: any(m in c for c in _tagged(tag) for m in threaded), 120, "doctor's threaded probes")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert time.monotonic() - t0 < procs.STOP_GRACE_S + 7, err
    assert err.strip().splitlines()[-1].startswith("imx500-sam: doctor interrupted by SIGTERM"), err
    _wait_for(lambda: not _tagged(tag), 10, "the probes' processes to end")
