"""One training iteration of PortraitGAN (Fig. 1, Eq. 12), written for ``accelerate``.

Generator step: G translates both ways, (I_A, L_B, c_B) -> I^_B and (I_B, L_A, c_A) -> I^_A, and runs
both cycles back (Eq. 11); every output level goes to its discriminator D_i (Eq. 7) with the LSGAN
loss (Eq. 10); feature matching (Eq. 5) compares against real images drawn from a pool; identity
L1 (Eq. 3) and the VGG19 Gram texture loss (Eq. 8-9) complete Eq. 12. The discriminators are frozen
(``requires_grad`` off) during this step.

Discriminator step: each D_i separates real images (pooled to its level) from the *detached* fakes
of the same iteration (Eq. 6), in both directions.

Under DDP the generator step judges the fakes with the unwrapped discriminator: its parameters need
no gradient there, so there is nothing to synchronise, and the wrapped D is used only where it is
trained. Every generator parameter receives a gradient each step (the auxiliary RGB branches through
the adversarial and feature-matching terms), so DDP needs no unused-parameter search; see
:func:`needs_unused_parameter_search` for the one configuration where it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from portraitgan_hub.errors import PortraitGANError
from portraitgan_hub.objective import (
    ObjectiveConfig,
    RealSamplePool,
    condition_of,
    discriminator_objective,
    generator_objective,
    pooled_real,
    run_generator,
)
from portraitgan_hub.vgg import VGG19Features


class NonFiniteLossError(PortraitGANError):
    """A loss became NaN or infinite; the run stops before any optimizer step or checkpoint uses it."""


def lr_factor(step: int, steps: int, decay_start: int) -> float:
    """pix2pixHD's schedule: 1 until ``decay_start``, then linear to 0 at ``steps``."""
    if step < decay_start:
        return 1.0
    return max(0.0, 1.0 - (step - decay_start) / max(1, steps - decay_start))


def needs_unused_parameter_search(model_levels: int, objective: ObjectiveConfig) -> bool:
    """Whether some generator parameter can go without a gradient in a step (DDP must then search for it).

    The auxiliary branches (levels >= 1) only reach the loss through the discriminators, i.e. the
    adversarial and feature-matching terms. With one level there are no such branches.
    """
    return model_levels > 1 and not (objective.adversarial or objective.feature_matching)


class ModalityPools:
    """A :class:`RealSamplePool` per modality, so that feature matching compares a fake of modality c
    with real images of modality c (Eq. 5's I_B is "a real face randomly chosen from the pool").

    Each process keeps its own pools; they are saved in the checkpoint with their random generator.
    """

    def __init__(self, num_modalities: int, capacity: int, seed: int) -> None:
        self.pools = [RealSamplePool(capacity) for _ in range(num_modalities)]
        self.generator = torch.Generator().manual_seed(seed)

    def push_and_sample(self, images: torch.Tensor, modalities: torch.Tensor) -> torch.Tensor:
        """Add each real image to its modality's pool and draw one real image of that modality for it."""
        picks = [
            self.pools[int(modality)].push_and_sample(images[i : i + 1], self.generator)
            for i, modality in enumerate(modalities.tolist())
        ]
        return torch.cat(picks)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"pool_{i}": pool.state_dict()["images"] for i, pool in enumerate(self.pools)}
        state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for i, pool in enumerate(self.pools):
            pool.load_state_dict({"images": state[f"pool_{i}"]})
        self.generator.set_state(state["generator"])


@dataclass
class TrainingParts:
    """Everything one iteration touches (the networks and optimizers as returned by ``accelerator.prepare``)."""

    generator: nn.Module
    discriminator: nn.Module
    optimizer_g: Any
    optimizer_d: Any
    objective: ObjectiveConfig
    pools: ModalityPools
    vgg: VGG19Features | None = None
    max_grad_norm: float | None = None


def ensure_finite(accelerator: Any, terms: dict[str, torch.Tensor], network: str, step: int) -> None:
    """Raise :class:`NonFiniteLossError` on every process if any process has a NaN or infinite term."""
    bad = [name for name, value in terms.items() if not bool(torch.isfinite(value.detach()).all())]
    flag = torch.tensor(float(len(bad)), device=accelerator.device)
    if accelerator.num_processes > 1:
        flag = accelerator.reduce(flag, reduction="sum")
    if float(flag) > 0:
        values = ", ".join(f"{name}={float(value.detach()):.4g}" for name, value in terms.items())
        raise NonFiniteLossError(
            f"non-finite {network} loss at step {step + 1} ({', '.join(bad) or 'on another process'}; {values}). "
            "The run stops here and no checkpoint is written from this state: resume from the last "
            "checkpoint with a lower learning rate, mixed_precision 'no', or optim.max_grad_norm set."
        )


def _update(
    accelerator: Any,
    terms: dict[str, torch.Tensor],
    network: str,
    step: int,
    model: nn.Module,
    optimizer: Any,
    max_grad_norm: float | None,
) -> None:
    """Check the terms are finite, back-propagate their total, clip if asked, and step ``optimizer``."""
    ensure_finite(accelerator, terms, network, step)
    accelerator.backward(terms["total"])
    if max_grad_norm and accelerator.sync_gradients:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def training_step(
    accelerator: Any, batch: dict[str, torch.Tensor], parts: TrainingParts, step: int
) -> dict[str, float]:
    """One G update and one D update on ``batch``; returns every loss term (``g/...``, ``d/...``)."""
    objective = parts.objective
    judge = accelerator.unwrap_model(parts.discriminator)
    model_config = accelerator.unwrap_model(parts.generator).config
    warp_guided = model_config.warp_guided
    masks = bool(objective.mask_penalty) and model_config.predicts_mask
    hallucinations = bool(objective.hallucination_l1)

    # --- generator: Eq. 12 with the discriminators frozen -------------------------------------------
    judge.requires_grad_(False)
    with accelerator.autocast():
        outputs = run_generator(
            parts.generator,
            batch,
            cycle=bool(objective.cycle),
            warp_guided=warp_guided,
            masks=masks,
            hallucinations=hallucinations,
        )
        real = None
        if objective.feature_matching:
            # A conditional D judges a real image with its own landmark map (and modality): pool them together.
            pooled = {
                side: pooled_real(
                    judge, batch[f"image_{side}"], batch[f"landmarks_map_{side}"], condition_of(batch, side)
                )
                for side in ("a", "b")
            }
            real = (
                parts.pools.push_and_sample(pooled["b"], batch["modality_b"]),
                parts.pools.push_and_sample(pooled["a"], batch["modality_a"]),
            )
        g_terms = generator_objective(outputs, batch, judge, objective, parts.vgg, real)
    _update(accelerator, g_terms, "generator", step, parts.generator, parts.optimizer_g, parts.max_grad_norm)

    # --- discriminators: Eq. 6 on detached fakes ---------------------------------------------------
    judge.requires_grad_(True)
    with accelerator.autocast():
        d_terms = discriminator_objective(outputs, batch, parts.discriminator, objective)
    _update(accelerator, d_terms, "discriminator", step, parts.discriminator, parts.optimizer_d, parts.max_grad_norm)

    losses = {f"g/{name}": float(value.detach()) for name, value in g_terms.items()}
    losses.update({f"d/{name}": float(value.detach()) for name, value in d_terms.items()})
    return losses
