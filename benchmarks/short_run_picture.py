"""A short run of the warp-guided ``lite`` against ``lite-u``, as a picture: for a sketch, a cartoon and
a smile, the columns input | TPS warp | lite | lite-u | target.

Both models are trained the same way (``train/configs/tiny.yaml`` with the overrides below, the same
steps, data and seed) on the 4-identity London subset of ``tests/assets/london_subset`` prepared at
``--size`` px, then shown on its training people (a short run: what each architecture *can* fit, not
how it generalises). Prints the L1 to the target of each cell; writes the picture to ``--out``.

python benchmarks/short_run_picture.py [--steps 300] [--size 64] [--threads 1] [--out docs/lite_u_short_run.png]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # train/ is not installed

import torch
from PIL import Image, ImageDraw

from portraitgan_hub import PortraitGAN
from portraitgan_hub.faces.landmark_map import draw_landmark_map
from portraitgan_hub.image_tensors import pil_to_tensor, tensor_to_pil
from portraitgan_hub.thin_plate_spline import warp_by_landmarks
from train.prepare import PrepareConfig, prepare
from train.setup import reset_accelerate_state
from train.train import train
from train.training_config import load_config

ROOT = Path(__file__).resolve().parents[1]
COMMON = [
    "model.image_size={size}",
    "model.base_channels=8",
    "model.max_channels=32",
    "model.num_residual_blocks=2",
    "model.discriminator_channels=8",
    "model.mouth_discriminator=true",
    "model.modality_discriminator=true",
    "objective.texture_image_size={size}",
    "objective.hallucination_l1=5",
    "data.synthetic_ratio=0.4",
    "optim.lr=5e-4",
    "checkpoint_every=100000",
    "sample_every=100000",
    "validate_every=100000",
    "tensorboard=false",
]
MODELS = {
    "lite": ["model.preset=lite", "model.attention_mask=true", "model.warp_guided=true", "objective.mask_penalty=0.05"],
    "lite-u": ["model.preset=lite-u", "objective.outline_l1=5", "objective.gradient_l1=10"],
}


def _rows(data: Path) -> list[dict]:
    return [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the two training runs")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "lite_u_short_run.png")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp())
    data = work / "data"
    prepare(
        PrepareConfig(
            str(ROOT / "tests/assets/london_subset"),
            str(data),
            source="london",
            size=args.size,
            val_fraction=0.0,
            seed=0,
            workers=1,
        ),
        progress=False,
    )
    models = {}
    for name, overrides in MODELS.items():
        settings = (
            [o.format(size=args.size) for o in COMMON]
            + overrides
            + [f"optim.steps={args.steps}", f"optim.decay_start={args.steps // 2}"]
        )
        config = load_config(
            ROOT / "train/configs/tiny.yaml", [f"data.path={data}", f"output_dir={work / name}", *settings]
        )
        print(f"training {name}: {args.steps} steps at {args.size} px", flush=True)
        result = train(config)
        reset_accelerate_state()
        models[name] = PortraitGAN.from_pretrained(str(result.export_dir)).eval()
    rows = _rows(data)
    by_key = {(r["identity"], r["expression"], r["modality"]): r for r in rows}
    person = sorted({r["identity"] for r in rows})[0]
    tasks = [
        ("sketch", "neutral", "neutral", "sketch"),
        ("cartoon", "neutral", "neutral", "cartoon"),
        ("smile", "neutral", "smiling", "photo"),
    ]
    cells, labels = [], ["input", "TPS warp", "lite", "lite-u", "target"]
    for task, source_expression, target_expression, modality in tasks:
        source = by_key[(person, source_expression, "photo")]
        target = by_key[(person, target_expression, modality)]
        image = pil_to_tensor(Image.open(data / source["path"]).convert("RGB"))
        goal = pil_to_tensor(Image.open(data / target["path"]).convert("RGB"))
        points_a = torch.tensor(source["landmarks"], dtype=torch.float32)[None]
        points_b = torch.tensor(target["landmarks"], dtype=torch.float32)[None]
        landmark_map = torch.from_numpy(draw_landmark_map(points_b[0].numpy(), args.size, 1))
        row = [image, warp_by_landmarks(image, points_a, points_b)]
        for model in models.values():
            row.append(model.generate(image, landmark_map, modality, points_a, points_b, source_modality="photo"))
        row.append(goal)
        print(
            task,
            "L1 to target:",
            "  ".join(f"{label} {float((c - goal).abs().mean()):.3f}" for label, c in zip(labels[:-1], row[:-1])),
        )
        cells.append(row)
    scale = max(1, 256 // args.size)
    side = args.size * scale
    sheet = Image.new("RGB", (5 * side, 3 * side + 16), "white")
    draw = ImageDraw.Draw(sheet)
    for col, label in enumerate(labels):
        draw.text((col * side + 4, 2), label, fill="black")
    for r, row in enumerate(cells):
        for col, cell in enumerate(row):
            picture = tensor_to_pil(cell)[0].resize((side, side), Image.Resampling.NEAREST)
            sheet.paste(picture, (col * side, 16 + r * side))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out} ({args.steps} steps each, {args.size} px, person {person})")


if __name__ == "__main__":
    main()
