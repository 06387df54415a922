"""A picture of held-out people: input | thin-plate-spline warp only | model | real target.

Neutral photo -> the same person's smiling landmarks, from a ``train.prepare`` folder's val split. The
warp column is the warp-guided G's own warp (``thin_plate_spline.warp_by_landmarks``) with nothing
drawn, so the picture shows what the model adds to a warp.

python benchmarks/warp_vs_model.py --model runs/warp_brief/model --data data/london256 --people 3 \
    --out docs/warp_vs_model.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from portraitgan_hub import PortraitGAN
from portraitgan_hub.faces.landmark_map import landmark_map_tensor
from portraitgan_hub.image_tensors import pil_to_tensor, tensor_to_pil
from portraitgan_hub.thin_plate_spline import warp_by_landmarks
from train.dataset import read_manifest

COLUMNS = ("input (neutral)", "warp only", "model", "real smile")


def neutral_smiling_pairs(data: Path, split: str, people: int | None) -> list[tuple[dict, dict]]:
    """The first ``people`` identities (None: all) of ``split`` with a neutral and a smiling photo row."""
    rows = [row for row in read_manifest(data) if row["split"] == split and row["modality"] == "photo"]
    by_person: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_person.setdefault(row["identity"], {})[row["expression"]] = row
    pairs = [(p["neutral"], p["smiling"]) for _, p in sorted(by_person.items()) if {"neutral", "smiling"} <= set(p)]
    return pairs[:people]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="folder or Hub id of a (warp-guided) PortraitGAN")
    parser.add_argument("--data", default="data/london256")
    parser.add_argument("--split", default="val")
    parser.add_argument("--people", type=int, default=3)
    parser.add_argument("--out", default="docs/warp_vs_model.jpg")
    args = parser.parse_args()
    model = PortraitGAN.from_pretrained(args.model)
    size = model.config.image_size
    pad, header = 4, 22
    pairs = neutral_smiling_pairs(Path(args.data), args.split, args.people)
    if not pairs:
        raise SystemExit(f"no neutral/smiling photo pairs in split {args.split!r} of {args.data}")
    sheet = Image.new("RGB", (4 * size + 5 * pad, header + len(pairs) * (size + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for col, title in enumerate(COLUMNS):
        draw.text((pad + col * (size + pad) + 4, 4), title, fill="black", font=ImageFont.load_default(size=14))
    for row, (neutral, smiling) in enumerate(pairs):
        pictures = [
            Image.open(Path(args.data) / r["path"]).convert("RGB").resize((size, size)) for r in (neutral, smiling)
        ]
        scale = size / Image.open(Path(args.data) / neutral["path"]).width
        source, target = ((np.asarray(r["landmarks"], np.float32) + 0.5) * scale - 0.5 for r in (neutral, smiling))
        image = pil_to_tensor(pictures[0])
        warped = warp_by_landmarks(image, torch.from_numpy(source)[None], torch.from_numpy(target)[None])
        maps = landmark_map_tensor(target[None], size, model.config.landmark_line_width)
        output = model.generate(image, maps, "photo", source, target)
        cells = [pictures[0], tensor_to_pil(warped)[0], tensor_to_pil(output)[0], pictures[1]]
        for col, cell in enumerate(cells):
            sheet.paste(cell, (pad + col * (size + pad), header + pad + row * (size + pad)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=90)
    print(f"wrote {args.out}: {len(pairs)} held-out people ({', '.join(n['identity'] for n, _ in pairs)})")


if __name__ == "__main__":
    main()
