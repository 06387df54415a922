"""Seconds per training step on this machine: the warp-guided ``lite`` demo recipe in fp32 against the
``lite-u`` recipe (train/configs/demo_london_lite_u.yaml) under each speed option, in one run.

Runs the real ``train.step.training_step`` (G and D updates, every loss term, data loading with its
synthetic warps and context windows inside the timing) on ``--data`` (a ``train.prepare`` folder),
batch 1 at 256 px. The variants take turns step by step, so a machine that gets busier or quieter
during the run slows them alike and the ratios stay comparable. Each variant sets its own torch
thread count before its step.

python benchmarks/train_step.py [--data data/london256_wide] [--steps 10] [--compile] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # train/ is not installed

import torch

from train.setup import EpochSampler, collate, reset_accelerate_state
from train.step import training_step
from train.trainer import Trainer
from train.training_config import TrainingConfig, load_config

LITE = "train/configs/demo_london_warp.yaml"  # the warp-guided lite recipe of the current demo
LITE_U = "train/configs/demo_london_lite_u.yaml"
#: accelerate keeps one mixed-precision setting per process, so this variant's step runs under
#: ``torch.autocast("cpu", torch.bfloat16)`` itself, which is what accelerate's bf16 does on a CPU.
BF16 = "bf16"
VARIANTS: list[tuple[str, str, list[str]]] = [
    ("lite fp32, 2 threads", LITE, ["optim.threads=2", "objective.hallucination_l1=5"]),
    ("lite-u fp32, 2 threads", LITE_U, ["optim.threads=2"]),
    ("lite-u fp32, 2 threads, channels_last", LITE_U, ["optim.threads=2", "optim.channels_last=true"]),
    (
        "lite-u bf16, 2 threads, channels_last",
        LITE_U,
        ["optim.threads=2", "optim.channels_last=true", BF16],
    ),
    ("lite-u fp32, 1 thread", LITE_U, ["optim.threads=1"]),
]
COMPILED: list[tuple[str, str, list[str]]] = [
    ("lite-u fp32, 2 threads, compiled", LITE_U, ["optim.threads=2", "optim.compile=true"]),
    (
        "lite-u bf16, 2 threads, channels_last, compiled",
        LITE_U,
        ["optim.threads=2", "optim.channels_last=true", "optim.compile=true", BF16],
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/london256_wide")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also torch.compile (minutes of warm-up)")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="run only the variants whose name contains one of these substrings ('lite' matches them all; "
        "the first one kept is the baseline)",
    )
    args = parser.parse_args()
    variants = VARIANTS + (COMPILED if args.compile else [])
    if args.only:
        variants = [v for v in variants if any(part in v[0] for part in args.only)]
        if not variants:
            parser.error(f"--only {args.only} matches none of {[v[0] for v in VARIANTS + COMPILED]}")
    folder = tempfile.mkdtemp()
    runs = []
    for index, (name, path, overrides) in enumerate(variants):
        bf16 = BF16 in overrides
        overrides = [o for o in overrides if o != BF16]
        config = load_config(
            path,
            [
                f"data.path={args.data}",
                f"output_dir={folder}/{index}",
                "data.num_workers=0",
                "tensorboard=false",
                "progress=false",
                "allow_random_vgg=true",
                *overrides,
            ],
        )
        trainer = fresh_trainer(config)
        sampler = iter(EpochSampler(len(trainer.train_set), config.data.seed))
        runs.append((name, trainer, sampler, config.optim.threads, bf16))
    times: dict[str, list[float]] = {run[0]: [] for run in runs}
    try:
        for step in range(args.warmup + args.steps):
            for name, trainer, indices, threads, bf16 in runs:
                torch.set_num_threads(threads)
                start = time.perf_counter()
                batch = collate([trainer.train_set[next(indices)]])
                with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                    training_step(trainer.accelerator, batch, trainer.parts, step)
                if step >= args.warmup:
                    times[name].append(time.perf_counter() - start)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"torch {torch.__version__}, {args.steps} steps after {args.warmup}, median s/step, ratio to the first")
    print_ratios(times, "s/step")


def fresh_trainer(config: TrainingConfig) -> Trainer:
    """A Trainer whose accelerator is prepared with this variant's settings.

    accelerate keeps one process-wide state in which the first Accelerator's settings win, so without
    ``reset_accelerate_state`` a compiled variant after an eager one would run eager (its
    ``dynamo_backend`` ignored). The earlier variants' accelerators then read the new state on every
    step too. That is safe only while
    the variants share what that state holds at step time, which this checks: mixed precision (bf16
    comes from the benchmark's own autocast), gradient accumulation, the device and one process.

    Raises RuntimeError if the prepared G or D is not compiled as ``optim.compile`` asks, and
    ValueError if the variant sets ``optim.mixed_precision`` or ``optim.grad_accumulation``.
    """
    from accelerate.utils import is_compiled_module

    if config.optim.mixed_precision != "no" or config.optim.grad_accumulation != 1:
        raise ValueError("variants share accelerate's state: set bf16 with the BF16 marker, keep grad_accumulation 1")
    reset_accelerate_state()
    trainer = Trainer(config)
    for name, network in (("generator", trainer.model), ("discriminator", trainer.discriminator)):
        if is_compiled_module(network) != config.optim.compile:
            state = "compiled" if is_compiled_module(network) else "not compiled"
            raise RuntimeError(f"optim.compile={config.optim.compile} but the prepared {name} is {state}")
    return trainer


def print_ratios(times: dict[str, list[float]], unit: str) -> None:
    """One line per variant: the median of its seconds and its ratio to the first variant's median."""
    base = statistics.median(next(iter(times.values())))
    width = max(map(len, times)) + 2
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:{width}s} {median:7.3f} {unit}  {median / base:5.2f}x")


if __name__ == "__main__":
    main()
