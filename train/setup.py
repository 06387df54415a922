"""What a run needs before its first step: the data sets and their sampler, the accelerator, the
texture network and the TensorBoard tracker. Used by :mod:`train.train`."""

from __future__ import annotations

import os
import platform
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, default_collate

from portraitgan_hub.errors import PortraitGANError, PretrainedWeightsMissingError
from portraitgan_hub.vgg import VGG19Features, load_vgg19
from train.dataset import PairedPortraitDataset, read_manifest
from train.step import needs_unused_parameter_search
from train.training_config import TrainingConfig


# --- data -------------------------------------------------------------------------------------------
class EpochSampler(Sampler[int]):
    """A permutation of the training set drawn from (seed, epoch) alone.

    The order of an epoch is thus known again after a restart, and every process draws the same one
    (accelerate then gives each process its share of the batches).
    """

    def __init__(self, length: int, seed: int) -> None:
        self.length, self.seed, self.epoch = length, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        return iter(np.random.default_rng([self.seed, self.epoch, 7]).permutation(self.length).tolist())

    def __len__(self) -> int:
        return self.length


def collate(samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Batch the tensors of the samples (images, maps, modalities, landmarks); drop the text fields."""
    return default_collate([{k: v for k, v in s.items() if isinstance(v, torch.Tensor)} for s in samples])


def make_datasets(config: TrainingConfig) -> tuple[Dataset, PairedPortraitDataset | None]:
    """The training set (with ``data.replay_path`` mixed in, if set) and the val split of ``data.path``.

    A fine-tune (``model.init_from``) may leave some of the model's modalities out of its data.
    """
    common = dict(
        modalities=config.model.modalities,
        image_size=config.image_size,
        line_width=config.line_width,
        seed=config.data.seed,
        require_all_modalities=config.init_from is None,
    )
    augment = dict(
        flip_probability=config.data.flip_probability,
        max_scale=config.data.max_scale,
        max_shift=config.data.max_shift,
        synthetic_ratio=config.data.synthetic_ratio,
        synthetic_kinds=config.data.synthetic_kinds,
        synthetic_noise=config.data.synthetic_noise,
        context_ratio=config.data.context_ratio,
        modality_mix_ratio=config.data.modality_mix_ratio,
        opening_ratio=config.data.opening_ratio,
    )
    train_set: Dataset = PairedPortraitDataset(config.data.path, split=config.data.train_split, **augment, **common)
    if config.data.replay_path:
        from train.finetune import ReplayMix

        replay = PairedPortraitDataset(config.data.replay_path, split=config.data.train_split, **augment, **common)
        train_set = ReplayMix(train_set, replay, config.data.replay_ratio, seed=config.data.seed)
    has_val = any(row["split"] == config.data.val_split for row in read_manifest(config.data.path))
    if not has_val:
        return train_set, None
    val_set = PairedPortraitDataset(config.data.path, split=config.data.val_split, flip_probability=0.0, **common)
    return train_set, val_set


# --- start-up ---------------------------------------------------------------------------------------
def load_texture_network(config: TrainingConfig) -> VGG19Features | None:
    """VGG19 for the texture loss, or None when eta = 0. Fails at start-up without weights."""
    if not config.objective.texture:
        return None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            vgg = load_vgg19(config.vgg_weights, allow_random=config.allow_random_vgg)
    except PretrainedWeightsMissingError as error:
        raise PretrainedWeightsMissingError(
            f"{error}\nIn a training config: set `vgg_weights: PATH_OR_HUB_ID` (or pass vgg_weights=...), "
            "or `allow_random_vgg: true` for a smoke test only, or `objective.texture: 0` to drop the texture term."
        ) from error
    for warning in caught:
        print(f"\n{'!' * 100}\nWARNING: {warning.message}\n{'!' * 100}\n", file=sys.stderr, flush=True)
    return vgg


def make_accelerator(config: TrainingConfig):
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.utils import ProjectConfiguration

    output = Path(config.output_dir)
    ddp = DistributedDataParallelKwargs(
        find_unused_parameters=needs_unused_parameter_search(config.model.num_levels, config.objective)
    )
    accelerator = Accelerator(
        cpu=_multi_process_without_gpu(),
        mixed_precision=config.optim.mixed_precision,
        dynamo_backend="inductor" if config.optim.compile else "no",
        gradient_accumulation_steps=config.optim.grad_accumulation,
        log_with="tensorboard" if config.tensorboard else None,
        project_config=ProjectConfiguration(project_dir=str(output), logging_dir=str(output / "logs")),
        step_scheduler_with_optimizer=False,  # our schedule counts optimizer steps, whatever the process count
        kwargs_handlers=[ddp],
    )
    warning = slow_bf16_warning(accelerator.device, accelerator.mixed_precision)
    if warning and accelerator.is_local_main_process:
        print(f"WARNING: {warning}", file=sys.stderr, flush=True)
    return accelerator


def reset_accelerate_state() -> None:
    """Forget accelerate's process-wide state (the first Accelerator's settings otherwise win), so that
    one process can run several trainings: the tests and the benchmarks. Uses accelerate's private
    ``_reset_state``, as accelerate's own tests do (accelerate 1.x)."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def slow_bf16_warning(device: torch.device, mixed_precision: str) -> str | None:
    """A line saying bf16 will be slow, for bf16 autocast on an x86 CPU without bf16 arithmetic; else None.

    Without AVX-512 BF16 or AMX the CPU emulates bf16: on a Zen3 a lite-u training step took 8-15x as
    long as its fp32 step, where on a Xeon with AMX it took about 0.7x (docs/training.md). torch before
    2.3 has no probes for these features, and then nothing is said. Other processors
    (ARM, Apple) are not judged: torch only reports the x86 features.
    """
    if mixed_precision != "bf16" or device.type != "cpu" or platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(probe is None for probe in probes) or any(probe() for probe in probes):
        return None
    return (
        "optim.mixed_precision=bf16 on a CPU without bf16 arithmetic (no AVX-512 BF16 or AMX): torch emulates it, "
        "and a lite-u step took 8-15x as long as in fp32 on such a CPU; set optim.mixed_precision=no here"
    )


def _multi_process_without_gpu() -> bool:
    """True for a multi-process launch (torchrun sets WORLD_SIZE) on a machine without CUDA.

    accelerate turns such a launch into a group of independent single-process runs unless it is told
    ``cpu=True``, with which it joins the processes with gloo (DistributedType.MULTI_CPU).
    """
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


def flat_hparams(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The nested config as TensorBoard hparams: scalars only (lists and None become text)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_hparams(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = str(value)
    return out


def start_trackers(accelerator, config: TrainingConfig) -> None:
    if not config.tensorboard:
        return
    # accelerate drops a tracker whose package is missing with only a debug message; ``log_with`` is
    # the filtered list on every process (``trackers`` is filled on the main process only).
    if not accelerator.log_with:
        raise PortraitGANError(
            "tensorboard: true, but accelerate could not start its TensorBoard tracker (it drops a missing "
            "tracker silently). Install the train extra (pip install -e '.[train]', which brings tensorboard), "
            "or set tensorboard=false."
        )
    accelerator.init_trackers("portraitgan", config=flat_hparams(config.to_dict()))
    if accelerator.is_main_process:
        if not accelerator.trackers:
            raise PortraitGANError("accelerate started no tracker although TensorBoard logging is on")
        writer = accelerator.get_tracker("tensorboard", unwrap=True)
        writer.add_text("config", "```yaml\n" + config.to_yaml() + "```", 0)
        writer.flush()
