"""The data-role registry on the real photos: every picture has one role, by pixels; planted overlaps are refused."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from imx500_sam.data import roles
from imx500_sam.data.fingerprint import Fingerprint, pixel_sha256, same_picture
from imx500_sam.data.roles import Role, RoleConflictError, named


@pytest.fixture(scope="module")
def real_index() -> list[roles.IndexedImage]:
    """Fingerprints rebuilt from the real photos (fetched into the cache as a user's first run would)."""
    return roles.build_index()


def test_every_registered_picture_has_one_role(real_index) -> None:
    """No two registered photos of different roles are one picture (renamed, resized or cropped), and the
    committed index that commands check against is the real photos' (not stale)."""
    roles.check_registry(real_index)
    committed = {i.name: i for i in roles.load_index()}
    assert [i.name for i in real_index] == list(committed)
    for item in real_index:
        c = committed[item.name]
        assert (c.role, c.source, c.fingerprint.sha256, c.fingerprint.phash) == (
            item.role,
            item.source,
            item.fingerprint.sha256,
            item.fingerprint.phash,
        ), item.name
    by_role = {r: len(roles.registered(r)) for r in Role}
    assert by_role == {Role.TRAIN: 43, Role.CALIBRATE: 7, Role.SELECT: 7, Role.EVALUATE: 12}
    # the known aliases of one picture share a role: scikit-image's cat() is chelsea()
    assert roles.role_of("skimage_cat.png") is roles.role_of("skimage_chelsea.png") is Role.TRAIN


def test_cutouts_are_no_other_roles_picture(real_index) -> None:
    """Tuxpaint's cut-outs (all train) are none of the calibrate / select / evaluate photos."""
    from imx500_sam.data.sources import fetch_cutouts

    others = [roles.Named(i.name, i.fingerprint) for i in real_index if i.role is not roles.CUTOUTS_ROLE]
    for path in fetch_cutouts()[::5]:
        rgba = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        fp = Fingerprint.of(cv2.cvtColor(rgba[:, :, :3], cv2.COLOR_BGR2RGB))
        for o in others:
            assert not same_picture(fp, o.fingerprint, crops=False), (path.name, o.name)


def _evaluate_photo() -> tuple[str, np.ndarray]:
    img = roles.load_role(Role.EVALUATE)[0]
    return img.record.name, img.rgb


def test_planted_overlaps_are_refused() -> None:
    """A renamed copy, a crop and a resize of an evaluate photo, used to train, are each refused with both roles named;
    an unrelated picture passes."""
    name, rgb = _evaluate_photo()
    h, w = rgb.shape[:2]
    planted = {
        "renamed.png": rgb,
        "crop.png": rgb[h // 5 : h // 5 + h // 2, w // 4 : w // 4 + w // 2],
        "resized.png": cv2.resize(rgb, (w * 2 // 3, h * 2 // 3), interpolation=cv2.INTER_AREA),
        "crop_resized.png": cv2.resize(rgb[h // 10 :, : w * 3 // 4], None, fx=1.3, fy=1.3),
    }
    for fake, pixels in planted.items():
        with pytest.raises(RoleConflictError, match=rf"{fake} \(role train\).*{name}.*role evaluate"):
            roles.check_against_registry(Role.TRAIN, [named(fake, pixels)])
    roles.check_against_registry(Role.EVALUATE, [named(name, rgb)])  # its own role: fine
    noise = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    roles.check_against_registry(Role.TRAIN, [named("noise.png", cv2.GaussianBlur(noise, (9, 9), 3))])
    # two user sets sharing a picture
    with pytest.raises(RoleConflictError, match=r"crop\.png"):
        roles.check_disjoint(
            {Role.CALIBRATE: [named("a.png", rgb)], Role.EVALUATE: [named("crop.png", planted["crop.png"])]}
        )


def test_a_planted_registry_overlap_fails_the_registry_check(real_index) -> None:
    """The registry check itself fails when a registered photo of one role is a crop of another's."""
    name, rgb = _evaluate_photo()
    h, w = rgb.shape[:2]
    fake = roles.IndexedImage("planted.png", "a test", Role.SELECT, Fingerprint.of(rgb[h // 4 :, w // 6 :]))
    with pytest.raises(RoleConflictError, match=rf"planted.png.*{name}|{name}.*planted.png"):
        roles.check_registry([*real_index, fake])


def test_image_records_round_trip() -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    rec = roles.ImageRecord("x.png", "here", pixel_sha256(rgb))
    assert roles.records_from_json(roles.records_to_json([rec])) == [rec]
    assert rec.sha256 == pixel_sha256(rgb.copy()) != pixel_sha256(rgb + 1)


def test_convert_refuses_calibration_photos_of_another_role(tmp_path, capsys) -> None:
    """convert --calib DIR with a crop of a training photo among the photos: exit 2 naming both roles, no output."""
    from imx500_sam.cli import main
    from imx500_sam.errors import ExitCode

    train = roles.load_role(Role.TRAIN)[3]
    h, w = train.rgb.shape[:2]
    (tmp_path / "calib").mkdir()
    cv2.imwrite(str(tmp_path / "calib" / "mine.png"), cv2.cvtColor(train.rgb[h // 8 :, w // 8 :], cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    rc = main(["convert", "-o", str(out), "--calib", str(tmp_path / "calib"), "-q"])
    err = capsys.readouterr().err
    assert rc == ExitCode.BAD_INPUT and "mine.png (role calibrate)" in err and f"{train.record.name}" in err
    assert "role train" in err and not out.exists()


def test_planted_cutout_overlaps_are_refused() -> None:
    """An evaluate cut-out renamed, resized, or with its transparent pixels recoloured, used to train, is refused
    naming both roles; a training cut-out passes; two user sets sharing a cut-out are refused."""
    from imx500_sam.data.roles import Kind, named_cutout
    from imx500_sam.data.sources import fetch_cutouts, read_rgba

    cut = roles.load_role(Role.EVALUATE, Kind.CUTOUT)[10]
    rgba = read_rgba(cut.path)
    recoloured = rgba.copy()
    recoloured[recoloured[:, :, 3] == 0, :3] = (0, 255, 0)
    planted = {
        "renamed.png": rgba,
        "resized.png": cv2.resize(rgba, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_LINEAR),
        "recoloured.png": recoloured,
    }
    for fake, pixels in planted.items():
        with pytest.raises(RoleConflictError, match=rf"{fake} \(role train\).*{cut.record.name}.*role evaluate"):
            roles.check_against_registry(Role.TRAIN, [named_cutout(fake, pixels)])
    roles.check_against_registry(Role.EVALUATE, [named_cutout(cut.record.name, rgba)])  # its own role: fine
    train = read_rgba(fetch_cutouts()[0])
    roles.check_against_registry(Role.TRAIN, [named_cutout("tux.png", train)])
    with pytest.raises(RoleConflictError, match=r"resized\.png"):
        roles.check_disjoint(
            {
                Role.TRAIN: [named_cutout("a.png", rgba)],
                Role.EVALUATE: [named_cutout("resized.png", planted["resized.png"])],
            }
        )
