"""Regenerate ``data/expression_model.json``, the identity/expression model of ``expression_model``.

Usage::

    OPENBLAS_NUM_THREADS=1 python -m portraitgan_hub.faces.derive_expression_model /path/to/london_faces

(one BLAS thread: the matrices are small, and on a busy machine threads make the search 10x slower;
about a minute for the search, plus the landmark detection of 160 photos.)

The folder holds ``neutral/<id>.jpg`` and ``smiling/<id>.jpg`` of the same people (the Face
Research Lab London Set). Steps:

1. detect the 68 landmarks of every photo (``derive_directions.load_or_detect_pairs``);
2. leave out the held-out people (``--exclude``; default ``derive_directions.HELD_OUT_IDS``, the demo
   model's 8 validation identities), so that scores on them stay honest;
3. map each shape to the canonical frame (``expression_model.to_canonical``) and add each person's
   mirror image (the model is left-right symmetric);
4. identity: PCA of the neutral shapes about their mean; expression: PCA about 0 of the
   (smiling - neutral) displacements; the noise variance is ``noise_scale`` times the variance the
   kept components leave out, per coordinate;
5. choose the kept components and ``noise_scale`` on a small grid by leave-one-person-out over the
   training people, minimising the mean of (a) the expression found in a neutral shape and (b) the
   error of the expression found in a smiling one (both mean point distances, eye units); refit on
   all of them. The prior probability of an expression is 0.5, the share of smiling photos in the set.

The held-out people's figures are computed and stored, never used for a choice.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from portraitgan_hub.faces.alignment import DATA_DIR, mean_face
from portraitgan_hub.faces.derive_directions import (
    FRAME,
    HELD_OUT_IDS,
    SOURCE,
    _write_json,
    load_or_detect_pairs,
    mirror,
    split_held_out,
)
from portraitgan_hub.faces.expression_model import ExpressionModel, to_canonical

EXPRESSION_PRIOR = 0.5
GRID = {"identity_components": (10, 20, 30, 40), "expression_components": (2, 4, 8), "noise_scale": (1.0, 3.0, 10.0)}


def fit(neutral: np.ndarray, smiling: np.ndarray, k_id: int, k_ex: int, noise_scale: float) -> ExpressionModel:
    """The model of canonical ``(n, 68, 2)`` neutral and smiling shapes of the same people (mirrors added here)."""
    neutral = np.concatenate([neutral, [mirror(s) for s in neutral]])
    smiling = np.concatenate([smiling, [mirror(s) for s in smiling]])
    mean = neutral.mean(axis=0)
    count = len(neutral)
    _, identity_sv, identity_basis = np.linalg.svd((neutral - mean).reshape(count, -1), full_matrices=False)
    _, expression_sv, expression_basis = np.linalg.svd((smiling - neutral).reshape(count, -1), full_matrices=False)
    identity_variance, expression_variance = identity_sv**2 / count, expression_sv**2 / count
    left_out = identity_variance[k_id:].sum() + expression_variance[k_ex:].sum()
    return ExpressionModel(
        mean=mean,
        identity_basis=identity_basis[:k_id],
        identity_variance=identity_variance[:k_id],
        expression_basis=expression_basis[:k_ex],
        expression_variance=expression_variance[:k_ex],
        noise_variance=max(noise_scale * left_out / identity_basis.shape[1], 1e-10),
        expression_prior=EXPRESSION_PRIOR,
    )


def scores(model: ExpressionModel, neutral: np.ndarray, smiling: np.ndarray) -> dict[str, float]:
    """Mean point distances (eye units) over the people: the expression found in their neutral shape,
    the error of the one found in their smiling shape (all 68 points, and the mouth corners 48, 54)."""
    found_in_neutral, smile_error, corner_error = [], [], []
    for n, s in zip(neutral, smiling):
        found_in_neutral.append(np.linalg.norm(model.expression(n), axis=1).mean())
        error = np.linalg.norm(model.expression(s) - (s - n), axis=1)
        smile_error.append(error.mean())
        corner_error.append(error[[48, 54]].mean())
    return {
        "expression_in_neutral": float(np.mean(found_in_neutral)),
        "expression_in_neutral_max": float(np.max(found_in_neutral)),
        "smile_error": float(np.mean(smile_error)),
        "mouth_corner_error": float(np.mean(corner_error)),
    }


def leave_one_out(
    neutral: np.ndarray, smiling: np.ndarray, k_id: int, k_ex: int, noise_scale: float
) -> dict[str, float]:
    """:func:`scores` of each person under the model fitted on all the others, over the people
    (means; ``expression_in_neutral_max`` the largest)."""
    rows = []
    for i in range(len(neutral)):
        keep = np.arange(len(neutral)) != i
        model = fit(neutral[keep], smiling[keep], k_id, k_ex, noise_scale)
        rows.append(scores(model, neutral[i : i + 1], smiling[i : i + 1]))
    summary = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    summary["expression_in_neutral_max"] = float(np.max([r["expression_in_neutral"] for r in rows]))
    return summary


def _rounded(array: np.ndarray, decimals: int = 6) -> list:
    return np.round(array, decimals).tolist()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="folder with neutral/<id>.jpg and smiling/<id>.jpg")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output folder (default: the package data)")
    parser.add_argument("--exclude", nargs="*", default=list(HELD_OUT_IDS), help="identities left out of the fit")
    parser.add_argument(
        "--cache", type=Path, default=None, help="an .npz of the detected landmarks: read if it exists, else written"
    )
    args = parser.parse_args(argv)

    ids, neutral_points, smiling_points = load_or_detect_pairs(args.folder, args.cache)
    canonical_n = np.array([to_canonical(p)[0] for p in neutral_points])
    canonical_s = np.array([to_canonical(p)[0] for p in smiling_points])
    train = split_held_out(ids, args.exclude)
    if train.sum() < 10:
        raise SystemExit(f"need at least 10 training pairs with a face, found {int(train.sum())}")
    n_train, s_train = canonical_n[train], canonical_s[train]

    search = []
    for k_id, k_ex, noise_scale in itertools.product(*GRID.values()):
        loo = leave_one_out(n_train, s_train, k_id, k_ex, noise_scale)
        objective = (loo["expression_in_neutral"] + loo["smile_error"]) / 2
        search.append(((k_id, k_ex, noise_scale), objective, loo))
        print(f"k_id {k_id:2d} k_ex {k_ex:2d} noise x{noise_scale:g}: objective {objective:.5f} {loo}")
    (k_id, k_ex, noise_scale), objective, loo = min(search, key=lambda row: row[1])
    model = fit(n_train, s_train, k_id, k_ex, noise_scale)
    held_out = scores(model, canonical_n[~train], canonical_s[~train]) if (~train).any() else None
    old = _MeanFaceAsNeutral(mean_face())
    mean_face_baseline = scores(old, canonical_n[~train], canonical_s[~train]) if held_out else None

    def component_lists(basis: np.ndarray) -> list:
        return [_rounded(row.reshape(-1, 2)) for row in basis]

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "expression_model.json"
    _write_json(
        path,
        {
            "description": "Linear identity + expression model of the 68 landmarks in the canonical frame "
            "(portraitgan_hub.faces.expression_model); flattened shapes are the 68 [x, y] points in order.",
            "source": SOURCE,
            "derived_with": "python -m portraitgan_hub.faces.derive_expression_model",
            "frame": FRAME + "; each shape first mapped onto the mean face by a similarity on the eyes and nose",
            "training_identities": [i for i, t in zip(ids, train) if t],
            "held_out_identities": [i for i, t in zip(ids, train) if not t],
            "choice": {
                "grid": {k: list(v) for k, v in GRID.items()},
                "chosen": {"identity_components": k_id, "expression_components": k_ex, "noise_scale": noise_scale},
                "objective": "mean of expression_in_neutral and smile_error, leave-one-person-out",
                "leave_one_out": {k: round(v, 5) for k, v in loo.items()},
                "held_out": None if held_out is None else {k: round(v, 5) for k, v in held_out.items()},
                "held_out_with_mean_face_as_neutral": None
                if mean_face_baseline is None
                else {k: round(v, 5) for k, v in mean_face_baseline.items()},
                "units": "mean point distance in eye units (1 = distance between the eye centres)",
            },
            "expression_prior": EXPRESSION_PRIOR,
            "noise_variance": float(f"{model.noise_variance:.6g}"),
            "identity_variance": [float(f"{v:.6g}") for v in model.identity_variance],
            "expression_variance": [float(f"{v:.6g}") for v in model.expression_variance],
            "mean": _rounded(model.mean),
            "identity_basis": component_lists(model.identity_basis),
            "expression_basis": component_lists(model.expression_basis),
        },
    )
    print(f"chosen k_id {k_id}, k_ex {k_ex}, noise x{noise_scale:g} (leave-one-out {loo}); held out: {held_out}")
    print(f"held out, mean face as the neutral (the old transfer): {mean_face_baseline}; written to {path}")


class _MeanFaceAsNeutral:
    """The transfer before this model: the expression is the shape's displacement from the mean face."""

    def __init__(self, mean: np.ndarray) -> None:
        self.mean = mean

    def expression(self, canonical: np.ndarray) -> np.ndarray:
        return np.asarray(canonical) - self.mean


if __name__ == "__main__":
    main()
