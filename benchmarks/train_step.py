"""Seconds per training step on the CPU: the current demo configuration against the one with every
warp-guided addition (warp-guided G, conditional and mouth PatchGANs, DiffAugment, masked cycle,
synthetic pairs in the data).

Runs ``train.step.training_step`` on ``--data`` (a ``train.prepare`` folder; default data/london256)
for ``--steps`` steps after ``--warmup``, batch 1 at 256 px, texture loss at 64 px on random VGG19
features (as the demo run here). Data loading (synthetic warps included) is timed inside the step.

python benchmarks/train_step.py [--data data/london256] [--steps 20] [--config train/configs/paper.yaml]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from train.setup import EpochSampler, collate
from train.train import Trainer
from train.training_config import load_config

ADDITIONS = [
    "model.warp_guided=true",
    "model.conditional_discriminator=true",
    "model.mouth_discriminator=true",
    "objective.diff_augment=[color,translation,cutout]",
    "data.synthetic_ratio=0.5",
]


def seconds_per_step(overrides: list[str], data: str, steps: int, warmup: int, output: str, config_path: str) -> float:
    from train.step import training_step

    config = load_config(
        config_path,
        [
            f"data.path={data}",
            f"output_dir={output}",
            "data.num_workers=0",
            "tensorboard=false",
            "progress=false",
            "allow_random_vgg=true",
            *overrides,
        ],
    )
    trainer = Trainer(config)
    sampler = EpochSampler(len(trainer.train_set), config.data.seed)
    indices = iter(sampler)
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        batch = collate([trainer.train_set[next(indices)]])
        training_step(trainer.accelerator, batch, trainer.parts, step)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/london256")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--config", default="train/configs/demo_london.yaml", help="e.g. train/configs/paper.yaml")
    args = parser.parse_args()
    import tempfile

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        base = seconds_per_step([], args.data, args.steps, args.warmup, f"{folder}/base", args.config)
        full = seconds_per_step(ADDITIONS, args.data, args.steps, args.warmup, f"{folder}/full", args.config)
    print(f"{args.config}:                 {base:.3f} s/step")
    print(f"+ warp-guided G and every addition: {full:.3f} s/step  ({full / base:.2f}x)")


if __name__ == "__main__":
    main()
