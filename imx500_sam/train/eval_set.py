"""What ``eval`` scored: the set (its name, the role it is used in, each image's record) and the results.

Before scoring, the set is checked against the data-role registry (an image that is a registered train, calibrate
or select picture is refused, exit 2) and against the model's own training images (its sidecar's
``training.images``, by sha256), so a figure is never measured on pixels the model or its choice saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imx500_sam.data.roles import ImageRecord, Role, records_to_json


@dataclass(frozen=True)
class EvalSet:
    """The images a run scored: a name (the annotation file or a registry set), their role and records."""

    name: str
    role: Role
    images: tuple[ImageRecord, ...]
    instances: int

    def to_json(self) -> dict[str, Any]:
        """``{name, role, instances, images: [{name, source, sha256}]}``."""
        return {
            "name": self.name,
            "role": self.role.value,
            "instances": self.instances,
            "images": records_to_json(self.images),
        }


@dataclass
class EvalReport:
    """``eval --json``: the protocol, the scored set, one result per model."""

    protocol: str
    set: EvalSet
    results: list[Any] = field(default_factory=list)  # EvalResult or PaperResult (each with to_json)

    def to_json(self) -> dict[str, Any]:
        """The JSON object ``eval --json`` prints."""
        return {"protocol": self.protocol, "set": self.set.to_json(), "results": [r.to_json() for r in self.results]}


def scored_set(name: str, paths: Sequence[Path], instances: int, models: Sequence[Path | None] = ()) -> EvalSet:
    """Records of the images to score, refused (RoleConflictError, exit 2) if one is another role's picture
    (registry) or one of ``models``' training images (their sidecars)."""
    from imx500_sam.data.fingerprint import Fingerprint
    from imx500_sam.data.roles import Named, check_against_registry, check_records, model_training_images
    from imx500_sam.train.evaluate import read_image

    records: list[ImageRecord] = []
    named: list[Named] = []
    for path in dict.fromkeys(Path(p) for p in paths):
        fp = Fingerprint.of(read_image(path))  # the same one line as the evaluation itself gives
        records.append(ImageRecord(path.name, str(path), fp.sha256))
        named.append(Named(str(path), fp))
    check_against_registry(Role.EVALUATE, named)
    for model in models:
        if model is not None:
            check_records(Role.EVALUATE, records, Role.TRAIN, model_training_images(model))
    return EvalSet(name, Role.EVALUATE, tuple(records), instances)


def evaluate_set(
    coco: Path,
    images: Path,
    set_name: str,
    protocol: str = "image",
    model: Path | None = None,
    int8: Path | None = None,
    teacher: str | None = None,
    overlays: Path | None = None,
    limit: int | None = None,
    crop: str | None = None,
    progress: bool = False,
) -> EvalReport:
    """``eval`` on a COCO file: the set's roles checked first (``scored_set``), then each model scored by
    ``protocol`` (``image``: ``imx500_sam.train.evaluate``; ``paper``: ``imx500_sam.train.paper_protocol``, float
    and INT8 only) on the first ``limit`` instances (all when None)."""
    from imx500_sam.defaults import DEFAULT_CHECKPOINT

    checkpoint = Path(model) if model else DEFAULT_CHECKPOINT
    if protocol == "paper":
        from imx500_sam.train.paper_protocol import paper_instances, run_paper_eval

        instances = paper_instances(coco, images, limit)
        scored = scored_set(set_name, [i.path for i in instances], len(instances), [checkpoint])
        return EvalReport(protocol, scored, run_paper_eval(instances, model, int8, progress=progress))
    from imx500_sam.data.coco import load_coco
    from imx500_sam.train.evaluate import evaluate_models, limit_instances

    data = limit_instances(load_coco(coco, images), limit)
    scored = scored_set(set_name, [im.path for im in data], sum(len(im.instances) for im in data), [checkpoint])
    results = evaluate_models(data, model, int8, teacher, overlays=overlays, crop=crop, progress=progress)
    return EvalReport(protocol, scored, results)
