"""Face detection time on 1, 12 and 24 MP photos (README, issue #14's budget: under 1 s at 12 MP).

python benchmarks/detection_time.py [--repeats 3] [--photo tests/assets/london/001_neutral.jpg]

Each photo is a London face scaled to 700 px (300 px at 1 MP) on a grey canvas of the given size (a small face in a
large photo: the coarse 640 px copy misses it, so the finer levels run), and the same canvas without
a face (the worst case: every level of the budget runs and finds nothing). Times are for
``LandmarkDetector.detect`` on an already decoded image (landmark fitting included), median of
``--repeats``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from PIL import Image

from portraitgan_hub.faces.landmarks import LandmarkDetector

SIZES = {"1 MP": (1224, 816), "12 MP": (4000, 3000), "24 MP": (6000, 4000)}
DEFAULT_PHOTO = Path(__file__).resolve().parents[1] / "tests" / "assets" / "london" / "001_neutral.jpg"


def small_face_photo(face: Image.Image, size: tuple[int, int], face_side: int) -> Image.Image:
    """``face`` scaled to ``face_side`` px, pasted left of centre on a grey canvas of ``size``."""
    canvas = Image.new("RGB", size, (118, 124, 130))
    side = min(face_side, *size)
    canvas.paste(face.resize((side, side), Image.Resampling.LANCZOS), (size[0] // 5, (size[1] - side) // 2))
    return canvas


def measure(detector: LandmarkDetector, photo: Image.Image, repeats: int) -> tuple[float, int, int, int]:
    """(median seconds, faces found, levels run, smallest face searched in px)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        found = detector.detect(photo)
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(found), len(found.levels), found.smallest_face_searched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO, help="a portrait with one face")
    args = parser.parse_args()
    detector = LandmarkDetector()
    face = Image.open(args.photo).convert("RGB")
    detector.detect(face)  # load the dlib models once, outside the timings
    print("| photo | content | seconds | faces | levels | smallest face searched (px) |")
    print("|---|---|---|---|---|---|")
    for label, size in SIZES.items():
        face_side = 700 if size[0] > 2000 else 300
        for content, photo in (
            (f"face scaled to {face_side} px", small_face_photo(face, size, face_side)),
            ("no face", Image.new("RGB", size, (118, 124, 130))),
        ):
            seconds, faces, levels, smallest = measure(detector, photo, args.repeats)
            print(f"| {label} {size[0]}x{size[1]} | {content} | {seconds:.2f} | {faces} | {levels} | {smallest} |")


if __name__ == "__main__":
    main()
