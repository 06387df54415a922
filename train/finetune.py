"""Fine-tuning a published checkpoint: where the run starts, which parts train, and what is replayed.

* :func:`start_from_checkpoint` loads ``model.init_from`` with ``PortraitGAN.from_pretrained``
  (safetensors only, strict, ``model.init_revision`` honoured, offline from the HF cache), checks the
  training config's explicit ``model`` fields against the checkpoint's ``config.json``, and grows the
  model for the modalities of the data that the checkpoint lacks (``portraitgan_hub.growth``). The
  discriminators start fresh unless the checkpoint also has ``discriminator.safetensors`` (written by
  ``train/train.py --export ... --with_discriminators``).
* :func:`freeze_generator_parts` holds ``optim.freeze`` parts fixed.
* :class:`ReplayMix` mixes a second prepared folder (``data.replay_path``, e.g. the original training
  data) into every epoch, so that the old modalities keep being trained while the new one is learnt.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import Dataset

from portraitgan_hub.config import PortraitGANConfig
from portraitgan_hub.discriminator import PatchDiscriminator
from portraitgan_hub.errors import CheckpointError, PortraitGANError
from portraitgan_hub.growth import (
    DISCRIMINATOR_FIELDS,
    grow_discriminator_state,
    grow_modalities,
    stem_convolution,
    with_discriminator_fields,
)
from portraitgan_hub.layers import ConditionalInstanceNorm
from portraitgan_hub.model import PortraitGAN
from train.dataset import read_manifest
from train.training_config import TrainingConfig

logger = logging.getLogger("portraitgan.finetune")

#: Discriminator weights beside an exported generator (``--export ... --with_discriminators``).
DISCRIMINATOR_WEIGHTS = "discriminator.safetensors"


class ConfigConflictError(PortraitGANError, ValueError):
    """A ``model`` field of the training config contradicts the ``config.json`` of ``model.init_from``."""


@dataclass
class FineTuneStart:
    """What a fine-tuning run starts from."""

    #: The training config with ``model`` replaced by the checkpoint's architecture (grown if needed).
    config: TrainingConfig
    #: The generator: the checkpoint's weights, plus zero stem weights for the added modalities.
    model: PortraitGAN
    #: The checkpoint's modalities, in one-hot order, and the ones appended for the data.
    base_modalities: list[str]
    added_modalities: list[str]
    #: Discriminator weights from the checkpoint folder, or None (the discriminators start fresh).
    discriminator_state: dict[str, torch.Tensor] | None = None
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The JSON-able summary kept in every checkpoint and used by the export's model card."""
        return {
            "base_model": self.config.init_from,
            "base_revision": self.config.init_revision,
            "base_modalities": self.base_modalities,
            "added_modalities": self.added_modalities,
            "discriminators": "from the checkpoint" if self.discriminator_state is not None else "fresh",
        }


def data_modalities(path: str | Path, split: str | None = None) -> list[str]:
    """The modalities of a prepared folder, in the order they first appear in its manifest."""
    rows = read_manifest(path)
    return list(dict.fromkeys(row["modality"] for row in rows if split is None or row["split"] == split))


#: ``model`` fields that no weight depends on: a fine-tune takes them from its training config.
WEIGHTLESS_FIELDS = ("edit_region_margin",)


def check_model_fields(config: TrainingConfig, base: PortraitGAN) -> None:
    """Refuse explicit ``model`` fields that contradict the checkpoint's ``config.json``.

    ``model.modalities`` may extend the checkpoint's list (new names appended), never reorder or drop it.
    The fields that shape only the discriminators (``growth.DISCRIMINATOR_FIELDS``) and those no
    weight depends on (:data:`WEIGHTLESS_FIELDS`) may differ.
    Raises :class:`ConfigConflictError` naming the first field that does not match.
    """
    base_values = base.config.to_dict()
    given = config.model.to_dict()
    for name in config.model_fields_given:
        mine, theirs = given[name], base_values[name]
        if name in DISCRIMINATOR_FIELDS:  # they shape only D, which trains again (grow_discriminator_state)
            continue
        if name in WEIGHTLESS_FIELDS:  # set on the loaded model by start_from_checkpoint
            continue
        if name == "modalities":
            if list(mine[: len(theirs)]) == list(theirs):
                continue
        elif mine == theirs:
            continue
        raise ConfigConflictError(
            f"model.{name} = {mine!r} contradicts the config.json of {config.init_from!r} ({name} = {theirs!r}). "
            "The architecture of a fine-tune comes from the checkpoint: remove model."
            f"{name} from the training config"
            + (" (new modalities may only be appended)" if name == "modalities" else "")
        )


def start_from_checkpoint(config: TrainingConfig, *, load_kwargs: dict[str, Any] | None = None) -> FineTuneStart:
    """Load ``config.init_from``, check the config against it and grow it for the data's new modalities.

    ``load_kwargs`` go to ``PortraitGAN.from_pretrained`` (e.g. ``cache_dir``). Raises
    :class:`CheckpointError` if the checkpoint cannot be loaded (not safetensors, mismatched tensors,
    unknown id offline) and :class:`ConfigConflictError` for a contradicting ``model`` field.
    """
    if not config.init_from:
        raise ValueError("start_from_checkpoint needs model.init_from")
    kwargs = {"revision": config.init_revision, **(load_kwargs or {})}
    base = PortraitGAN.from_pretrained(config.init_from, **kwargs)
    check_model_fields(config, base)
    base_modalities = list(base.config.modalities)
    wanted = [m for m in config.model.modalities if "modalities" in config.model_fields_given]
    wanted += data_modalities(config.data.path, config.data.train_split)
    added = [m for m in dict.fromkeys(wanted) if m not in base_modalities]
    model = grow_modalities(base, added, config.optim.new_modality_init) if added else base
    changed = {
        name: getattr(config.model, name)
        for name in DISCRIMINATOR_FIELDS
        if name in config.model_fields_given and getattr(config.model, name) != getattr(model.config, name)
    }
    if changed:
        model = with_discriminator_fields(model, **changed)
    weightless = {
        name: getattr(config.model, name)
        for name in WEIGHTLESS_FIELDS
        if name in config.model_fields_given and getattr(config.model, name) != getattr(model.config, name)
    }
    for name, value in weightless.items():  # G reads its config at every pass
        setattr(model.config, name, value)
    model.train()
    notes = [f"discriminator fields changed from {config.init_from}: {changed}"] if changed else []
    if weightless:
        notes.append(f"fields without weights changed from {config.init_from}: {weightless}")
    if added:
        notes.append(
            f"added modalities {added} to {config.init_from} (one-hot order now {model.config.modalities}; "
            "their stem weights start "
            + (f"as {config.optim.new_modality_init!r}'s" if config.optim.new_modality_init else "at zero")
            + ", so the old modalities' outputs are unchanged at step 0)"
        )
    left_out = [m for m in base_modalities if m not in wanted]
    if left_out:
        replay = f"replayed from {config.data.replay_path}" if config.data.replay_path else "NOT replayed"
        notes.append(f"modalities {left_out} are kept in the model but not in the data ({replay})")
    for note in notes:
        logger.info(note)
    discriminator_state = _discriminator_state(config, base.config, model, kwargs)
    resolved = dataclasses.replace(
        config, model=model.config, model_fields_given=tuple(dataclasses.asdict(model.config))
    )
    return FineTuneStart(resolved, model, base_modalities, added, discriminator_state, notes)


def _discriminator_state(
    config: TrainingConfig, base_config: PortraitGANConfig, model: PortraitGAN, kwargs: dict[str, Any]
) -> dict[str, torch.Tensor] | None:
    """The checkpoint's discriminator weights if it has them, else None.

    They were trained for ``base_config`` (the checkpoint's ``config.json``) and are fitted to
    ``model.config`` by :func:`~portraitgan_hub.growth.grow_discriminator_state` (zero weights for
    new input channels: added modalities, a newly enabled modality or landmark condition).
    """
    source = str(config.init_from)
    if os.path.isdir(source):
        path = Path(source) / DISCRIMINATOR_WEIGHTS
        if not path.is_file():
            return None
    else:
        hub = {k: v for k, v in kwargs.items() if k in ("revision", "cache_dir", "token", "local_files_only")}
        try:
            path = Path(hf_hub_download(repo_id=source, filename=DISCRIMINATOR_WEIGHTS, **hub))
        except (EntryNotFoundError, LocalEntryNotFoundError):
            return None
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from error
    try:
        return grow_discriminator_state(state, base_config, model.config)
    except ValueError as error:
        raise CheckpointError(
            f"{path} does not match the discriminators of {source!r}'s config.json: {error}"
        ) from error


# --- freezing ---------------------------------------------------------------------------------------
def generator_parts(model: PortraitGAN) -> dict[str, list[nn.Module]]:
    """The generator's modules by ``optim.freeze`` name."""
    g = model.generator
    return {
        "encoder": [g.stem, g.down],
        "residual": [g.residual],
        "decoder": [g.up, g.to_rgb, g.aux_to_rgb],
    }


def freeze_generator_parts(model: PortraitGAN, parts: list[str], trainable_modalities: list[str]) -> list[str]:
    """Hold ``parts`` of the generator fixed; returns the names of the frozen parameters.

    Frozen parameters get ``requires_grad = False`` (leave them out of the optimizer). Freezing the
    ``encoder`` keeps the stem's weights for ``trainable_modalities`` trainable (without them a new
    modality could not be learnt at all): the stem weight stays a parameter, and a gradient hook zeroes
    its other input channels, so Adam never moves them (its update is 0 while every gradient is 0).
    Freezing the ``decoder`` of a skip-connected G likewise keeps those modalities' rows of every
    conditional instance norm trainable (a new modality is a new row, textual-inversion style).
    """
    groups = generator_parts(model)
    unknown = sorted(set(parts) - set(groups))
    if unknown:
        raise ValueError(f"optim.freeze: unknown parts {unknown}; choose from {sorted(groups)}")
    frozen: list[str] = []
    names = {id(p): n for n, p in model.named_parameters()}
    for part in parts:
        for module in groups[part]:
            for parameter in module.parameters():
                parameter.requires_grad_(False)
                frozen.append(names[id(parameter)])
    if "encoder" in parts and trainable_modalities:
        _, stem = stem_convolution(model)
        planes = model.config.modality_channels
        mask = torch.zeros(1, stem.weight.shape[1], 1, 1, dtype=stem.weight.dtype, device=stem.weight.device)
        for modality in trainable_modalities:
            mask[0, planes.start + model.config.modality_index(modality)] = 1
        stem.weight.requires_grad_(True)
        stem.weight.register_hook(lambda grad: grad * mask.to(grad.device, grad.dtype))
        frozen.remove(names[id(stem.weight)])
        frozen.append(names[id(stem.weight)] + " (except the added modalities' input channels)")
    if "decoder" in parts and trainable_modalities:
        rows = torch.zeros(model.config.num_modalities, 1)
        for modality in trainable_modalities:
            rows[model.config.modality_index(modality)] = 1
        for module in model.generator.up.modules():
            if isinstance(module, ConditionalInstanceNorm):
                for table in (module.scale, module.shift):
                    table.requires_grad_(True)
                    table.register_hook(lambda grad: grad * rows.to(grad.device, grad.dtype))
                    frozen.remove(names[id(table)])
                    frozen.append(names[id(table)] + " (except the added modalities' rows)")
    return frozen


def freeze_discriminator_layers(discriminator: nn.Module, layers: int) -> list[str]:
    """Hold the first ``layers`` blocks of every PatchGAN fixed (FreezeD: Mo, Cho and Shin 2020,
    "Freeze the Discriminator: a Simple Baseline for Fine-Tuning GANs"); returns the frozen names.

    Fine-tuning on a few images keeps D's low-level features, which overfit first, and adapts only
    its upper layers. Raises ``ValueError`` if ``layers`` is negative or not below a PatchGAN's depth
    (its logits must still learn).
    """
    frozen: list[str] = []
    for name, module in discriminator.named_modules():
        if not isinstance(module, PatchDiscriminator):
            continue
        if not 0 <= layers < len(module.blocks):
            raise ValueError(f"optim.freeze_discriminator_layers must be in 0..{len(module.blocks) - 1}, got {layers}")
        for index in range(layers):
            for key, parameter in module.blocks[index].named_parameters():
                parameter.requires_grad_(False)
                frozen.append(f"{name}.blocks.{index}.{key}")
    return frozen


def scale_new_modality_updates(
    optimizer: torch.optim.Optimizer, model: PortraitGAN, modalities: list[str], factor: float
) -> None:
    """Multiply every optimizer update of the stem weights of ``modalities`` by ``factor``.

    A new modality reaches G only through its stem input channels, which start at zero; Adam moves a
    weight by about ``lr`` per step, so at a fine-tuning learning rate they stay far smaller than the
    old modalities' weights for hundreds of steps and G keeps returning the input. A step pre-hook
    keeps the stem weight, a post-hook stretches the new channels' change by ``factor``: a per-channel
    learning-rate multiplier, with the other channels' updates untouched.
    Raises ``ValueError`` for a factor <= 0.
    """
    if factor <= 0:
        raise ValueError(f"optim.new_modality_lr_scale must be > 0, got {factor}")
    if factor == 1 or not modalities:
        return
    _, stem = stem_convolution(model)
    channels = [model.config.modality_channels.start + model.config.modality_index(m) for m in modalities]
    before: dict[str, torch.Tensor] = {}

    def keep(*_: Any) -> None:
        before["weight"] = stem.weight.detach()[:, channels].clone()

    def stretch(*_: Any) -> None:
        with torch.no_grad():
            old = before.pop("weight")
            stem.weight[:, channels] = old + factor * (stem.weight[:, channels] - old)

    optimizer.register_step_pre_hook(keep)
    optimizer.register_step_post_hook(stretch)


# --- replay -----------------------------------------------------------------------------------------
class ReplayMix(Dataset):
    """The new data followed by ``round(n * ratio / (1 - ratio))`` samples of a replay set per epoch.

    Index ``i < len(primary)`` is ``primary[i]``; a higher index draws a replay sample from a generator
    seeded with ``(seed, epoch, i)``, so that a sample remains a pure function of (seed, epoch, index)
    as resume needs. ``set_epoch`` is passed on to both sets.
    """

    def __init__(self, primary: Dataset, replay: Dataset, ratio: float, seed: int = 0) -> None:
        if not 0 <= ratio < 1:
            raise ValueError(f"data.replay_ratio must be in [0, 1), got {ratio}")
        self.primary, self.replay, self.seed, self.epoch = primary, replay, seed, 0
        self.replay_count = round(len(primary) * ratio / (1 - ratio))  # type: ignore[arg-type]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        for part in (self.primary, self.replay):
            part.set_epoch(epoch)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.primary) + self.replay_count  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        if index < len(self.primary):  # type: ignore[arg-type]
            return self.primary[index]
        pick = np.random.default_rng([self.seed, self.epoch, index, 13]).integers(len(self.replay))  # type: ignore[arg-type]
        return self.replay[int(pick)]


def dataset_description(path: str | Path) -> str:
    """The bullet lines of a prepared folder's dataset card (``README.md``), or a note that it has none."""
    card = Path(path) / "README.md"
    if not card.is_file():
        return f"`{path}` (no dataset card)"
    bullets = [line for line in card.read_text(encoding="utf-8").splitlines() if line.startswith("- ")]
    return "\n".join(bullets) or f"`{path}`"
