"""Regenerate ``data/mean_face_68.json`` and ``data/expression_directions.json`` from photo pairs.

Usage::

    python -m portraitgan_hub.faces.derive_directions /path/to/london_faces

The folder holds ``neutral/<id>.jpg`` and ``smiling/<id>.jpg`` of the same people (the Face
Research Lab London Set). Steps:

1. detect the 68 landmarks of every photo (pairs where either photo has no face are skipped);
   ``--cache FILE.npz`` keeps them for the next run;
2. leave out the held-out people (``--exclude``; default :data:`HELD_OUT_IDS`, the demo model's 8
   validation identities, which the evaluation and the benchmarks score), so that those scores stay
   honest; the data files list the identities they were fitted on;
3. mean face: generalised Procrustes analysis of the neutral shapes, fitted on the eye and nose
   points, then made left-right symmetric and expressed in eye units (see ``alignment``);
4. smile: each pair's neutral and smiling shapes are aligned to the mean face on those same points,
   and the mean (smiling - neutral) displacement, made symmetric, is the ``smile`` direction.
   Being a plain mean, ``smile = 1.0`` is the average real smile of the set.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from portraitgan_hub.faces.alignment import ALIGNMENT_INDICES, DATA_DIR, apply_affine, similarity_transform
from portraitgan_hub.faces.landmarks import FLIP_PERMUTATION, LEFT_EYE, RIGHT_EYE, LandmarkDetector
from portraitgan_hub.io_utils import atomic_write_text

SOURCE = (
    "Face Research Lab London Set, Lisa DeBruine and Benedict Jones, 2017, figshare, "
    "doi:10.6084/m9.figshare.5047666.v5, CC-BY 4.0"
)
FRAME = (
    "eye units: origin at the midpoint of the two eye centres (means of points 36-41 and 42-47), "
    "x from the subject's right eye towards the left eye, y down (image convention), "
    "1 = distance between the eye centres"
)
_DECIMALS = 5
#: The demo model's validation identities (model card, "Split by identity (seed 0)":
#: ``train.prepare.split_identities(ids, 0.1, seed 0)``), left out of every fit to the London set.
HELD_OUT_IDS = ("019", "038", "063", "092", "096", "104", "118", "131")


def to_eye_units(points: np.ndarray) -> np.ndarray:
    """``points`` rotated, scaled and shifted into eye units (see :data:`FRAME`)."""
    points = np.asarray(points, dtype=np.float64)
    right, left = points[list(RIGHT_EYE)].mean(axis=0), points[list(LEFT_EYE)].mean(axis=0)
    axis = left - right
    distance = float(np.hypot(*axis))
    ux = axis / distance
    uy = np.array([-ux[1], ux[0]])
    centred = points - (right + left) / 2.0
    return np.stack([centred @ ux, centred @ uy], axis=1) / distance


def mirror(points: np.ndarray) -> np.ndarray:
    """The mirror image of a shape (or displacement field) in eye units: x negated, parts swapped."""
    flipped = np.asarray(points, dtype=np.float64)[list(FLIP_PERMUTATION)].copy()
    flipped[:, 0] *= -1.0
    return flipped


def align_to(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    indices = list(ALIGNMENT_INDICES)
    return apply_affine(similarity_transform(points[indices], target[indices]), points)


def mean_shape(shapes: Sequence[np.ndarray], iterations: int = 10) -> np.ndarray:
    """Symmetric generalised-Procrustes mean of ``shapes``, in eye units."""
    mean = to_eye_units(np.mean([to_eye_units(s) for s in shapes], axis=0))
    for _ in range(iterations):
        updated = to_eye_units(np.mean([align_to(s, mean) for s in shapes], axis=0))
        updated = (updated + mirror(updated)) / 2.0
        converged = np.abs(updated - mean).max() < 1e-7
        mean = updated
        if converged:
            break
    return mean


def smile_direction(neutral: Sequence[np.ndarray], smiling: Sequence[np.ndarray], template: np.ndarray):
    """Mean symmetric (smiling - neutral) displacement in eye units, and per-pair coefficients."""
    displacements = np.array([align_to(s, template) - align_to(n, template) for n, s in zip(neutral, smiling)])
    direction = displacements.mean(axis=0)
    direction = (direction + mirror(direction)) / 2.0
    # How much of the mean smile each pair shows (1.0 = average), to document the spread.
    flat = direction.ravel()
    coefficients = displacements.reshape(len(displacements), -1) @ flat / (flat @ flat)
    return direction, coefficients


def detect_pairs(folder: Path, detector: LandmarkDetector) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    ids, neutral, smiling = [], [], []
    for path in sorted((folder / "neutral").glob("*.jpg")):
        other = folder / "smiling" / path.name
        if not other.is_file():
            continue
        faces_n, faces_s = detector.detect(path), detector.detect(other)
        if not faces_n or not faces_s:
            print(f"skipping {path.stem}: no face in {'neutral' if not faces_n else 'smiling'}")
            continue
        ids.append(path.stem)
        neutral.append(faces_n[0].landmarks.astype(np.float64))
        smiling.append(faces_s[0].landmarks.astype(np.float64))
    return ids, neutral, smiling


def load_or_detect_pairs(folder: Path, cache: Path | None) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """:func:`detect_pairs` of ``folder`` (ids, neutral and smiling ``(68, 2)`` pixel points; pairs where
    either photo has no face are left out), or the detections an earlier run saved in ``cache`` (an
    ``.npz``; written when it does not exist yet). A cache written for another folder is not used:
    it raises ValueError naming both."""
    source = str(folder.resolve())
    if cache is not None and cache.is_file():
        saved = np.load(cache)
        if "folder" not in saved or str(saved["folder"]) != source:
            written_for = str(saved["folder"]) if "folder" in saved else "an unnamed folder"
            raise ValueError(f"the landmark cache {cache} was written for {written_for}, not {source}: delete it")
        return [str(i) for i in saved["ids"]], list(saved["neutral"]), list(saved["smiling"])
    ids, neutral, smiling = detect_pairs(folder, LandmarkDetector())
    if cache is not None:
        arrays = dict(ids=np.array(ids), neutral=np.array(neutral), smiling=np.array(smiling))
        np.savez(cache, folder=np.array(source), **arrays)
    return ids, neutral, smiling


def split_held_out(ids: Sequence[str], exclude: Sequence[str]) -> np.ndarray:
    """Boolean ``(len(ids),)`` mask of the training identities: those not in ``exclude``."""
    excluded = set(exclude)
    return np.array([i not in excluded for i in ids], dtype=bool)


def _rounded(array: np.ndarray) -> list[list[float]]:
    return np.round(array, _DECIMALS).tolist()


def _write_json(path: Path, data: dict) -> None:
    """Indented JSON with each ``[x, y]`` pair on one line, so diffs of regenerated data stay readable."""
    text = json.dumps(data, indent=1)
    text = re.sub(r"\[\s+(-?[\d.e-]+),\s+(-?[\d.e-]+)\s+\]", r"[\1, \2]", text)
    atomic_write_text(path, text + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="folder with neutral/<id>.jpg and smiling/<id>.jpg")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output folder (default: the package data)")
    parser.add_argument("--exclude", nargs="*", default=list(HELD_OUT_IDS), help="identities left out of the fit")
    parser.add_argument(
        "--cache", type=Path, default=None, help="an .npz of the detected landmarks: read if it exists, else written"
    )
    args = parser.parse_args(argv)

    all_ids, all_neutral, all_smiling = load_or_detect_pairs(args.folder, args.cache)
    train = split_held_out(all_ids, args.exclude)
    ids = [i for i, t in zip(all_ids, train) if t]
    neutral = [p for p, t in zip(all_neutral, train) if t]
    smiling = [p for p, t in zip(all_smiling, train) if t]
    held_out = [i for i, t in zip(all_ids, train) if not t]
    if len(ids) < 2:
        raise SystemExit(f"need at least 2 neutral/smiling training pairs with a face, found {len(ids)}")
    template = mean_shape(neutral)
    smile, coefficients = smile_direction(neutral, smiling, template)

    args.out.mkdir(parents=True, exist_ok=True)
    _write_json(
        args.out / "mean_face_68.json",
        {
            "description": "Mean neutral 68-point face (iBUG 300-W order), made symmetric: the canonical face.",
            "source": SOURCE,
            "derived_with": "python -m portraitgan_hub.faces.derive_directions",
            "frame": FRAME,
            "num_faces": len(ids),
            "held_out_identities": held_out,
            "points": _rounded(template),
        },
    )
    _write_json(
        args.out / "expression_directions.json",
        {
            "description": "Landmark displacement per unit of each data-derived expression control, symmetric.",
            "source": SOURCE,
            "derived_with": "python -m portraitgan_hub.faces.derive_directions",
            "frame": FRAME,
            "directions": {
                "smile": {
                    "num_pairs": len(ids),
                    "held_out_identities": held_out,
                    "definition": "mean of (smiling - neutral) over the pairs, both aligned to the mean face "
                    "on the eye and nose points; 1.0 = the average smile of the set",
                    "pair_coefficient_std": round(float(coefficients.std()), 4),
                    "pair_coefficient_min_max": [
                        round(float(coefficients.min()), 4),
                        round(float(coefficients.max()), 4),
                    ],
                    "displacement": _rounded(smile),
                }
            },
        },
    )
    corners = np.linalg.norm(smile[[48, 54]], axis=1).mean()
    print(
        f"{len(ids)} pairs ({len(held_out)} held out); mean face and smile written to {args.out}; "
        f"mouth corners move {corners:.3f} eye distances at smile=1 "
        f"(pairs: {coefficients.min():.2f}..{coefficients.max():.2f}, std {coefficients.std():.2f})"
    )


if __name__ == "__main__":
    main()
