"""The training loop: a :class:`Trainer` builds G, the discriminators, their optimizers and the data
from a :class:`TrainingConfig`, and runs Eq. 12 on every process (accelerate), with validation,
samples, checkpoints, resuming and the final export. One iteration is in :mod:`train.step`; the
command line is ``train/train.py``.
"""

from __future__ import annotations

import os
import statistics
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from portraitgan_hub.errors import CheckpointError, PortraitGANError
from portraitgan_hub.io_utils import atomic_write_text
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
from train.finetune import FineTuneStart, dataset_description, start_from_checkpoint
from train.metrics import LandmarkScorer
from train.run_state import RunResult, TrainState, peak_rss_mib, write_run_info
from train.setup import EpochSampler, load_texture_network, make_accelerator, make_datasets, start_trackers
from train.step import ModalityPools, NonFiniteLossError, TrainingParts, training_step
from train.trainer_setup import build_networks, build_optimizers, make_loader
from train.training_config import TrainingConfig, read_yaml
from train.validation import fixed_samples, validation_metrics
from train.visualize import render_samples


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
        loader = make_loader(self.train_set, self.sampler, config)
        model, discriminator = build_networks(config, self.start, accelerator)
        optimizer_g, optimizer_d, scheduler_g, scheduler_d = build_optimizers(config, model, discriminator, self.start)
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
            max_grad_norm=config.optim.max_grad_norm,
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
        self.sample_batch = (
            fixed_samples(self.val_set or self.train_set, config.sample_count) if accelerator.is_main_process else None
        )
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
    def write_samples(self) -> Path:
        path = self.output / "samples" / f"{checkpoint_name(self.state.step)}.png"
        render_samples(self.accelerator.unwrap_model(self.model), self.sample_batch, path)
        return path

    def validate(self) -> dict[str, float]:
        """MSE, SSIM and dlib landmark NME of G(I_A, L_B, c_B) against I_B on the val split."""
        if self.val_set is None:
            return {}
        if self.scorer is None:
            self.scorer = LandmarkScorer()
        model = self.accelerator.unwrap_model(self.model)
        return validation_metrics(model, self.val_set, self.config, self.accelerator, self.scorer)

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
        write_run_info(accelerator, self.output / "run.json", None)
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
        write_run_info(accelerator, self.output / "run.json", result)
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
