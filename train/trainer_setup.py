"""The parts a :class:`train.trainer.Trainer` builds from its config: the data loader, G and the
discriminators (with the fine-tune's start and frozen parts), and their optimizers and schedules."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from portraitgan_hub.discriminator import MultiLevelDiscriminator
from portraitgan_hub.model import PortraitGAN
from train.finetune import (
    FineTuneStart,
    freeze_discriminator_layers,
    freeze_generator_parts,
    scale_new_modality_updates,
)
from train.setup import EpochSampler, collate
from train.step import lr_factor
from train.training_config import TrainingConfig


def make_loader(train_set: Dataset, sampler: EpochSampler, config: TrainingConfig) -> DataLoader:
    """The training loader: ``data.batch_size`` pairs in the sampler's order, incomplete batches dropped."""
    return DataLoader(
        train_set,
        batch_size=config.data.batch_size,
        sampler=sampler,
        num_workers=config.data.num_workers,
        collate_fn=collate,
        drop_last=True,
    )


def build_networks(
    config: TrainingConfig, start: FineTuneStart | None, accelerator: Any
) -> tuple[PortraitGAN, MultiLevelDiscriminator]:
    """G (new, or the fine-tune's ``start``) and the discriminators (the start's, when it has them), in
    channels-last memory when asked, with ``optim.freeze`` and ``optim.freeze_discriminator_layers``
    frozen (reported with ``accelerator.print``)."""
    model = start.model if start else PortraitGAN(config.model)
    discriminator = MultiLevelDiscriminator(config.model)
    if start and start.discriminator_state is not None:
        discriminator.load_state_dict(start.discriminator_state, strict=True)
    optim = config.optim
    if optim.channels_last:
        model.to(memory_format=torch.channels_last)
        discriminator.to(memory_format=torch.channels_last)
    if optim.freeze:
        added = start.added_modalities if start else []
        frozen = freeze_generator_parts(model, optim.freeze, added)
        accelerator.print(f"frozen: {', '.join(optim.freeze)} ({len(frozen)} generator tensors)")
    if optim.freeze_discriminator_layers:
        frozen_d = freeze_discriminator_layers(discriminator, optim.freeze_discriminator_layers)
        accelerator.print(
            f"frozen: the first {optim.freeze_discriminator_layers} block(s) of every PatchGAN "
            f"({len(frozen_d)} discriminator tensors)"
        )
    return model, discriminator


def build_optimizers(
    config: TrainingConfig, model: PortraitGAN, discriminator: MultiLevelDiscriminator, start: FineTuneStart | None
) -> tuple[torch.optim.Adam, torch.optim.Adam, torch.optim.lr_scheduler.LambdaLR, torch.optim.lr_scheduler.LambdaLR]:
    """Adam for G's and D's trainable parameters (a fine-tune's new modalities at their own scale) and
    their schedules (pix2pixHD's: 1 until ``decay_start``, then linear to 0 at ``optim.steps``).

    Returns ``(optimizer_g, optimizer_d, scheduler_g, scheduler_d)``.
    """
    optim = config.optim
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer_g = torch.optim.Adam(trainable, lr=optim.lr, betas=optim.betas)
    if start and start.added_modalities:
        scale_new_modality_updates(optimizer_g, model, start.added_modalities, optim.new_modality_lr_scale)
    optimizer_d = torch.optim.Adam(
        [p for p in discriminator.parameters() if p.requires_grad],
        lr=optim.lr_discriminator or optim.lr,
        betas=optim.betas,
    )
    schedule = partial(lr_factor, steps=optim.steps, decay_start=config.decay_start)
    scheduler_g = torch.optim.lr_scheduler.LambdaLR(optimizer_g, schedule)
    scheduler_d = torch.optim.lr_scheduler.LambdaLR(optimizer_d, schedule)
    return optimizer_g, optimizer_d, scheduler_g, scheduler_d
