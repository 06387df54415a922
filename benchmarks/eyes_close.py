"""Closing the eyes (issue #27 item 2; goal: EAR <= 0.12 re-detected by dlib on the output).

    python benchmarks/eyes_close.py [PHOTO ...] [--model DIR] [--save DIR] [--both-only]

For each photo (default: all 80 London neutrals in ../shared/data/london_faces/neutral, else the
ones in tests/assets/london) the eye aspect ratio (EAR, Soukupova and Cech 2016: the two lid
distances over twice the corner distance) of each eye, as dlib's 68 points find it, on the photo
and on the outputs of ``eye_open=-1`` (both eyes), ``right_eye_open=-1`` and ``left_eye_open=-1``
(that eye only; the other one is printed too, so that it can be seen to stay open). Open eyes
measure about 0.3. Prints one row per photo and the count of eyes that reach the goal. ``--save``
writes the outputs there as JPEGs; ``--both-only`` runs ``eye_open=-1`` alone.

Measured on the lid warp of 2995f28, given the first 12 London neutrals (001-019): 0 of 48 closed eyes
reach 0.12; both eyes closed 0.12-0.29, one eye closed (a wink) 0.14-0.35.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "london_faces" / "neutral"
DEFAULT_PHOTOS = sorted(SHARED.glob("*.jpg")) or sorted((ROOT / "tests" / "assets" / "london").glob("*_neutral.jpg"))
#: The issue's goal for a closed eye.
CLOSED_EAR = 0.12
EDITS = {"both": {"eye_open": -1.0}, "right": {"right_eye_open": -1.0}, "left": {"left_eye_open": -1.0}}


def eye_aspect_ratio(points: np.ndarray, eye: range) -> float:
    """EAR of ``eye`` (6 of the (68, 2) points): the two lid distances over twice the corner distance."""
    i = list(eye)
    lids = np.linalg.norm(points[i[1]] - points[i[5]]) + np.linalg.norm(points[i[2]] - points[i[4]])
    return float(lids / (2 * np.linalg.norm(points[i[0]] - points[i[3]])))


def ears(photo) -> tuple[float, float]:
    """(right eye, left eye) EAR of the first face dlib finds in ``photo`` (a PIL image); NaN if none."""
    from portraitgan_hub.faces.landmarks import LEFT_EYE, RIGHT_EYE, default_detector

    faces = default_detector().detect(photo)
    if not faces:
        return float("nan"), float("nan")
    points = faces[0].landmarks
    return eye_aspect_ratio(points, RIGHT_EYE), eye_aspect_ratio(points, LEFT_EYE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("photos", nargs="*", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--model", default=None, help="model folder or hub id (default: the embedded demo)")
    parser.add_argument("--save", type=Path, default=None)
    parser.add_argument("--both-only", action="store_true", help="only eye_open=-1 (faster)")
    args = parser.parse_args(argv)

    import torch
    from PIL import Image

    from portraitgan_hub.default_model import load_model

    torch.set_grad_enabled(False)
    model = load_model(args.model)
    print("photo  open R/L     both R/L      right R (L)   left L (R)")
    reached, total = 0, 0
    for path in args.photos:
        photo = Image.open(path).convert("RGB")
        row = [ears(photo)]
        for name, controls in EDITS.items():
            if args.both_only and name != "both":
                row.append((float("nan"), float("nan")))
                continue
            edited = model.edit(photo, **controls)
            row.append(ears(edited))
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                edited.save(args.save / f"{path.stem}_{name}.jpg", quality=92)
        (r0, l0), (rb, lb), (rr, lr), (rl, ll) = row
        closed = [rb, lb] if args.both_only else [rb, lb, rr, ll]
        reached += sum(e <= CLOSED_EAR for e in closed)
        total += len(closed)
        line = f"{path.stem:6s} {r0:.3f} {l0:.3f}  {rb:.3f} {lb:.3f}   {rr:.3f} ({lr:.3f})  {ll:.3f} ({rl:.3f})"
        print(line, flush=True)
    print(f"closed eyes with EAR <= {CLOSED_EAR}: {reached} of {total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
