"""Everyday mistakes (issue 23): an existing output is refused unless the user says otherwise, nothing is written
into the repository unasked, outputs get an ordinary file mode, and every error is one whole line that names the
problem and the fix (input-size limits, "not a checkpoint", "not a convert output folder", boxes outside the frame,
Pi-only commands off the Pi)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from firmware_packaging import rpk as R
from imx500_sam.errors import BadInputError, ExitCode, clip_words, first_line, last_line
from imx500_sam.prompt import clip_box_to_frame
from tests.rpk_fixtures import HIGHERHRNET, rpk_path

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    from imx500_sam.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(list(args))
    finally:
        os.chdir(old)
    return rc, out.getvalue(), err.getvalue()


def only_error_line(err: str) -> str:
    """The whole of stderr is one ``imx500-sam: error:`` line (no log spew, no traceback); returns it."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imx500-sam: error: "), err
    assert "shared/notes" not in err  # the maintainers' notes are not in the repository
    return lines[0]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.fixture(scope="module")
def photo_600x400(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import skimage.data

    path = tmp_path_factory.mktemp("photo") / "coffee.jpg"
    rgb = cv2.resize(skimage.data.coffee(), (600, 400), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


# ------------------------------------------------------------------------------------------- messages


def test_clip_words_never_cuts_a_word() -> None:
    text = "The size of tensor a (14) must match the size of tensor b (13) at non-singleton dimension 3\n more"
    for limit in range(10, len(text) + 5):
        got = clip_words(text, limit)
        assert "\n" not in got and len(got) <= limit + 3
        if got.endswith("..."):
            assert " ".join(text.split()).startswith(got[:-3])
            assert " ".join(text.split())[len(got) - 3] == " "  # cut where a word ended
    assert clip_words("short", 100) == "short"


def test_first_and_last_line_skip_blank_lines_and_clip() -> None:
    text = "\n  \nRuntimeError:   shapes   differ\n  details\n\n  the end, at last   \n \n"
    assert first_line(text) == "RuntimeError: shapes differ"
    assert last_line(text) == "the end, at last"
    assert last_line(text, 8) == "the end..." and first_line(text, 14) == "RuntimeError..."
    assert first_line(" \n\t") == last_line("") == ""


@pytest.mark.parametrize("command", ["check", "convert"])
def test_input_size_not_a_multiple_of_16_is_one_line(command: str, tmp_path: Path) -> None:
    args = [command, "--input-size", "100"] + (["-o", str(tmp_path / "o"), "--quiet"] if command == "convert" else [])
    rc, _, err = run_cli(*args)
    assert rc == ExitCode.BAD_INPUT
    line = only_error_line(err)
    assert "must each be a multiple of 16" in line and "Try --input-size 96 or 112." in line, line
    assert not (tmp_path / "o").exists() and not list(tmp_path.iterdir())


def test_input_size_outside_limits_cites_no_notes() -> None:
    rc, out, err = run_cli("check", "--input-size", "16", "--format", "json")
    assert rc == ExitCode.BAD_INPUT
    assert "outside 32..640 px" in out and "shared/notes" not in out + err


def test_photo_as_model_is_not_a_checkpoint(photo_600x400: Path) -> None:
    rc, _, err = run_cli("check", str(photo_600x400))
    assert rc == ExitCode.BAD_INPUT
    line = only_error_line(err)
    assert f"{photo_600x400}: not a checkpoint (a JPEG image)." in line and "would run code" not in line


def test_photo_as_emulate_is_not_a_convert_output_folder(photo_600x400: Path) -> None:
    rc, _, err = run_cli("run", "--emulate", str(photo_600x400), "--source", str(photo_600x400), "--box", "1,1,9,9")
    assert rc == ExitCode.BAD_INPUT
    line = only_error_line(err)
    assert "a file, not a convert output folder" in line and "convert -o" not in line.split("Give")[0]


# ------------------------------------------------------------------------------------------- boxes


@pytest.mark.parametrize(
    ("box", "clamped"),
    [
        ((550, 350, 200, 200), (550, 350, 50, 50)),
        ((-20, -10, 100, 60), (0, 0, 80, 50)),
        ((10, 20, 30, 40), None),  # inside: as it is, no notice
    ],
)
def test_clip_box_to_frame_clamps_with_a_notice(box: tuple, clamped: tuple | None) -> None:
    got, notice = clip_box_to_frame(box, (600, 400))
    if clamped is None:
        assert got == tuple(float(v) for v in box) and notice is None
    else:
        assert got == tuple(float(v) for v in clamped)
        assert notice == (
            f"box {','.join(map(str, box))} reaches outside the 600x400 frame: clamped to "
            f"{','.join(map(str, clamped))}."
        )


@pytest.mark.parametrize("box", [(600, 0, 10, 10), (-50, -50, 40, 40), (0, 0, 0, 5), (float("nan"), 0, 5, 5)])
def test_clip_box_to_frame_refuses_a_box_wholly_outside(box: tuple) -> None:
    with pytest.raises(BadInputError):
        clip_box_to_frame(box, (600, 400))


def test_eval_and_eval_device_say_when_they_clamp_a_box(tmp_path: Path, converted_default) -> None:
    """The same rule in eval (host) and eval --device: an annotation box partly outside its image is clamped with
    one notice line on stderr (and, on the device, in eval_device.json)."""
    import json

    ann, images = _tiny_coco(tmp_path / "data")
    coco = json.loads(ann.read_text())
    coco["annotations"][0]["bbox"] = [40, 10, 38, 30]  # reaches x = 78 in a 64-pixel-wide image
    ann.write_text(json.dumps(coco))
    notice = "1 of 1 boxes reach outside their image and were clamped to it (a.png annotation 1 40,10,38,30"
    rc, _, err = run_cli("eval", "--coco", str(ann), "--images", str(images))
    assert rc == 0, err
    assert err.count(notice) == 1
    out = tmp_path / "ev"
    rc, _, err = run_cli("eval", "--device", "--emulate", str(converted_default.out_dir), "--coco", str(ann),
                         "--images", str(images), "--out", str(out))  # fmt: skip
    assert rc == 0, err
    assert err.count(notice) == 1
    assert json.loads((out / "eval_device.json").read_text())["notices"][0].startswith(notice)


# ------------------------------------------------------------------------------------------- distill


def _tiny_coco(root: Path) -> tuple[Path, Path]:
    from imx500_sam.data.coco import rle_encode, write_coco

    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (64, 64, 3), np.uint8)
    cv2.imwrite(str(root / "images" / "a.png"), img)
    m = np.zeros((64, 64), bool)
    m[10:40, 12:50] = True
    ann = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [12, 10, 38, 30], "iscrowd": 0,
           "segmentation": rle_encode(m)}  # fmt: skip
    write_coco(root / "ann.json", [{"id": 1, "file_name": "a.png", "width": 64, "height": 64}], [ann], [])
    return root / "ann.json", root / "images"


def test_distill_refuses_an_existing_run_without_resume_or_overwrite(tmp_path: Path) -> None:
    ann, images = _tiny_coco(tmp_path / "data")
    run = tmp_path / "run"
    base = ["distill", "-o", str(run), "--coco", str(ann), "--images", str(images), "--teacher", "none",
            "--epochs", "1", "--steps-per-epoch", "2", "--batch", "2", "--low-res", "32", "--low-res-epochs", "1",
            "--threads", "1", "--quiet"]  # fmt: skip
    assert run_cli(*base)[0] == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert {"last.pt", "picosam3.pt", "history.json"} <= set(before)

    rc, _, err = run_cli(*base)
    assert rc == ExitCode.BAD_INPUT
    line = only_error_line(err)
    assert f"{run}: already exists." in line and "--overwrite" in line and "--resume" in line
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # hours of training kept

    rc, _, err = run_cli(*base, "--resume", "--overwrite")
    assert rc == ExitCode.BAD_INPUT and "choose one" in only_error_line(err)
    assert run_cli(*base, "--resume")[0] == 0  # continues (already finished: nothing to do)
    rc, _, err = run_cli(*base, "--overwrite", "--seed", "5")
    assert rc == 0, err
    assert (run / "picosam3.pt").read_bytes() != before["picosam3.pt"]


# ------------------------------------------------------------------------------------------- intrinsics


def test_intrinsics_outputs_and_from_merges(tmp_path: Path) -> None:
    src = tmp_path / "pose.rpk"
    src.write_bytes(rpk_path(HIGHERHRNET).read_bytes())
    original = src.read_bytes()
    labels = R.read_rpk(src).intrinsics["classes"]["labels"]
    assert len(labels) == 90  # COCO ids with gaps ("-")

    rc, _, err = run_cli("intrinsics", str(src), "--set", "inference_rate=5", "-o", str(src))
    assert rc == ExitCode.BAD_INPUT and "is the input file" in only_error_line(err) and "--in-place" in err
    assert src.read_bytes() == original

    out = tmp_path / "out.rpk"
    out.write_bytes(b"keep me")
    rc, _, err = run_cli("intrinsics", str(src), "--set", "inference_rate=5", "-o", str(out))
    assert rc == ExitCode.BAD_INPUT and f"{out}: already exists." in only_error_line(err)
    assert out.read_bytes() == b"keep me"

    rc, _, err = run_cli("intrinsics", str(src), "--from", '{"inference_rate": 7}', "-o", str(out), "--overwrite")
    assert rc == 0, err
    merged = R.read_rpk(out).intrinsics
    assert merged["inference_rate"] == 7 and merged["classes"]["labels"] == labels  # keys not named are kept
    assert merged["task"] == "pose estimation"
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()

    replaced = tmp_path / "replaced.rpk"
    rc, _, err = run_cli("intrinsics", str(src), "--from", '{"task": "segmentation"}', "--replace", "-o",
                         str(replaced))  # fmt: skip
    assert rc == 0, err
    assert R.read_rpk(replaced).intrinsics == {"task": "segmentation"}
    assert src.read_bytes() == original


# ------------------------------------------------------------------------------------------- bench host


def test_bench_host_writes_beside_the_user_never_over_a_previous_run(tmp_path: Path) -> None:
    committed = REPO / "benchmarks" / "results" / "bench_host"
    before = sorted(p.name for p in committed.iterdir()) if committed.is_dir() else []
    skip = ["--skip", "convert", "--skip", "throughput", "--skip", "check", "--skip", "accuracy"]
    rc, _, err = run_cli("bench", "host", *skip, cwd=tmp_path)
    assert rc == 0, err
    (made,) = [p for p in tmp_path.iterdir() if p.name.startswith("bench-host-")]
    assert (made / "bench_host.json").is_file()
    assert (sorted(p.name for p in committed.iterdir()) if committed.is_dir() else []) == before

    out = tmp_path / "h"
    out.mkdir()
    (out / "bench_host.json").write_text("{}")
    (out / "host_miou.png").write_bytes(b"a previous run's plot")
    rc, _, err = run_cli("bench", "host", *skip, "--out", str(out))
    assert rc == ExitCode.BAD_INPUT and f"{out}: already exists." in only_error_line(err)
    assert (out / "host_miou.png").is_file()
    rc, _, err = run_cli("bench", "host", *skip, "--out", str(out), "--overwrite")
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["bench_host.json", "bench_host.md"]  # no stale plot
    assert json.loads((out / "bench_host.json").read_text())["status"] == "complete"

    stranger = tmp_path / "not_a_bench"
    stranger.mkdir()
    (stranger / "thesis.tex").write_text("precious")
    rc, _, err = run_cli("bench", "host", *skip, "--out", str(stranger), "--overwrite")
    assert rc == ExitCode.BAD_INPUT and "not an output of this command" in only_error_line(err)
    assert (stranger / "thesis.tex").read_text() == "precious"


# ------------------------------------------------------------------------------------------- Pi-only


def test_pi_only_commands_say_so_off_the_pi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from imx500_sam import doctor as D
    from imx500_sam.pi import pi_model

    if pi_model() is not None:
        pytest.skip("this is a Raspberry Pi")
    monkeypatch.setitem(sys.modules, "picamera2", None)  # as on a host: no libcamera, no picamera2
    rc, _, err = run_cli("flash", str(rpk_path(HIGHERHRNET)))
    assert rc == ExitCode.TOOLCHAIN_MISSING
    line = only_error_line(err)
    assert "runs only on a Raspberry Pi" in line and "--host user@pi" in line and "doctor" not in line
    row = D.check_pi_only(D.DoctorEnv())
    assert row.status == "warn" and not row.required and "package (imx500-package)" in row.found


# ------------------------------------------------------------------------------------------- convert outputs


@pytest.mark.slow
def test_run_save_box_rules_and_file_mode(converted_default, photo_600x400: Path, tmp_path: Path) -> None:
    out_dir = str(converted_default.out_dir)
    save = tmp_path / "overlay.png"
    save.write_bytes(b"earlier overlay")
    base = ["run", "--emulate", out_dir, "--source", str(photo_600x400), "--save", str(save)]
    rc, _, err = run_cli(*base, "--box", "100,100,80,80")
    assert rc == ExitCode.BAD_INPUT and f"{save}: already exists." in only_error_line(err)
    assert save.read_bytes() == b"earlier overlay"

    rc, _, err = run_cli(*base, "--overwrite", "--box", "550,350,200,200", "--box", "-20,-10,100,60", "--json")
    assert rc == 0, err
    notices = [ln for ln in err.splitlines() if "reaches outside" in ln]
    assert notices == [
        "imx500-sam run: box 550,350,200,200 reaches outside the 600x400 frame: clamped to 550,350,50,50.",
        "imx500-sam run: box -20,-10,100,60 reaches outside the 600x400 frame: clamped to 0,0,80,50.",
    ]
    assert save.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert cv2.imread(str(save)).shape == (400, 600, 3)

    rc, _, err = run_cli(*base[:-2], "--box", "700,10,50,50")
    assert rc == ExitCode.BAD_INPUT and "lies outside the 600x400 frame" in only_error_line(err)

    rc, _, err = run_cli("package", str(converted_default.packer_out), "-o", str(tmp_path / "pkg"))
    assert rc == ExitCode.TOOLCHAIN_MISSING
    last = err.strip().splitlines()[-1]
    assert "runs only on a Raspberry Pi" in last and "doctor" not in last
    assert not re.search(r"Traceback", err)
