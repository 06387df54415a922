"""Fine detail kept by a near-no-op edit at full resolution (issue #25, item 3; goal >= 0.8).

    python benchmarks/detail_kept.py [PHOTO ...] [--smile 0.05] [--model DIR] [--sampler bilinear|bicubic]

For each photo (default: the London photos in tests/assets/london), ``model.edit(photo, smile=...)``
and the ratio of Laplacian variances of the grey face box, output / input
(``train.metrics.laplacian_variance``, the detail ratio of ``train/evaluate.py``'s no-op fidelity;
1 = all fine detail kept). ``--sampler`` sets how ``composition.compose`` resamples the photo at full
resolution (``composition.PHOTO_SAMPLING``) so that both can be measured on the same code. To tell the
causes apart, each photo is also scored with G's mask set to 1 (the photo warped by G's flow alone,
nothing of G's colour blended in). Prints one row per photo and the medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_PHOTOS = sorted((ROOT / "tests" / "assets" / "london").glob("*.jpg"))


def detail_ratio(before, after, box: tuple[int, int, int, int]) -> float:
    from train.metrics import grey, laplacian_variance

    crop = (max(0, box[0]), max(0, box[1]), min(before.width, box[2]), min(before.height, box[3]))
    original = laplacian_variance(grey(np.asarray(before.crop(crop), dtype=np.float64)))
    return laplacian_variance(grey(np.asarray(after.crop(crop), dtype=np.float64))) / original


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("photos", nargs="*", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--smile", type=float, default=0.05)
    parser.add_argument("--model", default=None, help="model folder or hub id (default: the embedded demo)")
    parser.add_argument("--sampler", choices=("bilinear", "bicubic"), default=None, help="default: the package's")
    args = parser.parse_args(argv)

    from portraitgan_hub import composition, stages
    from portraitgan_hub.default_model import load_model
    from portraitgan_hub.faces.expressions import ExpressionControls

    if args.sampler:
        composition.PHOTO_SAMPLING = args.sampler
    torch.set_grad_enabled(False)
    model = load_model(args.model)
    editor = model.face_editor
    edit_ratios, warp_ratios = [], []
    for path in args.photos:
        aligned = editor.align(path)
        edited = model.edit(path, smile=args.smile)
        target = stages.target_landmarks(aligned, ExpressionControls(smile=args.smile))
        rendering = stages.render(model, aligned, target, "photo")
        copying = type(rendering)(
            rendering.crop, rendering.colour, torch.ones_like(rendering.mask), rendering.displacement
        )
        warped = composition.compose(aligned.photo, aligned.alignment, copying, editor.feather)
        edit_ratios.append(detail_ratio(aligned.photo, edited, aligned.face.box))
        warp_ratios.append(detail_ratio(aligned.photo, warped, aligned.face.box))
        print(
            f"{path.name}: {aligned.photo.size[0]}x{aligned.photo.size[1]} "
            f"edit {edit_ratios[-1]:.3f} warp only {warp_ratios[-1]:.3f}"
        )
    print(
        f"sampler {composition.PHOTO_SAMPLING}, smile {args.smile:g}: "
        f"median detail ratio {statistics.median(edit_ratios):.3f} "
        f"(warp only, mask = 1: {statistics.median(warp_ratios):.3f}) over {len(edit_ratios)} photos"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
