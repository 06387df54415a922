"""Figures and a picture for a fine-tune: L1 to the pseudo-targets before and after, per modality.

    python benchmarks/finetune_example.py --base portraitgan_hub/pretrained/london-lite \
        --tuned runs/finetune_watercolour/model --new data/watercolour256 --old data/london256 \
        --picture finetune_example.png [--rows 4] [--tile 256]

For every val photo of ``--new`` (and of ``--old`` for the old modalities): G(photo, its own landmark
map, c) against the image of modality c. The base model is grown with zero stem weights for the new
modalities, i.e. it is the fine-tune at step 0. The picture has one row per person:
input | old modalities (tuned) | new modalities at step 0 | new modalities after fine-tuning | their
targets.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portraitgan_hub import PortraitGAN  # noqa: E402
from portraitgan_hub.growth import grow_modalities  # noqa: E402
from portraitgan_hub.image_tensors import tensor_to_pil  # noqa: E402
from train.dataset import PairedPortraitDataset  # noqa: E402
from train.setup import collate  # noqa: E402


def pairs(root: Path, modalities: list[str], modality: str, split: str) -> dict[str, torch.Tensor]:
    """Photos of ``split`` with their landmark maps, and the ``modality`` image of each (``target``)."""
    dataset = PairedPortraitDataset(
        root, modalities, split=split, flip_probability=0.0, line_width=2, require_all_modalities=False
    )
    rows = dataset.rows
    index = {(r["identity"], r["expression"], r["modality"]): i for i, r in enumerate(rows)}
    photos = [i for i, r in enumerate(rows) if r["modality"] == "photo"]
    photos = [i for i in photos if (rows[i]["identity"], rows[i]["expression"], modality) in index]
    batch = collate([dataset[i] for i in photos])
    batch["target"] = torch.stack(
        [dataset[index[rows[i]["identity"], rows[i]["expression"], modality]]["image_a"] for i in photos]
    )
    return batch


def l1(model: PortraitGAN, batch: dict[str, torch.Tensor], modality: str) -> float:
    out = model.generate(batch["image_a"], batch["landmarks_map_a"], modality)
    return (out - batch["target"]).abs().mean().item()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--tuned", required=True)
    parser.add_argument("--new", type=Path, required=True, help="prepared folder of the new style")
    parser.add_argument("--old", type=Path, help="prepared folder with the old modalities")
    parser.add_argument("--split", default="val")
    parser.add_argument("--picture", type=Path)
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--tile", type=int, default=160)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    tuned = PortraitGAN.from_pretrained(args.tuned)
    base = PortraitGAN.from_pretrained(args.base)
    added = [m for m in tuned.config.modalities if m not in base.config.modalities]
    start = grow_modalities(base, added)
    figures: dict[str, dict[str, float]] = {}
    for modality in added:
        batch = pairs(args.new, tuned.config.modalities, modality, args.split)
        figures[modality] = {"step0": l1(start, batch, modality), "tuned": l1(tuned, batch, modality)}
    if args.old:
        for modality in base.config.modalities:
            batch = pairs(args.old, tuned.config.modalities, modality, args.split)
            figures[modality] = {"step0": l1(start, batch, modality), "tuned": l1(tuned, batch, modality)}
    print(json.dumps({"split": args.split, "l1_to_target": figures}, indent=2))

    if args.picture:
        batch = pairs(args.new, tuned.config.modalities, added[0], args.split)
        count = min(args.rows, len(batch["image_a"]))
        step = max(1, len(batch["image_a"]) // count)
        chosen = list(range(0, step * count, step))
        images, maps = batch["image_a"][chosen], batch["landmarks_map_a"][chosen]
        columns = [("input", images)]
        columns += [(m, tuned.generate(images, maps, m)) for m in base.config.modalities]
        columns += [(f"{m} step 0", start.generate(images, maps, m)) for m in added]
        columns += [(f"{m} tuned", tuned.generate(images, maps, m)) for m in added]
        columns += [(f"{m} target", batch["target"][chosen]) for m in added[:1]]
        tile, label = args.tile, 18
        sheet = Image.new("RGB", (tile * len(columns), label + tile * count), "white")
        draw = ImageDraw.Draw(sheet)
        for c, (name, tensor) in enumerate(columns):
            draw.text((c * tile + 4, 3), name, fill="black")
            for r, picture in enumerate(tensor_to_pil(tensor)):
                sheet.paste(picture.resize((tile, tile), Image.BICUBIC), (c * tile, label + r * tile))
        args.picture.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(args.picture, quality=85)
        print(f"wrote {args.picture} ({args.picture.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
