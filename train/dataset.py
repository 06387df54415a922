"""The paper's training tuple from a prepared folder: two images of one identity, their landmark maps
and modalities (``I_A, I_B, L_A, L_B, c_A, c_B``).

Index ``i`` of an epoch uses manifest row ``i`` as side A and draws side B (another expression and/or
modality of the same person) and the augmentation from a generator seeded with
``(seed, epoch, i)``. A sample is therefore a pure function of those three numbers: it does not depend
on worker processes, on the order of calls, or on anything drawn before, which is what exact resume
needs. Call :meth:`PairedPortraitDataset.set_epoch` before iterating each epoch; with
``DataLoader(num_workers>0)`` do so before the iterator is created (``persistent_workers=False``,
the default, copies the dataset into the workers at that moment).
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

from portraitgan_hub.faces.landmark_map import draw_landmark_map
from portraitgan_hub.faces.landmarks import flip_landmarks
from portraitgan_hub.model import pil_to_tensor


@dataclass(frozen=True)
class Augmentation:
    """One draw of the augmentation, applied identically to sides A and B."""

    flip: bool = False
    scale: float = 1.0
    #: Translation (dx, dy) as a fraction of the image width and height.
    shift: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class SamplePlan:
    row_a: int
    row_b: int
    augmentation: Augmentation


def read_manifest(root: str | Path) -> list[dict[str, Any]]:
    path = Path(root) / "manifest.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: prepare the folder with `python -m train.prepare` first")
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


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
        return SamplePlan(row_a, row_b, Augmentation(flip, scale, (dx, dy)))

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        plan = self.plan(index)
        sample: dict[str, Any] = {"identity": self.rows[plan.row_a]["identity"]}
        for side, row_index in (("a", plan.row_a), ("b", plan.row_b)):
            row = self.rows[row_index]
            image, landmarks = self.load(row, plan.augmentation)
            sample[f"image_{side}"] = pil_to_tensor(image)[0]
            size = (image.height, image.width)
            landmark_map = draw_landmark_map(landmarks, size, line_width=self.line_width)
            sample[f"landmarks_map_{side}"] = torch.from_numpy(np.asarray(landmark_map, np.float32))[None]
            sample[f"landmarks_{side}"] = torch.from_numpy(landmarks)
            sample[f"modality_{side}"] = torch.tensor(self.modalities.index(row["modality"]), dtype=torch.long)
            sample[f"expression_{side}"] = row["expression"]
        return sample

    def load(self, row: dict[str, Any], augmentation: Augmentation) -> tuple[Image.Image, np.ndarray]:
        """A row's image and (68, 2) landmarks, resized and augmented (pixel-index coordinates)."""
        with Image.open(self.root / row["path"]) as stored:
            image = stored.convert("RGB")
        points = np.asarray(row["landmarks"], dtype=np.float32)
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
