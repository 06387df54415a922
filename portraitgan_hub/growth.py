"""Add modalities to a trained generator without changing what it does for the old ones.

The target modality c reaches G only through the one-hot planes that the stem convolution reads
(``config.modality_channels``). A new modality is a new plane: its name is appended to the one-hot
order (old indices unchanged), and the stem gets one more input channel whose weights are zero. For
an old modality the new plane is 0 and its weights are 0, so the stem computes the same sums as
before and every old output is unchanged at step 0 (up to float rounding, 2e-6 on some CPUs, where
oneDNN sums the extra zero channel in another order: see the tests). For
the new modality the stem starts from "no modality plane set", and fine-tuning learns its weights.

A skip-connected G (``skip_connections``) also reads c in every conditional instance norm
(:class:`~portraitgan_hub.layers.ConditionalInstanceNorm`): a new modality is one more (scale, shift)
row there, the identity row (1, 0) or a copy of the initial modality's, and weight 0 for the old ones.

The discriminators grow the same way (:func:`grow_discriminator_state`): new input channels (a
modality plane, the landmark map) get zero weights, so D judges as before until it learns them.
"""

from __future__ import annotations

import dataclasses
import logging

import torch
from torch import nn

from portraitgan_hub.config import PortraitGANConfig
from portraitgan_hub.discriminator import MultiLevelDiscriminator
from portraitgan_hub.layers import ConditionalInstanceNorm
from portraitgan_hub.model import PortraitGAN

logger = logging.getLogger("portraitgan.growth")


def stem_convolution(model: PortraitGAN) -> tuple[str, nn.Conv2d]:
    """The generator's first convolution (the one that reads the modality planes) and its state-dict name.

    Raises ``ValueError`` if the stem has no convolution (an architecture this module does not know).
    """
    for name, module in model.generator.stem.named_modules():
        if isinstance(module, nn.Conv2d):
            return f"generator.stem.{name}", module
    raise ValueError("the generator's stem has no Conv2d: cannot find the modality input channels")


def grow_modalities(model: PortraitGAN, new_modalities: list[str], initial: str | None = None) -> PortraitGAN:
    """A copy of ``model`` that also knows ``new_modalities``, appended to the one-hot order.

    Every tensor is copied; the stem convolution's weight gets new input channels for the new
    modality planes, inserted at the end of ``config.modality_channels`` (channels after the planes,
    if an architecture has any, keep their weights and move up). They are zero, or with ``initial``
    (an existing modality) a copy of its channel, so that G asked for a new modality starts as G
    asked for ``initial`` (a new token starting from an existing one, as in textual inversion, Gal
    et al. 2022, diffusers' ``--initializer_token``). Old outputs are unchanged either way, since the
    new planes are 0 for them. ``model`` is not changed.

    Raises ``ValueError`` if a name is already a modality of the model, repeated, or empty, or if
    ``initial`` is not one of the model's modalities.
    """
    names = [str(name) for name in new_modalities]
    old_config = model.config
    clash = sorted(set(names) & set(old_config.modalities))
    if clash:
        raise ValueError(f"modalities {clash} are already in the model ({old_config.modalities})")
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"new modality names must be unique and non-empty, got {names}")
    if initial is not None and initial not in old_config.modalities:
        raise ValueError(f"initial modality {initial!r} is not one of the model's {old_config.modalities}")
    if not names:
        return model
    config = dataclasses.replace(old_config, modalities=[*old_config.modalities, *names])
    grown = PortraitGAN(config).to(device=model.device, dtype=model.dtype)
    key, _ = stem_convolution(grown)
    old_state = model.state_dict()
    state = dict(old_state)
    old_weight = old_state[f"{key}.weight"]
    old_planes, new_planes = old_config.modality_channels, config.modality_channels
    weight = torch.zeros_like(grown.state_dict()[f"{key}.weight"])
    weight[:, : old_planes.start] = old_weight[:, : old_planes.start]
    weight[:, old_planes.start : old_planes.stop] = old_weight[:, old_planes]
    weight[:, new_planes.stop :] = old_weight[:, old_planes.stop :]
    if initial is not None:
        donor = old_weight[:, old_planes.start + old_config.modality_index(initial)]
        weight[:, old_planes.stop : new_planes.stop] = donor[:, None]
    state[f"{key}.weight"] = weight
    donor = None if initial is None else old_config.modality_index(initial)
    for name, module in grown.named_modules():
        if isinstance(module, ConditionalInstanceNorm):
            for table, identity in (("scale", 1.0), ("shift", 0.0)):
                old_rows = old_state[f"{name}.{table}"]
                new_rows = old_rows[donor : donor + 1] if donor is not None else torch.full_like(old_rows[:1], identity)
                state[f"{name}.{table}"] = torch.cat([old_rows, new_rows.expand(len(names), -1)])
    grown.load_state_dict(state, strict=True)
    grown.train(model.training)
    start = f"the stem weights of {initial!r}" if initial else "zero stem weights"
    logger.info("added modalities %s to %s (%s)", names, old_config.modalities, start)
    return grown


def grow_warp_guidance(model: PortraitGAN, **discriminator_fields: bool) -> PortraitGAN:
    """A warp-guided copy of a masked generator (``attention_mask``), doing what it did at step 0.

    A warp-guided G (``warp_guided``, see warp_guidance.py) reads one more input channel, the
    hallucination mask, after the modality planes; its stem weights start at zero. Where no landmark
    moves the warp is the identity and the mask is empty, so every output is unchanged; where they
    move, G starts from the warped face instead of the unwarped one. This let the previous (`lite`) demo checkpoint
    keep what the masked model learned (its modalities) when it becomes warp-guided.

    ``discriminator_fields``: ``conditional_discriminator`` / ``mouth_discriminator`` values for the
    copy's config (they shape only the discriminators, which this does not carry). Raises
    ``ValueError`` for a model without mask heads, one that is already warp-guided, or another field.
    """
    old_config = model.config
    if old_config.warp_guided or not old_config.attention_mask:
        raise ValueError("grow_warp_guidance needs a masked generator (attention_mask) that is not warp-guided yet")
    unknown = sorted(set(discriminator_fields) - {"conditional_discriminator", "mouth_discriminator"})
    if unknown:
        raise ValueError(f"only the discriminator fields may change alongside, not {unknown}")
    config = dataclasses.replace(old_config, warp_guided=True, **discriminator_fields)
    grown = PortraitGAN(config).to(device=model.device, dtype=model.dtype)
    key, _ = stem_convolution(grown)
    state = dict(model.state_dict())
    weight = torch.zeros_like(grown.state_dict()[f"{key}.weight"])
    old_weight = state[f"{key}.weight"]
    weight[:, : old_weight.shape[1]] = old_weight  # the hallucination mask is the last input channel
    state[f"{key}.weight"] = weight
    grown.load_state_dict(state, strict=True)
    grown.train(model.training)
    logger.info("made %s warp-guided (zero stem weights for the hallucination mask)", old_config)
    return grown


#: Model fields that shape only the discriminators: a run from a checkpoint (``model.init_from``) may
#: change them, since G is unaffected and D is trained again anyway.
DISCRIMINATOR_FIELDS = ("conditional_discriminator", "mouth_discriminator", "modality_discriminator")


def discriminator_input_names(config: PortraitGANConfig) -> list[str]:
    """What each input channel of a PatchGAN carries, in ``config.discriminator_in_channels`` order."""
    names = ["red", "green", "blue"]
    if config.conditional_discriminator:
        names.append("landmark_map")
    if config.modality_discriminator:
        names += [f"modality:{name}" for name in config.modalities]
    return names


def grow_discriminator_state(
    state: dict[str, torch.Tensor], old_config: PortraitGANConfig, new_config: PortraitGANConfig
) -> dict[str, torch.Tensor]:
    """Discriminator weights trained for ``old_config``, fitted to ``new_config``'s inputs.

    Each PatchGAN's first convolution keeps its weights for the input channels both configs have
    (matched by what they carry: RGB, landmark map, each modality's plane by name) and gets zero
    weights for the new ones (a landmark map, modality planes of a ``modality_discriminator``, an
    added modality), so every D judges exactly as before at step 0 and learns to use what it now
    sees. A PatchGAN the old config lacked (a newly enabled mouth D) starts freshly initialised.
    Every other tensor must match in shape. Raises ``ValueError`` naming the first tensor that does
    not fit (a different ``discriminator_channels``, ``discriminator_layers`` or ``num_levels``).
    """
    fresh = MultiLevelDiscriminator(new_config).state_dict()
    unknown = sorted(set(state) - set(fresh))
    if unknown:
        raise ValueError(f"discriminator tensors {unknown[:3]} are not in the new config's discriminators")
    old_names, new_names = discriminator_input_names(old_config), discriminator_input_names(new_config)
    grown: dict[str, torch.Tensor] = {}
    for key, target in fresh.items():
        old = state.get(key)
        if old is None:
            grown[key] = target
        elif (
            key.endswith("blocks.0.0.weight")
            and old_names != new_names
            and (old.shape[0], *old.shape[2:]) == (target.shape[0], *target.shape[2:])
            and (old.shape[1], target.shape[1]) == (len(old_names), len(new_names))
        ):
            weight = torch.zeros_like(target, dtype=old.dtype)
            for index, name in enumerate(new_names):
                if name in old_names:
                    weight[:, index] = old[:, old_names.index(name)]
            grown[key] = weight
        elif old.shape == target.shape:
            grown[key] = old
        else:
            raise ValueError(
                f"discriminator tensor {key} is {tuple(old.shape)}, the new config's is {tuple(target.shape)} "
                "(discriminator_channels, discriminator_layers and num_levels must stay the same)"
            )
    return grown


def with_discriminator_fields(model: PortraitGAN, **fields: bool) -> PortraitGAN:
    """A copy of ``model`` whose config has other :data:`DISCRIMINATOR_FIELDS` values; G is unchanged.

    Raises ``ValueError`` for a field that is not one of them (it would change G).
    """
    unknown = sorted(set(fields) - set(DISCRIMINATOR_FIELDS))
    if unknown:
        raise ValueError(f"only the discriminator fields {DISCRIMINATOR_FIELDS} may change, not {unknown}")
    copy = PortraitGAN(dataclasses.replace(model.config, **fields)).to(device=model.device, dtype=model.dtype)
    copy.load_state_dict(model.state_dict(), strict=True)
    copy.train(model.training)
    return copy
