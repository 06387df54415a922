"""The layout of a prepared folder: its file names, the options it was made with, and the items.

An item is one (identity, expression): its photo and any real images of other modalities. Its files
are named by its stem, ``<identity>_<expression>``, in one folder per modality (:func:`output_paths`).
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train.sources import PHOTO, Record

MANIFEST = "manifest.jsonl"
FAILURES = "failures.json"
CONFIG = "prepare_config.json"
CARD = "README.md"
LANDMARKS_DIR = "landmarks"
CONTEXT_DIR = "context"
#: Options that change the pixels of a crop: a folder prepared with other values cannot be resumed.
CROP_OPTIONS = ("size", "margin", "detect_max_side", "landmark_model")


@dataclass
class PrepareConfig:
    """Every option of ``python -m train.prepare``; stored as ``prepare_config.json`` in the output."""

    source_dir: str
    out_dir: str
    source: str = "auto"
    size: int = 256
    #: Built-in stylizers (``train.stylize.STYLIZERS``) or names given in ``styles``.
    modalities: list[str] = field(default_factory=lambda: ["sketch", "cartoon"])
    #: Extra modalities from trained Johnson networks: name -> .safetensors path.
    styles: dict[str, str] = field(default_factory=dict)
    val_fraction: float = 0.1
    seed: int = 0
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    #: Alignment margin passed to ``estimate_alignment``; None keeps the faces module's default.
    margin: float | None = None
    detect_max_side: int = 640
    landmark_model: str | None = None
    rafd_angle: str = "090"
    #: RaFD gaze to keep; None keeps all three gazes.
    rafd_gaze: str | None = "frontal"
    #: Side of the context crops as a multiple of ``size`` (same scale, face in the middle); 0: none.
    context_scale: float = 1.5

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrepareConfig:
        return cls(**data)

    def synthetic_modalities(self) -> list[str]:
        """Modalities rendered from the photo crop, in order, without repeats."""
        return list(dict.fromkeys([*self.modalities, *self.styles]))

    def command(self) -> str:
        """An equivalent command line (reconstructed, so that it is the same on every re-run)."""
        parts = ["python -m train.prepare", f"--source {self.source}", self.source_dir, self.out_dir]
        parts.append(f"--size {self.size}")
        plain = [m for m in self.modalities if m not in self.styles]
        parts.append("--modalities" + "".join(f" {m}" for m in plain))
        parts += [f"--style {name}={path}" for name, path in self.styles.items()]
        parts += [f"--val-fraction {self.val_fraction}", f"--seed {self.seed}"]
        if self.margin is not None:
            parts.append(f"--margin {self.margin}")
        if self.context_scale != 1.5:
            parts.append(f"--context-scale {self.context_scale}")
        return " ".join(parts)

    @property
    def context_size(self) -> int:
        """Side of a context crop in pixels (0 when there are none)."""
        return int(round(self.context_scale * self.size)) if self.context_scale else 0


@dataclass
class Item:
    """One (identity, expression): its photo and any real images of other modalities."""

    identity: str
    expression: str
    photo: Path
    real: dict[str, Path]

    @property
    def stem(self) -> str:
        return f"{self.identity}_{self.expression}".replace(os.sep, "-").replace("/", "-")


def group_items(records: Iterable[Record]) -> tuple[list[Item], list[dict[str, Any]]]:
    """Items with a photo, and failure entries for (identity, expression) groups without one."""
    groups: dict[tuple[str, str], dict[str, Path]] = {}
    for record in records:
        groups.setdefault(record.key, {})[record.modality] = record.path
    items, orphans = [], []
    for (identity, expression), by_modality in sorted(groups.items()):
        photo = by_modality.pop(PHOTO, None)
        if photo is None:
            orphans.append(
                failure_entry(identity, expression, next(iter(by_modality.values())), "NoPhoto", "no photo to align on")
            )
        else:
            items.append(Item(identity, expression, photo, dict(sorted(by_modality.items()))))
    stems = [item.stem for item in items]
    if len(set(stems)) != len(stems):
        clash = next(stem for stem in stems if stems.count(stem) > 1)
        raise ValueError(f"two (identity, expression) pairs share the output name {clash!r}; rename one")
    return items, orphans


def split_identities(identities: Iterable[str], val_fraction: float, seed: int) -> dict[str, str]:
    """identity -> "train" | "val": a seeded shuffle; at least one val id when the fraction is > 0."""
    ordered = sorted(set(identities))
    random.Random(seed).shuffle(ordered)
    n_val = round(val_fraction * len(ordered))
    if val_fraction > 0 and len(ordered) > 1:
        n_val = min(max(n_val, 1), len(ordered) - 1)
    return {identity: ("val" if i < n_val else "train") for i, identity in enumerate(ordered)}


def failure_entry(identity: str, expression: str, path: Path, error: str, message: str) -> dict[str, Any]:
    """An entry of ``failures.json``: the photo that could not be used, and why."""
    return {
        "identity": identity,
        "expression": expression,
        "path": str(path),
        "error": error,
        "message": message,
    }


def output_paths(out: Path, item: Item, synthetic: Iterable[str], context: bool = False) -> dict[str, Path]:
    """modality -> crop path for the photo, the rendered and the real modalities; "landmarks" -> json;
    with ``context``, also ``"context/<modality>"`` -> that modality's context crop."""
    modalities = [PHOTO, *synthetic, *item.real]
    paths = {m: out / m / f"{item.stem}.png" for m in modalities}
    if context:
        paths.update({f"{CONTEXT_DIR}/{m}": out / CONTEXT_DIR / m / f"{item.stem}.png" for m in modalities})
    paths[LANDMARKS_DIR] = out / LANDMARKS_DIR / f"{item.stem}.json"
    return paths


def unpaired_photos(items: list[Item], real_modalities: list[str]) -> dict[str, list[str]]:
    """For each real (brought) modality, the photos that have no image of it: reported, not an error."""
    return {m: [item.stem for item in items if m not in item.real] for m in real_modalities}
