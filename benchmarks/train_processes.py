"""Seconds per training *sample* on this machine: one process with two threads (batch 1 or 2) against
two processes with one thread each (``accelerate launch``, gloo, batch 1 each), for the warp-guided
``lite`` demo recipe and the ``lite-u`` recipe, so a 2-core CPU's best layout can be chosen by throughput.

Each run is ``train/train.py`` as a user starts it, for ``--steps`` steps at 256 px on ``--data`` (a
``train.prepare`` folder), with the checkpoints, samples and validation pushed past the end; the run's
own ``run.json`` gives the median seconds per step (first step left out; the final validation,
checkpoint and export are outside it) and the process count.
Seconds per sample is seconds per step / (processes x per-process batch). The layouts take turns
round by round, so a machine that gets busier or quieter slows them alike. Without VGG19 weights
(``vgg_weights``, ``$PORTRAITGAN_VGG19_WEIGHTS``) random features stand in for the texture network (same cost).

python benchmarks/train_processes.py [--data data/london256_wide] [--steps 30] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from train_step import print_ratios  # benchmarks/, this script's folder

REPO = Path(__file__).resolve().parents[1]
LITE = ("lite", "train/configs/demo_london_warp.yaml", ["objective.hallucination_l1=5"])
LITE_U = ("lite-u", "train/configs/demo_london_lite_u.yaml", [])
#: (name, processes, threads per process, per-process batch)
LAYOUTS = [
    ("1 process x 2 threads", 1, 2, 1),
    ("1 process x 2 threads, batch 2", 1, 2, 2),
    ("2 processes x 1 thread", 2, 1, 1),
]


def run(
    config: str, overrides: list[str], layout: tuple[str, int, int, int], output: Path, data: str, steps: int
) -> dict:
    """One ``train/train.py`` run; returns its ``run.json``. On failure prints the end of its log, then
    raises CalledProcessError."""
    _, processes, threads, batch = layout
    train = [
        str(REPO / "train" / "train.py"),
        "--config",
        config,
        f"data.path={data}",
        "data.num_workers=0",
        "tensorboard=false",
        "progress=false",
        "allow_random_vgg=true",
        f"optim.steps={steps}",
        f"optim.threads={threads}",
        f"data.batch_size={batch}",
        f"checkpoint_every={steps + 1}",
        f"sample_every={steps + 1}",
        f"validate_every={steps + 1}",
        f"output_dir={output}",
        *overrides,
    ]
    if processes == 1:
        command = [sys.executable, *train]
    else:
        launch = ["--config_file", str(REPO / "train/configs/accelerate_cpu2.yaml"), "--main_process_port", "29533"]
        command = [sys.executable, "-m", "accelerate.commands.launch", *launch, *train]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode:
        print(done.stdout[-2000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
        raise subprocess.CalledProcessError(done.returncode, command, done.stdout, done.stderr[-4000:])
    return json.loads((output / "run.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data/london256_wide")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    per_sample: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for model, config, overrides in (LITE, LITE_U):
                for index, layout in enumerate(LAYOUTS):
                    name = f"{model}, {layout[0]}"
                    output = Path(folder) / f"{round_}-{model}-{index}"
                    result = run(config, overrides, layout, output, args.data, args.steps)
                    seconds = result["seconds_per_step"] / (result["world_size"] * layout[3])
                    per_sample.setdefault(name, []).append(seconds)
                    print(f"round {round_ + 1}: {name:40s} {seconds:6.3f} s/sample", flush=True)
    print(f"median of {args.rounds} rounds of {args.steps} steps, seconds per sample, ratio to lite with 1 process")
    print_ratios(per_sample, "s/sample")


if __name__ == "__main__":
    main()
