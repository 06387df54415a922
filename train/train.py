"""Train PortraitGAN with the full objective of Eq. 12 on a CPU, one GPU or many (accelerate).

    accelerate launch train/train.py --config train/configs/lite.yaml [key.sub=value ...]
    accelerate launch train/train.py --config train/configs/lite.yaml --resume latest
    accelerate launch train/train.py --config train/configs/finetune.yaml --init_from HUB_ID_OR_FOLDER data.path=...
    accelerate launch --config_file train/configs/accelerate_cpu2.yaml train/train.py --config ...
    python train/train.py --export runs/lite/checkpoints/step-0001000 exported/ [--push_to_hub me/model]
    python train/train.py --export CHECKPOINT exported/ --with_discriminators   # a later init_from reuses D

A run folder (``output_dir``) holds ``training_config.yaml`` (resolved), ``run.json`` (processes,
speed, peak memory), ``logs/`` (TensorBoard), ``samples/step-*.png``, ``checkpoints/step-*/`` and, at
the end, ``model/`` (the exported generator). The iteration itself is in ``train/step.py``.
"""

# ruff: noqa: E402  (the path set-up below must run before the package imports)
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `train` the package, not this file's folder
    _ROOT = Path(__file__).resolve().parents[1]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "train"]
    sys.path.insert(0, str(_ROOT))

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import time
import warnings
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import torch
from torch.utils.data import DataLoader

from portraitgan_hub.discriminator import MultiLevelDiscriminator
from portraitgan_hub.errors import CheckpointError, PortraitGANError
from portraitgan_hub.io_utils import atomic_write_text
from portraitgan_hub.model import PortraitGAN
from portraitgan_hub.vgg import VGG19_WEIGHTS_ENV
from train.checkpoints import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    RANDOM_STATES_FILE,
    check_random_states,
    checkpoint_name,
    checkpoint_step,
    damaged,
    export_checkpoint,
    find_unreadable,
    list_checkpoints,
    read_process_state,
    read_shared_state,
    remove_stale,
    resolve_resume,
    save_checkpoint,
)
from train.finetune import (
    FineTuneStart,
    dataset_description,
    freeze_discriminator_layers,
    freeze_generator_parts,
    scale_new_modality_updates,
    start_from_checkpoint,
)
from train.metrics import LandmarkScorer, MetricTotals
from train.setup import EpochSampler, collate, load_texture_network, make_accelerator, make_datasets, start_trackers
from train.step import (
    ModalityPools,
    NonFiniteLossError,
    TrainingParts,
    lr_factor,
    training_step,
)
from train.training_config import TrainingConfig, load_config, read_yaml
from train.visualize import render_samples

logger = logging.getLogger("portraitgan.train")


# --- the run ----------------------------------------------------------------------------------------
@dataclass
class TrainState:
    """Where the run is: optimizer steps done, and the data position (epoch, batches consumed in it)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    #: The last validation: {"step": ..., "split": ..., "values": {metric: value}}.
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    step: int
    world_size: int
    history: list[dict[str, float]]
    seconds_per_step: float | None
    peak_rss_mib: float
    last_checkpoint: str | None
    export_dir: str | None
    metrics: dict[str, Any]


def peak_rss_mib() -> float:
    """This process's peak resident set size (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if platform.system() == "Darwin" else peak / 1024


class Trainer:
    """Builds everything from a :class:`TrainingConfig` and runs the loop on every process."""

    def __init__(self, config: TrainingConfig, resume: str | None = None) -> None:
        self.config = config
        self.output = Path(config.output_dir)
        self.checkpoints = self.output / CHECKPOINTS_DIR
        if not resume and list_checkpoints(self.checkpoints):
            raise PortraitGANError(
                f"{self.checkpoints} already holds checkpoints: continue with --resume latest, "
                "or choose another output_dir (a new run never overwrites checkpoints)"
            )
        from accelerate.utils import set_seed

        self.start: FineTuneStart | None = None
        if config.init_from:  # the architecture (and the modalities to add) come from the checkpoint
            self.start = start_from_checkpoint(config)
            self.config = config = self.start.config
        if config.optim.threads:
            torch.set_num_threads(config.optim.threads)
        set_seed(config.seed)  # random VGG19 features (smoke tests) are then the same in every run and resume
        self.vgg = load_texture_network(config)  # first: a missing VGG19 stops the run before any work
        has_weights = bool(config.vgg_weights or os.environ.get(VGG19_WEIGHTS_ENV))
        self.random_vgg = self.vgg is not None and not has_weights
        self.accelerator = accelerator = make_accelerator(config)
        set_seed(config.seed)
        self.train_set, self.val_set = make_datasets(config)
        self.sampler = EpochSampler(len(self.train_set), config.data.seed)
        loader = DataLoader(
            self.train_set,
            batch_size=config.data.batch_size,
            sampler=self.sampler,
            num_workers=config.data.num_workers,
            collate_fn=collate,
            drop_last=True,
        )
        model = self.start.model if self.start else PortraitGAN(config.model)
        discriminator = MultiLevelDiscriminator(config.model)
        if self.start and self.start.discriminator_state is not None:
            discriminator.load_state_dict(self.start.discriminator_state, strict=True)
        optim = config.optim
        if optim.channels_last:
            model.to(memory_format=torch.channels_last)
            discriminator.to(memory_format=torch.channels_last)
        if optim.freeze:
            added = self.start.added_modalities if self.start else []
            frozen = freeze_generator_parts(model, optim.freeze, added)
            accelerator.print(f"frozen: {', '.join(optim.freeze)} ({len(frozen)} generator tensors)")
        if optim.freeze_discriminator_layers:
            frozen_d = freeze_discriminator_layers(discriminator, optim.freeze_discriminator_layers)
            accelerator.print(
                f"frozen: the first {optim.freeze_discriminator_layers} block(s) of every PatchGAN "
                f"({len(frozen_d)} discriminator tensors)"
            )
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer_g = torch.optim.Adam(trainable, lr=optim.lr, betas=optim.betas)
        if self.start and self.start.added_modalities:
            scale_new_modality_updates(optimizer_g, model, self.start.added_modalities, optim.new_modality_lr_scale)
        optimizer_d = torch.optim.Adam(
            [p for p in discriminator.parameters() if p.requires_grad],
            lr=optim.lr_discriminator or optim.lr,
            betas=optim.betas,
        )
        schedule = partial(lr_factor, steps=optim.steps, decay_start=config.decay_start)
        scheduler_g = torch.optim.lr_scheduler.LambdaLR(optimizer_g, schedule)
        scheduler_d = torch.optim.lr_scheduler.LambdaLR(optimizer_d, schedule)
        (
            self.model,
            self.discriminator,
            self.optimizer_g,
            self.optimizer_d,
            self.scheduler_g,
            self.scheduler_d,
            self.loader,
        ) = accelerator.prepare(model, discriminator, optimizer_g, optimizer_d, scheduler_g, scheduler_d, loader)
        if len(self.loader) == 0:
            raise PortraitGANError(
                f"{len(self.train_set)} training pairs are fewer than one batch per process "
                f"({config.data.batch_size} x {accelerator.num_processes}): lower data.batch_size"
            )
        if self.vgg is not None:
            self.vgg.to(accelerator.device)
        pools = ModalityPools(
            config.model.num_modalities,
            config.objective.real_pool_size,
            seed=config.seed * 1000 + accelerator.process_index,
        )
        self.parts = TrainingParts(
            generator=self.model,
            discriminator=self.discriminator,
            optimizer_g=self.optimizer_g,
            optimizer_d=self.optimizer_d,
            objective=config.objective,
            pools=pools,
            vgg=self.vgg,
            max_grad_norm=optim.max_grad_norm,
        )
        self.state = TrainState()
        self.last_checkpoint: Path | None = None
        if accelerator.is_main_process:
            self.output.mkdir(parents=True, exist_ok=True)
            remove_stale(self.checkpoints)
        accelerator.wait_for_everyone()
        if resume:
            self.resume(resume)
        if accelerator.is_main_process:
            atomic_write_text(self.output / "training_config.yaml", config.to_yaml())
        start_trackers(accelerator, config)
        if self.start:
            for note in self.start.notes:
                accelerator.print(note)
        self.sample_batch = self._fixed_samples() if accelerator.is_main_process else None
        self.scorer: LandmarkScorer | None = None
        self.validated_step = -1

    # --- resume / checkpoint --------------------------------------------------------------------------
    def resume(self, resume: str) -> None:
        path = resolve_resume(resume, self.output)
        saved = TrainingConfig.from_dict(read_yaml(path / CONFIG_FILE))
        if saved.model != self.config.model:
            raise PortraitGANError(
                f"{path} holds a model of another architecture ({saved.model}); this config asks for "
                f"{self.config.model}. Resume with the config the run was started with."
            )
        newer = [p.name for p in list_checkpoints(self.checkpoints) if checkpoint_step(p) > checkpoint_step(path)]
        if newer:
            raise PortraitGANError(
                f"{self.checkpoints} has checkpoints newer than {path.name} ({', '.join(newer)}): resuming from "
                "an older one would mix two histories in one folder. Move them away or use another output_dir."
            )
        accelerator = self.accelerator
        # Check first what accelerate's load_state would skip (RNG) or fail on with a raw traceback.
        shared = read_shared_state(path)
        same_world = shared.get("world_size") == accelerator.num_processes
        if same_world or (path / RANDOM_STATES_FILE.format(rank=accelerator.process_index)).is_file():
            check_random_states(path, accelerator.process_index)
        own = read_process_state(path, accelerator.process_index)
        if own is None and same_world:
            raise damaged(path / f"trainer_state_{accelerator.process_index}.pt", "missing")
        try:
            accelerator.load_state(str(path))
        except Exception as error:  # a damaged model/optimizer/scheduler file: name it
            raise find_unreadable(path) or CheckpointError(
                f"could not load the training state in {path} ({error}); resume from an earlier checkpoint"
            ) from None
        self.state = TrainState(shared["step"], shared["epoch"], shared["batch_in_epoch"], shared.get("metrics", {}))
        if own is not None:
            self.parts.pools.load_state_dict(own["pools"])
        if shared.get("world_size") != accelerator.num_processes or own is None:
            warnings.warn(
                f"{path} was written by {shared.get('world_size')} processes, this run has "
                f"{accelerator.num_processes}: the data position and real-sample pools will not match exactly",
                stacklevel=2,
            )
        self.last_checkpoint = path
        position = f"step {self.state.step}, epoch {self.state.epoch}, batch {self.state.batch_in_epoch}"
        accelerator.print(f"resumed from {path} at {position}")

    def save(self) -> Path:
        shared = {
            **asdict(self.state),
            "world_size": self.accelerator.num_processes,
            "random_vgg": self.random_vgg,
            **({"finetune": self.finetune_record()} if self.start else {}),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self.last_checkpoint = save_checkpoint(
            self.accelerator,
            self.checkpoints,
            self.state.step,
            shared_state=shared,
            process_state={"pools": self.parts.pools.state_dict(), "step": self.state.step},
            config_yaml=self.config.to_yaml(),
            keep=self.config.keep_checkpoints,
        )
        return self.last_checkpoint

    def finetune_record(self) -> dict[str, Any]:
        """Where a fine-tune came from, for the checkpoint and the exported model card."""
        assert self.start is not None
        record = self.start.record()
        record["data"] = dataset_description(self.config.data.path)
        if self.config.data.replay_path:
            data = self.config.data
            record["replay"] = (
                f"{data.replay_ratio:.0%} of the samples replayed from `{data.replay_path}`:\n\n"
                + dataset_description(data.replay_path)
            )
        return record

    # --- samples and validation (main process) --------------------------------------------------------
    def _fixed_samples(self) -> dict[str, torch.Tensor]:
        source = self.val_set or self.train_set
        source.set_epoch(0)
        count = min(self.config.sample_count, len(source))
        # spread over the set (rows are grouped by person), so the grid shows different people
        indices = sorted({round(i * (len(source) - 1) / max(count - 1, 1)) for i in range(count)})
        return collate([source[i] for i in indices])

    def write_samples(self) -> Path:
        path = self.output / "samples" / f"{checkpoint_name(self.state.step)}.png"
        render_samples(self.accelerator.unwrap_model(self.model), self.sample_batch, path)
        return path

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """MSE, SSIM and dlib landmark NME of G(I_A, L_B, c_B) against I_B on the val split."""
        if self.val_set is None:
            return {}
        if self.scorer is None:
            self.scorer = LandmarkScorer()
        model = self.accelerator.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        self.val_set.set_epoch(0)
        count = len(self.val_set)
        if self.config.validation_samples is not None:
            count = min(count, self.config.validation_samples)
        totals = MetricTotals()
        size = self.config.data.batch_size
        device = self.accelerator.device
        for start in range(0, count, size):
            batch = collate([self.val_set[i] for i in range(start, min(start + size, count))])
            with self.accelerator.autocast():
                output = model(
                    batch["image_a"].to(device),
                    batch["landmarks_map_b"].to(device),
                    batch["modality_b"].to(device),
                    batch["landmarks_a"].to(device),
                    batch["landmarks_b"].to(device),
                )[0]
            totals.update(output.float(), batch["image_b"].to(device), batch["landmarks_b"], self.scorer)
        model.train(was_training)
        return totals.summary()

    # --- the loop -------------------------------------------------------------------------------------
    def run(self, push_to_hub: str | None = None, stop_after_step: int | None = None) -> RunResult:
        config, accelerator, state = self.config, self.accelerator, self.state
        steps = config.optim.steps
        from tqdm.auto import tqdm

        progress = tqdm(
            total=steps,
            initial=state.step,
            desc="train",
            unit="step",
            disable=not (config.progress and accelerator.is_local_main_process),
        )
        accelerator.print(
            f"training on {accelerator.num_processes} process(es), device {accelerator.device}, "
            f"mixed precision {accelerator.mixed_precision}, from step {state.step} to {steps}"
        )
        self._write_run_info(None)
        history: list[dict[str, float]] = []
        step_times: list[float] = []
        window: list[dict[str, float]] = []
        finished = state.step >= steps
        try:
            while not finished:
                self.sampler.set_epoch(state.epoch)
                # The dataset's augmentation depends on the epoch too. Set it here: the loader that
                # skip_first_batches returns (a mid-epoch resume) passes set_epoch to the sampler only.
                self.train_set.set_epoch(state.epoch)
                loader = self.loader
                if state.batch_in_epoch:
                    loader = accelerator.skip_first_batches(self.loader, state.batch_in_epoch)
                loader.set_epoch(state.epoch)
                tick = time.perf_counter()
                for batch in loader:
                    state.batch_in_epoch += 1
                    with accelerator.accumulate(self.model, self.discriminator):
                        window.append(training_step(accelerator, batch, self.parts, state.step))
                    if not accelerator.sync_gradients:
                        continue
                    state.step += 1
                    self.scheduler_g.step()
                    self.scheduler_d.step()
                    losses = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
                    window = []
                    step_times.append(time.perf_counter() - tick)
                    history.append(losses)
                    self._after_step(losses, step_times, progress)
                    tick = time.perf_counter()
                    if state.step >= steps or (stop_after_step is not None and state.step >= stop_after_step):
                        finished = True
                        break
                else:
                    state.epoch += 1
                    state.batch_in_epoch = 0
        except NonFiniteLossError as error:
            accelerator.print(f"\nSTOPPED: {error}\nLast good checkpoint: {self.last_checkpoint or 'none yet'}")
            accelerator.end_training()
            raise
        finally:
            progress.close()

        export_dir = None
        if state.step >= steps:
            if self.val_set is not None and self.validated_step != state.step:
                self._validate_and_log()
            self.save()
            if accelerator.is_main_process:
                export_dir = export_checkpoint(self.last_checkpoint, self.output / "model", push_to_hub)
                accelerator.print(f"exported the generator to {export_dir}")
            accelerator.wait_for_everyone()
        accelerator.end_training()
        # The first step includes one-off set-up costs (allocator, thread pools): leave it out.
        timed = step_times[1:] or step_times
        result = RunResult(
            step=state.step,
            world_size=accelerator.num_processes,
            history=history,
            seconds_per_step=statistics.median(timed) if timed else None,
            peak_rss_mib=peak_rss_mib(),
            last_checkpoint=str(self.last_checkpoint) if self.last_checkpoint else None,
            export_dir=str(export_dir) if export_dir else None,
            metrics=state.metrics,
        )
        self._write_run_info(result)
        return result

    def _after_step(self, losses: dict[str, float], step_times: list[float], progress) -> None:
        config, accelerator, state = self.config, self.accelerator, self.state
        step = state.step
        progress.update(1)
        if step % config.log_every == 0 or step == config.optim.steps:
            logged = self._mean_over_processes(losses)
            logged = {f"loss/{k}": v for k, v in logged.items()}
            logged["lr/generator"] = self.scheduler_g.get_last_lr()[0]
            logged["lr/discriminator"] = self.scheduler_d.get_last_lr()[0]
            logged["time/seconds_per_step"] = step_times[-1]
            logged["memory/peak_rss_mib"] = peak_rss_mib()
            logged["data/epoch"] = state.epoch
            accelerator.log(logged, step=step)
            progress.set_postfix(g=f"{losses['g/total']:.3f}", d=f"{losses['d/total']:.3f}", refresh=False)
        if step % config.sample_every == 0 and accelerator.is_main_process:
            self.write_samples()
        if step % config.validate_every == 0:
            self._validate_and_log()
        if step % config.checkpoint_every == 0:
            self.save()

    def _mean_over_processes(self, losses: dict[str, float]) -> dict[str, float]:
        if self.accelerator.num_processes == 1:
            return losses
        names = sorted(losses)
        values = torch.tensor([losses[n] for n in names], device=self.accelerator.device)
        values = self.accelerator.reduce(values, reduction="mean")
        return dict(zip(names, values.tolist()))

    def _validate_and_log(self) -> None:
        """Validation on the main process (the others wait); same call sequence on every process."""
        accelerator = self.accelerator
        self.validated_step = self.state.step
        if accelerator.is_main_process and self.val_set is not None:
            values = self.validate()
            self.state.metrics = {"step": self.state.step, "split": self.config.data.val_split, "values": values}
            accelerator.log({f"val/{k}": v for k, v in values.items()}, step=self.state.step)
            accelerator.print(
                f"validation at step {self.state.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items())
            )
        accelerator.wait_for_everyone()

    def _write_run_info(self, result: RunResult | None) -> None:
        if not self.accelerator.is_main_process:
            return
        info: dict[str, Any] = {
            "world_size": self.accelerator.num_processes,
            "distributed_type": str(self.accelerator.distributed_type),
            "device": str(self.accelerator.device),
            "mixed_precision": self.accelerator.mixed_precision,
            "torch_threads": torch.get_num_threads(),
            "command": " ".join(sys.argv),
        }
        if result is not None:
            info.update({k: v for k, v in asdict(result).items() if k != "history"})
        atomic_write_text(self.output / "run.json", json.dumps(info, indent=2))


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
