"""The paper's training tuple from a prepared folder: two images of one identity, their landmark maps
and modalities (``I_A, I_B, L_A, L_B, c_A, c_B``).

Index ``i`` of an epoch uses manifest row ``i`` as side A and draws side B (another expression and/or
modality of the same person) and the augmentation from a generator seeded with
``(seed, epoch, i)``. A sample is therefore a pure function of those three numbers: it does not depend
on worker processes, on the order of calls, or on anything drawn before, which is what exact resume
needs. Call :meth:`PairedPortraitDataset.set_epoch` before iterating each epoch; with
``DataLoader(num_workers>0)`` do so before the iterator is created (``persistent_workers=False``,
the default, copies the dataset into the workers at that moment).

Synthetic pairs (not in the paper; ``synthetic_ratio`` > 0 mixes them in, drawn with the same seeded
generator): the warp-guided G learns from them what a landmark warp cannot do alone.

* ``expression``: a picture warped (thin-plate spline) to a random expression (the data-derived smile
  direction with a random strength, a random mouth opening, plus small per-point noise) is side A;
  the original picture, which G must restore, is side B.
* ``teeth``: a smiling picture warped shut onto the same person's neutral landmarks is side A; the
  real smile is side B, so G must draw the teeth the warp squeezed away.

Two more draws for converting the whole picture between modalities (not in the paper):

* context windows (``context_ratio``): both sides are read from the prepared *context* crops (hair,
  shoulders, background around the face; ``train.prepare``) through one random model-size window,
  with the landmark map drawn where the landmarks fall, so that G converts whatever surrounds a face
  and the editor can convert a whole photo in tiles;
* modality mixtures (``modality_mix_ratio``): side B is the same expression in another modality at a
  random strength s in [0, 1]. G is conditioned on the convex combination ``(1 - s) c_A + s c_B``
  (the paper's continuous conditioning applied to the attribute vector c, Sec. 3.2) and side B's image
  is the same blend of the two pictures (they are pixel-aligned: one alignment, one expression).
  Every sample carries these vectors as ``condition_a``/``condition_b`` (B, n) beside the indices.

One draw that weights the pairs rather than making new ones (not in the paper):

* opened-mouth pairs (``opening_ratio``): a neutral row whose person's smile, in the same modality,
  opens the mouth (a non-empty hallucination mask, :func:`portraitgan_hub.warp_guidance.landmark_hallucination`)
  is paired with that smile with this probability. Drawn uniformly such pairs are rare (under 1 % of
  the London samples); this oversamples a rare, important kind of example, as class-balanced sampling
  does (docs/model.md, "Opened-mouth pairs").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from portraitgan_hub.condition import condition_vector
from portraitgan_hub.faces.expressions import ExpressionControls
from portraitgan_hub.faces.landmark_map import draw_landmark_map
from portraitgan_hub.faces.landmarks import LEFT_EYE, RIGHT_EYE, flip_landmarks
from portraitgan_hub.image_tensors import pil_to_tensor, tensor_to_pil
from portraitgan_hub.thin_plate_spline import warp_by_landmarks
from portraitgan_hub.warp_guidance import landmark_hallucination

SYNTHETIC_KINDS = ("expression", "teeth")
#: Ranges of the random expression of a synthetic ``expression`` pair (see ExpressionControls).
SYNTHETIC_SMILE = (-0.6, 1.4)
SYNTHETIC_MOUTH_OPEN = (-0.3, 0.5)


@dataclass(frozen=True)
class Augmentation:
    """One draw of the augmentation, applied identically to sides A and B."""

    flip: bool = False
    scale: float = 1.0
    #: Translation (dx, dy) as a fraction of the image width and height.
    shift: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class SyntheticPlan:
    """How side A of a synthetic pair is made from side B (see the module docstring)."""

    kind: str  # "expression" or "teeth"
    smile: float = 0.0
    mouth_open: float = 0.0
    noise_seed: int = 0
    #: For ``teeth``: the row whose landmarks (the same person, neutral) side A is warped onto.
    neutral_row: int = -1


@dataclass(frozen=True)
class SamplePlan:
    row_a: int
    row_b: int
    augmentation: Augmentation
    synthetic: SyntheticPlan | None = None
    #: Position of the model-size window in the context crops, as fractions (0..1) of the free range
    #: per axis; None: the face crops.
    window: tuple[float, float] | None = None
    #: Strength s of side B's modality in a modality mixture (see the module docstring); 1: no mixture.
    modality_strength: float = 1.0


def read_manifest(root: str | Path) -> list[dict[str, Any]]:
    path = Path(root) / "manifest.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: prepare the folder with `python -m train.prepare` first")
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def achromatic_modalities(root: str | Path, modalities: Sequence[str], sample: int = 16) -> list[str]:
    """The modalities of a prepared folder whose images are grey (R = G = B up to 1 level), judged on
    up to ``sample`` images each, in the order of ``modalities``; those the folder lacks are left out."""
    rows = read_manifest(root)
    found = []
    for modality in modalities:
        paths = [row["path"] for row in rows if row["modality"] == modality][:sample]
        grey = bool(paths)
        for path in paths:
            with Image.open(Path(root) / path) as stored:
                pixels = np.asarray(stored.convert("RGB"), dtype=np.int16)
            if int((pixels.max(axis=2) - pixels.min(axis=2)).max()) > 1:
                grey = False
                break
        if grey:
            found.append(modality)
    return found


class PairedPortraitDataset(Dataset):
    """Pairs (A, B) of the same identity from a ``train.prepare`` folder, as tensors.

    ``modalities`` is the model's ordered modality list: ``modality_a``/``modality_b`` index into it,
    and rows of other modalities are left out. A modality of the model that the folder lacks is an error,
    unless ``require_all_modalities`` is False (fine-tuning data may leave old modalities out).
    ``image_size`` resizes the crops (default: as stored).
    ``max_scale``/``max_shift`` enable a random zoom of ``1 +- max_scale`` and a shift of up to
    ``max_shift`` times the side; the border they uncover is black.
    """

    def __init__(
        self,
        root: str | Path,
        modalities: Sequence[str],
        *,
        split: str | None = "train",
        image_size: int | None = None,
        line_width: int = 2,
        flip_probability: float = 0.5,
        max_scale: float = 0.0,
        max_shift: float = 0.0,
        seed: int = 0,
        synthetic_ratio: float = 0.0,
        synthetic_kinds: Sequence[str] = SYNTHETIC_KINDS,
        synthetic_noise: float = 0.01,
        context_ratio: float = 0.0,
        modality_mix_ratio: float = 0.0,
        opening_ratio: float = 0.0,
        require_all_modalities: bool = True,
    ) -> None:
        self.root = Path(root)
        self.modalities = list(modalities)
        rows = read_manifest(self.root)
        absent = sorted(set(self.modalities) - {row["modality"] for row in rows})
        if absent and require_all_modalities:
            present = sorted({row["modality"] for row in rows})
            raise ValueError(f"modalities {absent} are not in {self.root}; it has {present}")
        self.rows = [
            row for row in rows if row["modality"] in self.modalities and (split is None or row["split"] == split)
        ]
        if not self.rows:
            raise ValueError(f"no rows of split {split!r} and modalities {self.modalities} in {self.root}")
        self.by_identity: dict[str, list[int]] = {}
        for index, row in enumerate(self.rows):
            self.by_identity.setdefault(row["identity"], []).append(index)
        self.image_size = image_size
        self.line_width = line_width
        self.flip_probability = flip_probability
        self.max_scale = max_scale
        self.max_shift = max_shift
        self.seed = seed
        self.epoch = 0
        unknown = sorted(set(synthetic_kinds) - set(SYNTHETIC_KINDS))
        if unknown or not 0.0 <= synthetic_ratio <= 1.0 or (synthetic_ratio and not synthetic_kinds):
            raise ValueError(
                f"synthetic pairs: ratio must be in [0, 1] and kinds a non-empty subset of {SYNTHETIC_KINDS}, "
                f"got {synthetic_ratio} and {list(synthetic_kinds)}"
            )
        self.synthetic_ratio = float(synthetic_ratio)
        self.synthetic_kinds = tuple(synthetic_kinds)
        #: Per-point noise of a synthetic expression, as a fraction of the distance between the eyes.
        self.synthetic_noise = float(synthetic_noise)
        for name, ratio in (
            ("context_ratio", context_ratio),
            ("modality_mix_ratio", modality_mix_ratio),
            ("opening_ratio", opening_ratio),
        ):
            if not 0.0 <= ratio <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {ratio}")
        if context_ratio and not all("context_path" in row for row in self.rows):
            raise ValueError(
                f"context_ratio {context_ratio} needs context crops, and {self.root} has none: prepare it again "
                "with the current `python -m train.prepare` (it adds them to the folder, keeping what is there)"
            )
        self.context_ratio = float(context_ratio)
        self.modality_mix_ratio = float(modality_mix_ratio)
        self.same_expression: dict[tuple[str, str], list[int]] = {}
        for index, row in enumerate(self.rows):
            self.same_expression.setdefault((row["identity"], row["expression"]), []).append(index)
        self.neutral_of: dict[tuple[str, str], int] = {
            (row["identity"], row["modality"]): index
            for index, row in enumerate(self.rows)
            if row["expression"] == "neutral"
        }
        self.opening_ratio = float(opening_ratio)
        #: neutral row -> the same person's smile in the same modality, where that smile opens the mouth.
        self.opening_of: dict[int, int] = self._opening_pairs() if opening_ratio else {}

    def _opening_pairs(self) -> dict[int, int]:
        smile_of = {
            (row["identity"], row["modality"]): index
            for index, row in enumerate(self.rows)
            if row["expression"] == "smiling"
        }
        pairs: dict[int, int] = {}
        opens: dict[bytes, bool] = {}  # modalities of one person share their landmarks: one TPS solve each
        for key, neutral in self.neutral_of.items():
            smile = smile_of.get(key)
            if smile is None:
                continue
            points = np.asarray([self.rows[neutral]["landmarks"], self.rows[smile]["landmarks"]], np.float32)
            key = points.tobytes()
            if key not in opens:
                with Image.open(self.root / self.rows[smile]["path"]) as stored:
                    width, height = stored.size  # the landmarks' pixel frame
                source, target = torch.from_numpy(points)[:, None]
                opens[key] = bool(landmark_hallucination(source, target, height, width).sum() > 0)
            if opens[key]:
                pairs[neutral] = smile
        return pairs

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.rows)

    def plan(self, index: int) -> SamplePlan:
        """Which rows and which augmentation index ``index`` uses in the current epoch."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        row_a = index
        others = [i for i in self.by_identity[self.rows[row_a]["identity"]] if i != row_a]
        row_b = others[rng.integers(len(others))] if others else row_a
        flip = bool(rng.random() < self.flip_probability)
        scale = 1.0 + float(rng.uniform(-self.max_scale, self.max_scale))
        dx, dy = (float(v) for v in rng.uniform(-self.max_shift, self.max_shift, size=2))
        augmentation = Augmentation(flip, scale, (dx, dy))
        # Drawn after everything above, so that ratios of 0 leave every sample as it was.
        synthetic = None
        if self.synthetic_ratio and rng.random() < self.synthetic_ratio:
            row_b, synthetic = row_a, self._synthetic_plan(row_a, rng)
        window = None
        if self.context_ratio and rng.random() < self.context_ratio:
            window = (float(rng.random()), float(rng.random()))
        strength = 1.0
        if synthetic is None and self.modality_mix_ratio and rng.random() < self.modality_mix_ratio:
            data = self.rows[row_a]
            pool = [
                i
                for i in self.same_expression[(data["identity"], data["expression"])]
                if self.rows[i]["modality"] != data["modality"]
            ]
            if pool:
                row_b, strength = pool[rng.integers(len(pool))], float(rng.random())
        if row_a in self.opening_of and rng.random() < self.opening_ratio:
            row_b, synthetic, strength = self.opening_of[row_a], None, 1.0
        return SamplePlan(row_a, row_b, augmentation, synthetic, window, strength)

    def _synthetic_plan(self, row: int, rng: np.random.Generator) -> SyntheticPlan:
        kind = self.synthetic_kinds[rng.integers(len(self.synthetic_kinds))]
        smile = float(rng.uniform(*SYNTHETIC_SMILE))
        mouth_open = float(rng.uniform(*SYNTHETIC_MOUTH_OPEN))
        noise_seed = int(rng.integers(2**31))
        data = self.rows[row]
        neutral = self.neutral_of.get((data["identity"], data["modality"]), -1)
        if kind == "teeth" and data["expression"] == "smiling" and neutral >= 0:
            return SyntheticPlan("teeth", neutral_row=neutral, noise_seed=noise_seed)
        return SyntheticPlan("expression", smile, mouth_open, noise_seed)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        plan = self.plan(index)
        sample: dict[str, Any] = {"identity": self.rows[plan.row_a]["identity"]}
        sides = {
            side: self.load(self.rows[row], plan.augmentation, plan.window)
            for side, row in (("a", plan.row_a), ("b", plan.row_b))
        }
        if plan.synthetic is not None:
            sides["a"] = self.synthesize(sides["b"], plan)
        conditions = {
            side: self._one_hot(self.rows[row]["modality"]) for side, row in (("a", plan.row_a), ("b", plan.row_b))
        }
        if plan.modality_strength < 1.0:  # side B: the blend of the two pictures, and of the two vectors
            s = plan.modality_strength
            blend = Image.blend(sides["a"][0], sides["b"][0], s)
            sides["b"] = (blend, sides["b"][1])
            conditions["b"] = (1.0 - s) * conditions["a"] + s * conditions["b"]
        for side, row_index in (("a", plan.row_a), ("b", plan.row_b)):
            row = self.rows[row_index]
            image, landmarks = sides[side]
            sample[f"image_{side}"] = pil_to_tensor(image)[0]
            size = (image.height, image.width)
            landmark_map = draw_landmark_map(landmarks, size, line_width=self.line_width)
            sample[f"landmarks_map_{side}"] = torch.from_numpy(np.asarray(landmark_map, np.float32))[None]
            sample[f"landmarks_{side}"] = torch.from_numpy(landmarks)
            sample[f"modality_{side}"] = torch.tensor(self.modalities.index(row["modality"]), dtype=torch.long)
            sample[f"condition_{side}"] = conditions[side]
            sample[f"expression_{side}"] = row["expression"]
        sample["synthetic"] = plan.synthetic.kind if plan.synthetic is not None else ""
        sample["real_a"] = torch.tensor(plan.synthetic is None)  # side A is a picture, not a warp's
        sample["context"] = plan.window is not None
        return sample

    def _one_hot(self, modality: str) -> torch.Tensor:
        return condition_vector(torch.tensor([self.modalities.index(modality)]), len(self.modalities))[0]

    def synthesize(self, original: tuple[Image.Image, np.ndarray], plan: SamplePlan) -> tuple[Image.Image, np.ndarray]:
        """Side A of a synthetic pair: ``original`` (image, its (68, 2) points) warped to new landmarks."""
        image, points = original
        synthetic = plan.synthetic
        if synthetic is None:
            raise ValueError("not a synthetic sample plan")
        if synthetic.kind == "teeth":
            _, target = self.load(self.rows[synthetic.neutral_row], plan.augmentation, plan.window)
        else:
            target = ExpressionControls(smile=synthetic.smile, mouth_open=synthetic.mouth_open).apply(points)
            eyes = np.linalg.norm(points[list(LEFT_EYE)].mean(0) - points[list(RIGHT_EYE)].mean(0))
            noise = np.random.default_rng(synthetic.noise_seed).normal(0.0, self.synthetic_noise * eyes, points.shape)
            target = target + noise
        target = np.asarray(target, dtype=np.float32)
        warped = warp_by_landmarks(pil_to_tensor(image), torch.from_numpy(points)[None], torch.from_numpy(target)[None])
        return tensor_to_pil(warped)[0], target

    def load(
        self, row: dict[str, Any], augmentation: Augmentation, window: tuple[float, float] | None = None
    ) -> tuple[Image.Image, np.ndarray]:
        """A row's image and (68, 2) landmarks, resized and augmented (pixel-index coordinates).

        ``window``: read a crop-size window of the row's context crop instead, at these fractions of
        the free range (x, y); (0.5, 0.5) is the face crop itself.
        """
        points = np.asarray(row["landmarks"], dtype=np.float32)
        if window is None:
            with Image.open(self.root / row["path"]) as stored:
                image = stored.convert("RGB")
        else:
            with Image.open(self.root / row["context_path"]) as stored:
                context = stored.convert("RGB")
            with Image.open(self.root / row["path"]) as stored:
                side = stored.width
            free = context.width - side
            left, top = round(window[0] * free), round(window[1] * free)
            image = context.crop((left, top, left + side, top + side))
            points = points + np.array([free / 2.0 - left, free / 2.0 - top], np.float32)
        if self.image_size and image.size != (self.image_size, self.image_size):
            sx, sy = self.image_size / image.width, self.image_size / image.height
            image = image.resize((self.image_size, self.image_size), Image.BICUBIC)
            points = (points + 0.5) * np.array([sx, sy], np.float32) - 0.5
        if augmentation.scale != 1.0 or augmentation.shift != (0.0, 0.0):
            image, points = _zoom_and_shift(image, points, augmentation)
        if augmentation.flip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            points = flip_landmarks(points, image.width)
        return image, points.astype(np.float32)


def _zoom_and_shift(image: Image.Image, points: np.ndarray, aug: Augmentation) -> tuple[Image.Image, np.ndarray]:
    """Scale about the image centre, then shift by ``aug.shift`` times the side."""
    width, height = image.size
    dx, dy = aug.shift[0] * width, aug.shift[1] * height
    cx, cy = width / 2.0, height / 2.0  # centre in PIL's continuous coordinates (pixel i spans [i, i+1))
    s = aug.scale
    # PIL wants the inverse map: output (x, y) -> input ((x - cx - dx) / s + cx, ...).
    inverse = (1 / s, 0.0, cx - (cx + dx) / s, 0.0, 1 / s, cy - (cy + dy) / s)
    image = image.transform(image.size, Image.Transform.AFFINE, inverse, Image.BICUBIC, fillcolor=(0, 0, 0))
    centre = np.array([cx - 0.5, cy - 0.5], np.float32)  # the same centre in pixel-index coordinates
    points = (points - centre) * s + centre + np.array([dx, dy], np.float32)
    return image, points
