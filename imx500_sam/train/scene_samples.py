"""Training crops from crowded composite scenes (issue #19): the prompted object among neighbours, like the test.

``SceneSampler`` draws scenes with ``imx500_sam.data.composite.compose_scene`` (several cut-outs at camera scale on a
real photo: neighbours, occlusion, the same object side by side, touching edges, sensor-like degradations) from
``train`` cut-outs and backgrounds, with ``TRAIN_SCENE_SEED`` (not the evaluation set's seed), and yields the prompt
crop of one visible instance under the model's crop convention, in ``PasteSampler``'s format: (image uint8, teacher
zeros, conf 0, gt float, has_gt 1). The ground truth is the instance's exact visible mask; no teacher target (the
teacher's soft mask on composites is not computed; the loss's teacher term is off for these crops, as for pastes).

Composing a 640x480 scene costs far more than cropping it, so each scene is kept for several crops: ``pool`` scenes
are live at once (crops from one batch come from several scenes) and each serves ``uses`` crops per prompted
instance (a random visible instance, jittered box and, in ``make_batch``, a random flip) before a new scene replaces
it. Most of a scene's cost is ``degrade`` (about 40 of 60 ms here), so crops/s grows with ``uses``. What it yields is a
function of the generator's draws since the last ``reset`` (``distill`` resets at each epoch's start, so a resumed
run draws what an uninterrupted one did).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imx500_sam.data.composite import Background, CompositeParams, Cutout, Scene, compose_scene
from imx500_sam.prompt import SHIFTED, check_convention, crop, prompt_roi
from imx500_sam.train.samples import jitter_box

TRAIN_SCENE_SEED = 1019  # training scenes; the evaluation set draws with composite_set.COMPOSITE_SEED (19)
MIN_SIDE = 6.0  # an instance whose box is thinner than this (frame pixels) is not prompted, as in TargetSampler


@dataclass
class _Slot:
    scene: Scene
    boxes: list[int]  # indices of the instances that may be prompted
    left: int  # crops it still serves


def load_scene_inputs(cutouts: Sequence[Path], backgrounds: Sequence[Path]) -> tuple[list[Cutout], list[Background]]:
    """Cut-outs (RGBA files; ones without alpha or with an empty one are skipped; named by file name, by path where
    two share one) and background photos."""
    from imx500_sam.data.sources import read_rgb, read_rgba

    cuts: list[Cutout] = []
    seen: set[str] = set()
    for p in cutouts:
        name = p.name if p.name not in seen else str(p)
        try:
            cuts.append(Cutout.of(name, read_rgba(p)))
        except ValueError:
            continue
        seen.add(name)
    return cuts, [Background(p.name, read_rgb(p)) for p in backgrounds]


class SceneSampler:
    """Prompt crops of visible instances in crowded composite scenes (exact visible masks as ground truth)."""

    def __init__(
        self,
        cutouts: Sequence[Cutout],
        backgrounds: Sequence[Background],
        size: int = 96,
        convention: str = SHIFTED,
        seed: int = TRAIN_SCENE_SEED,
        params: CompositeParams | None = None,
        pool: int = 8,
        uses: int = 3,
    ) -> None:
        if not cutouts or not backgrounds:
            raise ValueError("composite scenes need at least one cut-out and one background photo")
        names = [c.name for c in cutouts]
        if len(set(names)) != len(names):  # compose_scene finds a cut-out by name
            raise ValueError("composite scenes need cut-outs with distinct names")
        self.cutouts, self.backgrounds = list(cutouts), list(backgrounds)
        self.size, self.seed, self.params = size, seed, params or CompositeParams()
        self.convention = check_convention(convention)
        self.pool, self.uses = pool, uses
        self.scenes_composed = 0
        self.reset()

    def reset(self) -> None:
        """Forget the live scenes (what follows depends only on the generator's draws from here)."""
        self._slots: list[_Slot | None] = [None] * self.pool

    def _new_slot(self, rng: np.random.Generator) -> _Slot:
        for _ in range(50):
            scene = compose_scene(self.cutouts, self.backgrounds, self.seed, int(rng.integers(2**62)), self.params)
            self.scenes_composed += 1
            boxes = [i for i, s in enumerate(scene.instances) if min(s.bbox[2], s.bbox[3]) >= MIN_SIDE]
            if boxes:
                return _Slot(scene, boxes, self.uses * len(boxes))
        raise RuntimeError("50 composite scenes in a row without a visible instance: cut-outs too small?")

    def sample(self, rng: np.random.Generator, jitter: float = 0.05) -> tuple[np.ndarray, ...]:
        """One crop: (image uint8, teacher zeros, conf 0, gt float {0, 1}, has_gt 1)."""
        k = int(rng.integers(self.pool))
        slot = self._slots[k]
        if slot is None or slot.left <= 0:
            slot = self._slots[k] = self._new_slot(rng)
        slot.left -= 1
        inst = slot.scene.instances[slot.boxes[int(rng.integers(len(slot.boxes)))]]
        img = slot.scene.rgb
        h, w = img.shape[:2]
        roi = prompt_roi(tuple(jitter_box(np.asarray(inst.bbox, np.float32), rng, jitter)), (w, h), self.convention)
        im = crop(img, roi, self.size)
        g = (crop(inst.mask.astype(np.uint8) * 255, roi, self.size) > 127).astype(np.float32)
        return im, np.zeros_like(g), 0.0, g, 1.0
