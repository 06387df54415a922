"""Expression from a reference photo against the explicit-points path, on held-out London people (issue #25).

    python benchmarks/reference_transfer.py --faces ../shared/data/london_faces [--model DIR] [--ids 019 038 ...]
        [--mean-face-neutral] [--shifts] [--pose-model model_3D_68.txt] [--json OUT]

For each person, I_A is the neutral photo and I_B the smiling one, each aligned to the model's crop
with its own landmarks (as ``train.prepare`` aligns them, so a head that moved between the two shots
does not count). Targets for G(I_A | L, photo):

* ``explicit``: L = L_B, the smile's own dlib points (``edit(landmarks=...)``);
* ``reference``: L = ``transfer_expression(L_A, L_B)``, what ``edit(reference=I_B)`` does;
* ``no_edit``: I_A itself;
* ``detector``: I_B itself, no G: dlib's own repeatability on the aligned crop (the floor of every row);
* ``explicit_pose_free`` (with ``--pose-model``): L = L_B with the head-pose difference between the
  two photos taken out (yaw and pitch of a weak-perspective fit of a generic 3D 68-point shape, as
  in model-based head-pose estimation with dlib points; the jaw contour treated as fixed 3D points,
  which dlib's contour is not). The reference path keeps the subject's head pose, so this row, not
  ``explicit``, is what it could reach with the expression exactly right. Not in the paper.

Scores, as ``train/evaluate.py`` computes them against I_B: ``target_nme`` (the target points
themselves against L_B: the transfer's error before any rendering), ``nme`` (the points dlib finds on
G's output against L_B; normalised by the outer-eye-corner distance), ``inner_nme`` (the same
without the jaw line, points 17-67), SSIM and mouth SSIM; then ``nme`` split by landmark group
(``jaw`` 0-16, ``brows``, ``nose``, ``eyes``, ``mouth``: each group's share, they add up to
``nme``) and into ``after_similarity_nme`` (after the least-squares similarity of the found points onto
L_B, fitted on all 68 points) and ``similarity_part`` (the rest: a rough guide to the rigid error, not
a rigid share, since the fit spreads a local error over the face: it can be negative);
``target_jaw`` ... ``target_similarity_part`` split ``target_nme``
alike. ``--shifts`` scores every person on four crops shifted by quarter pixels and averages them:
dlib's and G's response to sub-pixel resampling alone moves the 8-person means by about 0.001.
The default people are the demo model's 8 validation identities (model card), never used to fit it
or the face data. ``--mean-face-neutral`` measures the transfer as it was before issue #25 (the
reference's displacement from the mean face). Prints the means; ``--json`` writes the rows and means.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portraitgan_hub.faces.derive_directions import HELD_OUT_IDS  # noqa: E402

#: The demo model's validation identities (model card; ``train.prepare.split_identities``, seed 0).
VAL_IDS = HELD_OUT_IDS
#: Landmark groups of the breakdown (iBUG 68-point order).
GROUPS = {
    "jaw": range(0, 17),
    "brows": range(17, 27),
    "nose": range(27, 36),
    "eyes": range(36, 48),
    "mouth": range(48, 68),
}
#: Quarter-pixel crop offsets of ``--shifts`` (crop pixels, x and y).
SHIFTS = ((0.0, 0.0), (0.25, 0.0), (0.0, 0.25), (-0.25, -0.25))
#: Points of the head-pose fit: brows, nose and eyes, which a smile moves least.
POSE_POINTS = tuple(range(17, 48))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=Path, required=True, help="folder with neutral/<id>.jpg and smiling/<id>.jpg")
    parser.add_argument("--model", default=None, help="model folder or hub id (default: the embedded demo)")
    parser.add_argument("--ids", nargs="+", default=list(VAL_IDS))
    parser.add_argument("--json", type=Path, default=None, help="also write the rows and means here")
    parser.add_argument("--mean-face-neutral", action="store_true", help="the transfer before issue #25")
    parser.add_argument("--shifts", action="store_true", help="average over four quarter-pixel crop shifts")
    parser.add_argument(
        "--pose-model",
        type=Path,
        default=None,
        help="a generic 3D 68-point face shape (204 numbers: the x, then y, then z of the 68 points, image axes, "
        "y down) for the explicit_pose_free row, e.g. models/model_3D_68.txt of the MIT-licensed head-pose package",
    )
    args = parser.parse_args(argv)
    if args.mean_face_neutral:
        _use_the_mean_face_as_neutral()

    from portraitgan_hub.default_model import load_model
    from portraitgan_hub.faces.expression_transfer import transfer_expression
    from portraitgan_hub.image_tensors import pil_to_tensor
    from portraitgan_hub.stages import render
    from train.metrics import LandmarkScorer, landmark_nme, mouth_ssim, ssim

    shape_3d = None if args.pose_model is None else np.loadtxt(args.pose_model).reshape(3, -1).T
    methods = ("explicit", "reference", "no_edit", "detector") + (() if shape_3d is None else ("explicit_pose_free",))
    torch.set_grad_enabled(False)
    model = load_model(args.model)
    editor, scorer = model.face_editor, LandmarkScorer()
    rows = []
    for identity in args.ids:
        a0 = editor.align(args.faces / "neutral" / f"{identity}.jpg")
        b0 = editor.align(args.faces / "smiling" / f"{identity}.jpg")
        for shift in SHIFTS if args.shifts else SHIFTS[:1]:
            a, b = shifted(a0, shift), shifted(b0, shift)
            target_b = pil_to_tensor(b.crop)
            targets = {"explicit": b.landmarks, "reference": transfer_expression(a.landmarks, b.landmarks)}
            if shape_3d is not None:
                targets["explicit_pose_free"] = without_pose_change(b.landmarks, a.landmarks, shape_3d)
            row: dict = {"id": identity, "shift": list(shift)}
            for method in methods:
                if method in ("no_edit", "detector"):
                    face = a if method == "no_edit" else b
                    image, points = pil_to_tensor(face.crop), face.landmarks
                else:
                    points = targets[method]
                    image = pil_to_tensor(render(model, a, points, "photo").crop)
                found = scorer.detect(image[0])
                row[method] = {
                    "target_nme": landmark_nme(points, b.landmarks),
                    "nme": None if found is None else landmark_nme(found, b.landmarks),
                    "inner_nme": None if found is None else inner_nme(found, b.landmarks),
                    "ssim": float(ssim(image, target_b)[0]),
                    "mouth_ssim": float(mouth_ssim(image, target_b, b.landmarks[None])[0]),
                    **({} if found is None else breakdown(found, b.landmarks)),
                    **{f"target_{key}": value for key, value in breakdown(points, b.landmarks).items()},
                }
            rows.append(row)
        print(
            identity,
            "  ".join(f"{m} {_fmt(_mean([r[m]['nme'] for r in rows if r['id'] == identity]))}" for m in methods),
        )
    means = {
        method: {key: _mean([row[method].get(key) for row in rows]) for key in rows[0][method]} for method in methods
    }
    for method, values in means.items():
        print(f"mean {method:18s}", " ".join(f"{k} {_fmt(v)}" for k, v in values.items()))
    gap = means["reference"]["nme"] - means["explicit"]["nme"]
    print(f"reference - explicit NME: {gap:+.4f} (goal <= 0.005)")
    if shape_3d is not None:
        print(
            f"reference - explicit_pose_free NME: {means['reference']['nme'] - means['explicit_pose_free']['nme']:+.4f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "means": means}, indent=1) + "\n", encoding="utf-8")
    return 0


def shifted(aligned, shift: tuple[float, float]):
    """``aligned`` (a ``stages.AlignedFace``) re-cut with its crop moved by ``shift`` crop pixels (x, y)."""
    from portraitgan_hub.faces.alignment import Alignment, warp_to_crop
    from portraitgan_hub.stages import AlignedFace

    if shift == (0.0, 0.0):
        return aligned
    matrix = aligned.alignment.matrix.copy()
    matrix[:, 2] += shift
    alignment = Alignment(matrix=matrix, crop_size=aligned.alignment.crop_size)
    photo, face = aligned.photo, aligned.face
    return AlignedFace(photo, face, alignment, warp_to_crop(photo, alignment), alignment.to_crop(face.landmarks))


def breakdown(found: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """``nme`` of ``found`` against ``target`` ((68, 2) points) split by :data:`GROUPS` (shares that add up to it)
    and into what is left after the least-squares similarity of ``found`` onto ``target`` and the rest
    (``similarity_part``, which can be negative: see the module docstring)."""
    from train.metrics import inter_ocular_distance, landmark_nme

    found, target = np.asarray(found, np.float64), np.asarray(target, np.float64)
    error = np.linalg.norm(found - target, axis=1) / inter_ocular_distance(target)
    shares = {name: float(error[list(indices)].sum() / len(error)) for name, indices in GROUPS.items()}
    after = landmark_nme(_similarity_onto(found, target), target)
    return {**shares, "after_similarity_nme": after, "similarity_part": float(error.mean()) - after}


def _similarity_onto(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``points`` under the least-squares similarity (rotation, scale, shift) onto ``target`` (Umeyama 1991)."""
    p, t = points - points.mean(axis=0), target - target.mean(axis=0)
    scale_cos = (p * t).sum() / (p * p).sum()
    scale_sin = (p[:, 0] * t[:, 1] - p[:, 1] * t[:, 0]).sum() / (p * p).sum()
    return p @ np.array([[scale_cos, scale_sin], [-scale_sin, scale_cos]]) + target.mean(axis=0)


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """``(3, 3)`` rotation R = Rz(roll) Rx(pitch) Ry(yaw), radians, image axes (x right, y down, z away)."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    yaw_m = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    pitch_m = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    roll_m = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return roll_m @ pitch_m @ yaw_m


def project(pose: np.ndarray, shape_3d: np.ndarray) -> np.ndarray:
    """Weak-perspective image ``(68, 2)`` of ``shape_3d`` ``(68, 3)`` under ``pose`` (yaw, pitch, roll, scale, x, y)."""
    return pose[3] * (shape_3d @ rotation(*pose[:3]).T)[:, :2] + pose[4:6]


def fit_pose(points: np.ndarray, shape_3d: np.ndarray, iterations: int = 50) -> np.ndarray:
    """The weak-perspective pose (yaw, pitch, roll in radians, scale, tx, ty) of ``shape_3d`` that best fits
    ``points`` ``(68, 2)`` on :data:`POSE_POINTS` (least squares, Gauss-Newton from the frontal pose)."""
    indices = list(POSE_POINTS)
    points = np.asarray(points, np.float64)
    spread = np.linalg.norm(points[indices] - points[indices].mean(axis=0), axis=1).mean()
    model_spread = np.linalg.norm(shape_3d[indices, :2] - shape_3d[indices, :2].mean(axis=0), axis=1).mean()
    offset = points[indices].mean(axis=0) - spread / model_spread * shape_3d[indices, :2].mean(axis=0)
    pose = np.array([0.0, 0.0, 0.0, spread / model_spread, *offset])
    for _ in range(iterations):
        residual = (project(pose, shape_3d)[indices] - points[indices]).ravel()
        jacobian = np.empty((residual.size, 6))
        for k in range(6):
            step = 1e-6 * max(1.0, abs(pose[k]))
            moved = pose.copy()
            moved[k] += step
            jacobian[:, k] = ((project(moved, shape_3d)[indices] - points[indices]).ravel() - residual) / step
        update = np.linalg.lstsq(jacobian, -residual, rcond=None)[0]
        pose += update
        if np.abs(update).max() < 1e-10:
            break
    return pose


def without_pose_change(points: np.ndarray, other: np.ndarray, shape_3d: np.ndarray) -> np.ndarray:
    """``points`` ``(68, 2)`` moved by what turning ``shape_3d`` from their yaw and pitch to ``other``'s does
    to its image, then put back on ``points`` by a similarity on the eyes and nose: their expression at
    ``other``'s head pose, ``(68, 2)`` float32 in ``points``' frame."""
    from portraitgan_hub.faces.alignment import ALIGNMENT_INDICES, apply_affine, similarity_transform

    pose, other_pose = fit_pose(points, shape_3d), fit_pose(other, shape_3d)
    turned = pose.copy()
    turned[:2] = other_pose[:2]
    moved = np.asarray(points, np.float64) + project(turned, shape_3d) - project(pose, shape_3d)
    indices = list(ALIGNMENT_INDICES)
    back = similarity_transform(moved[indices], np.asarray(points, np.float64)[indices])
    return apply_affine(back, moved).astype(np.float32)


def _use_the_mean_face_as_neutral() -> None:
    """``transfer_expression`` as before issue #25: the mean face stands for every reference's neutral."""
    from portraitgan_hub.faces import expression_transfer
    from portraitgan_hub.faces.alignment import mean_face

    class MeanFace:
        def neutral(self, canonical: np.ndarray) -> np.ndarray:
            return mean_face()

    expression_transfer.expression_model = MeanFace


def inner_nme(predicted: np.ndarray, target: np.ndarray) -> float:
    """NME over points 17-67 (brows, nose, eyes, mouth; no jaw line), same normalisation as ``landmark_nme``."""
    from train.metrics import inter_ocular_distance

    error = np.linalg.norm(np.asarray(predicted, np.float64)[17:] - np.asarray(target, np.float64)[17:], axis=1)
    return float(error.mean() / inter_ocular_distance(np.asarray(target, np.float64)))


def _mean(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    raise SystemExit(main())
