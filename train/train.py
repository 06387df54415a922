"""Train PortraitGAN with the full objective of Eq. 12 on a CPU, one GPU or many (accelerate).

    accelerate launch train/train.py --config train/configs/lite.yaml [key.sub=value ...]
    accelerate launch train/train.py --config train/configs/lite.yaml --resume latest
    accelerate launch train/train.py --config train/configs/finetune.yaml --init_from HUB_ID_OR_FOLDER data.path=...
    accelerate launch --config_file train/configs/accelerate_cpu2.yaml train/train.py --config ...
    python train/train.py --export runs/lite/checkpoints/step-0001000 exported/ [--push_to_hub me/model]
    python train/train.py --export CHECKPOINT exported/ --with_discriminators   # a later init_from reuses D

A run folder (``output_dir``) holds ``training_config.yaml`` (resolved), ``run.json`` (processes,
speed, peak memory), ``logs/`` (TensorBoard), ``samples/step-*.png``, ``checkpoints/step-*/`` and, at
the end, ``model/`` (the exported generator). The loop is :class:`train.trainer.Trainer`, one
iteration :func:`train.step.training_step`; this module is the command line and :func:`train`.
"""

# ruff: noqa: E402  (the path set-up below must run before the package imports)
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `train` the package, not this file's folder
    _ROOT = Path(__file__).resolve().parents[1]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "train"]
    sys.path.insert(0, str(_ROOT))

import torch

from portraitgan_hub.errors import PortraitGANError
from train.checkpoints import export_checkpoint
from train.run_state import RunResult
from train.trainer import Trainer
from train.training_config import TrainingConfig, load_config

logger = logging.getLogger("portraitgan.train")


def train(
    config: TrainingConfig,
    resume: str | None = None,
    push_to_hub: str | None = None,
    stop_after_step: int | None = None,
) -> RunResult:
    """Train (or resume) a run; returns the per-step losses of this process and the run's figures.

    ``stop_after_step`` ends the loop early without the final export, as an interruption would.
    """
    previous = torch.are_deterministic_algorithms_enabled()
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
    try:
        return Trainer(config, resume).run(push_to_hub=push_to_hub, stop_after_step=stop_after_step)
    finally:
        torch.use_deterministic_algorithms(previous)


# --- command line -----------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="train/train.py",
        description="Train PortraitGAN (Eq. 12) with accelerate, or export a checkpoint's generator.",
        epilog="Overrides: dotted keys of the config, e.g. optim.steps=100 data.batch_size=4 objective.cycle=0",
    )
    parser.add_argument("--config", help="training config YAML (train/configs/*.yaml)")
    parser.add_argument("--resume", metavar="latest|PATH", help="continue from the newest or a given checkpoint")
    parser.add_argument("--export", nargs=2, metavar=("CHECKPOINT_DIR", "OUT_DIR"), help="export a checkpoint's G")
    parser.add_argument("--push_to_hub", metavar="REPO", help="upload the exported generator (never a checkpoint)")
    parser.add_argument(
        "--init_from", metavar="HUB_ID_OR_FOLDER", help="fine-tune this published checkpoint (model.init_from)"
    )
    parser.add_argument("--init_revision", metavar="REV", help="Hub revision of --init_from (model.init_revision)")
    parser.add_argument(
        "--with_discriminators",
        action="store_true",
        help="with --export: also write discriminator.safetensors, so a fine-tune can start from them",
    )
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value")
    args = parser.parse_args(argv)
    if args.export and (args.config or args.resume or args.overrides or args.init_from or args.init_revision):
        parser.error(
            "--export takes only a checkpoint folder, an output folder, --with_discriminators and --push_to_hub"
        )
    if args.with_discriminators and not args.export:
        parser.error("--with_discriminators goes with --export")
    if args.init_from:  # the architecture comes from the checkpoint, not from a preset of the config file
        args.overrides += ["model.preset=null", f"model.init_from={args.init_from}"]
    if args.init_revision:
        args.overrides.append(f"model.init_revision={args.init_revision}")
    if not args.export and not args.config:
        parser.error("--config is required to train")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.export:
            out = export_checkpoint(
                args.export[0], args.export[1], args.push_to_hub, with_discriminators=args.with_discriminators
            )
            print(
                f"exported {args.export[0]} to {out}"
                + (f" and pushed to {args.push_to_hub}" if args.push_to_hub else "")
            )
            return 0
        config = load_config(args.config, args.overrides)
        result = train(config, resume=args.resume, push_to_hub=args.push_to_hub)
    except (PortraitGANError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if result.seconds_per_step is not None:
        print(
            f"done: step {result.step}, {result.seconds_per_step:.3f} s/step, peak RSS {result.peak_rss_mib:.0f} MiB, "
            f"{result.world_size} process(es)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
