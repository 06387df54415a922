"""Expression from a reference photo against the explicit-points path, on held-out London people (issue #25).

    python benchmarks/reference_transfer.py --faces ../shared/data/london_faces [--model DIR] [--ids 019 038 ...]
        [--mean-face-neutral] [--json OUT]

For each person, I_A is the neutral photo and I_B the smiling one, each aligned to the model's crop
with its own landmarks (as ``train.prepare`` aligns them, so a head that moved between the two shots
does not count). Targets for G(I_A | L, photo):

* ``explicit``: L = L_B, the smile's own dlib points (``edit(landmarks=...)``);
* ``reference``: L = ``transfer_expression(L_A, L_B)``, what ``edit(reference=I_B)`` does;
* ``no_edit``: I_A itself.

Scores, as ``train/evaluate.py`` computes them against I_B: ``target_nme`` (the target points
themselves against L_B: the transfer's error before any rendering), ``nme`` (the points dlib finds on
G's output against L_B; normalised by the outer-eye-corner distance), ``inner_nme`` (the same
without the jaw line, points 17-67), SSIM and mouth SSIM. The default people are the demo model's
8 validation identities (model card), never used to fit it or the expression model.
``--mean-face-neutral`` measures the transfer as it was before issue #25 (the reference's
displacement from the mean face). Prints one row per person and the means; ``--json`` writes them.
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

#: The demo model's validation identities (model card; ``train.prepare.split_identities``, seed 0).
VAL_IDS = ("019", "038", "063", "092", "096", "104", "118", "131")
METHODS = ("explicit", "reference", "no_edit")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=Path, required=True, help="folder with neutral/<id>.jpg and smiling/<id>.jpg")
    parser.add_argument("--model", default=None, help="model folder or hub id (default: the embedded demo)")
    parser.add_argument("--ids", nargs="+", default=list(VAL_IDS))
    parser.add_argument("--json", type=Path, default=None, help="also write the rows and means here")
    parser.add_argument("--mean-face-neutral", action="store_true", help="the transfer before issue #25")
    args = parser.parse_args(argv)
    if args.mean_face_neutral:
        _use_the_mean_face_as_neutral()

    from portraitgan_hub.default_model import load_model
    from portraitgan_hub.faces.expression_transfer import transfer_expression
    from portraitgan_hub.image_tensors import pil_to_tensor
    from portraitgan_hub.stages import render
    from train.metrics import LandmarkScorer, landmark_nme, mouth_ssim, ssim

    torch.set_grad_enabled(False)
    model = load_model(args.model)
    editor, scorer = model.face_editor, LandmarkScorer()
    rows = []
    for identity in args.ids:
        a = editor.align(args.faces / "neutral" / f"{identity}.jpg")
        b = editor.align(args.faces / "smiling" / f"{identity}.jpg")
        target_b = pil_to_tensor(b.crop)
        targets = {"explicit": b.landmarks, "reference": transfer_expression(a.landmarks, b.landmarks)}
        row: dict = {"id": identity}
        for method in METHODS:
            if method == "no_edit":
                image, points = pil_to_tensor(a.crop), a.landmarks
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
            }
        rows.append(row)
        print(identity, "  ".join(f"{m}: " + " ".join(f"{k} {_fmt(v)}" for k, v in row[m].items()) for m in METHODS))
    means = {method: {key: _mean([row[method][key] for row in rows]) for key in rows[0][method]} for method in METHODS}
    for method, values in means.items():
        print(f"mean {method:9s}", " ".join(f"{k} {_fmt(v)}" for k, v in values.items()))
    gap = means["reference"]["nme"] - means["explicit"]["nme"]
    print(f"reference - explicit NME: {gap:+.4f} (goal <= 0.005)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "means": means}, indent=1) + "\n", encoding="utf-8")
    return 0


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
