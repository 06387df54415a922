"""A picture of held-out people edited by two checkpoints: input | TPS warp | baseline | model | target.

For each of the first ``--people`` identities of ``--split`` in a ``train.prepare`` folder, three rows:
the neutral photo moved to the same person's smiling landmarks, and the neutral photo converted to
the sketch and to the cartoon (its own pseudo-targets). The baseline defaults to the embedded demo.
Prints the L1 to the target (mean absolute error, images in [-1, 1]) of each cell. With ``--mouth``
only the smile row, as close-ups of the box around the target's mouth (the mouth PatchGAN's,
``discriminator.mouth_crop``), the L1 taken in that box, for all the split's people unless
``--people`` says fewer.

python benchmarks/checkpoint_picture.py --model runs/lite_u_export --data data/london256_wide \
    [--baseline portraitgan_hub/pretrained/london-lite] [--people 3] [--mouth] [--out docs/lite_u_stage2.jpg]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # train/ is not installed
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from PIL import Image
from warp_vs_model import neutral_smiling_pairs

from portraitgan_hub import PortraitGAN
from portraitgan_hub.discriminator import mouth_crop
from portraitgan_hub.faces.landmark_map import landmark_map_tensor
from portraitgan_hub.image_tensors import pil_to_tensor, tensor_to_pil
from portraitgan_hub.thin_plate_spline import warp_by_landmarks
from train.dataset import read_manifest

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("smile", "sketch", "cartoon")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="folder or Hub id of a warp-guided PortraitGAN")
    parser.add_argument("--baseline", default=str(ROOT / "portraitgan_hub" / "pretrained" / "london-lite"))
    parser.add_argument("--data", type=Path, default=Path("data/london256_wide"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--people", type=int, default=None, help="default 3, with --mouth all")
    parser.add_argument("--mouth", action="store_true", help="the smile row alone, as mouth close-ups")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "checkpoint_picture.jpg")
    args = parser.parse_args()
    people = args.people if args.people is not None else (None if args.mouth else 3)
    tasks = ("smile",) if args.mouth else TASKS
    models = [PortraitGAN.from_pretrained(name).eval() for name in (args.baseline, args.model)]
    size, pad = models[1].config.image_size, 4
    rows = read_manifest(args.data)
    pairs = neutral_smiling_pairs(args.data, args.split, people)
    if not pairs:
        raise SystemExit(f"no neutral/smiling photo pairs in split {args.split!r} of {args.data}")

    def row_of(identity: str, modality: str) -> dict:
        return next(
            r for r in rows if r["identity"] == identity and r["expression"] == "neutral" and r["modality"] == modality
        )

    def picture(row: dict) -> torch.Tensor:  # (1, 3, size, size) in [-1, 1]
        return pil_to_tensor(Image.open(args.data / row["path"]).convert("RGB").resize((size, size), Image.LANCZOS))

    def points(row: dict) -> np.ndarray:
        scale = size / Image.open(args.data / row["path"]).width
        return (np.asarray(row["landmarks"], np.float32) + 0.5) * scale - 0.5

    grid = []
    for neutral, smiling in pairs:
        image, source = picture(neutral), points(neutral)
        for task in tasks:
            target_row = smiling if task == "smile" else row_of(neutral["identity"], task)
            target = points(smiling) if task == "smile" else source
            goal = picture(target_row)
            warped = warp_by_landmarks(image, torch.from_numpy(source)[None], torch.from_numpy(target)[None])
            outputs = []
            for model in models:
                maps = landmark_map_tensor(target[None], size, model.config.landmark_line_width)
                modality = "photo" if task == "smile" else task
                with torch.no_grad():
                    outputs.append(model.generate(image, maps, modality, source, target, source_modality="photo"))
            cells = (image, warped, *outputs, goal)
            if args.mouth:
                box = torch.from_numpy(target)[None]
                cells = tuple(mouth_crop(cell, box, size // 2) for cell in cells)
            l1 = [float((cell - cells[-1]).abs().mean()) for cell in cells[:4]]
            print(
                f"{neutral['identity']} {task}: L1 input {l1[0]:.3f}, warp {l1[1]:.3f}, "
                f"baseline {l1[2]:.3f}, model {l1[3]:.3f}"
            )
            grid.append([tensor_to_pil(cell.reshape(1, *cell.shape[-3:]))[0] for cell in cells])
    side = grid[0][0].width
    sheet = Image.new("RGB", (5 * side + 6 * pad, len(grid) * (side + pad) + pad), "white")
    for r, cells in enumerate(grid):
        for c, cell in enumerate(cells):
            sheet.paste(cell, (pad + c * (side + pad), pad + r * (side + pad)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=90)
    print(f"wrote {args.out}: {len(pairs)} held-out people, rows {', '.join(tasks)} each")


if __name__ == "__main__":
    main()
