"""The full PortraitGAN objective (Eq. 12) over a bidirectional training tuple.

A batch is the paper's tuple (I_A, I_B, L_A, L_B, c_A, c_B) as a dict with keys ``image_a``,
``image_b`` (B,3,H,W in [-1,1]), ``landmarks_map_a``, ``landmarks_map_b`` (B,1,H,W in [0,1]) and
``modality_a``, ``modality_b`` (B,) indices. The generator is used in both directions and in both
cycles (Fig. 1); every output level goes to its discriminator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from portraitgan_hub.discriminator import MultiLevelDiscriminator
from portraitgan_hub.generator import Generator
from portraitgan_hub.losses import (
    cycle_loss,
    feature_matching_loss,
    identity_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    texture_loss,
)
from portraitgan_hub.vgg import VGG19Features


@dataclass
class ObjectiveConfig:
    """Weights of Eq. 12 (alpha, beta, gamma, eta = 2, 10, 5, 10 in the paper) and loss options.

    A weight of 0 switches its term off (and skips its computation): the paper's ablations.
    """

    cycle: float = 2.0  # alpha
    feature_matching: float = 10.0  # beta
    identity: float = 5.0  # gamma
    texture: float = 10.0  # eta
    adversarial: float = 1.0
    #: Images are resized to this side before VGG19 for the texture loss (None: full size). Gram
    #: matrices do not depend on image size (Eq. 8), so a smaller side mostly trades fine texture
    #: for speed on a CPU.
    texture_image_size: int | None = None
    #: Capacity of the queue of real samples that feature matching draws from (Eq. 5).
    real_pool_size: int = 50


class RealSamplePool:
    """Queue of recent real images; feature matching draws its real batch from here (Eq. 5).

    Like DQN's replay buffer: a random draw from recent reals lowers the variance of the real-side
    feature statistics. ``state_dict``/``load_state_dict`` make it part of a training checkpoint.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.images: list[torch.Tensor] = []

    def push_and_sample(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Add this batch of real images and return a batch of the same size drawn from the pool."""
        for image in images.detach():
            if len(self.images) < self.capacity:
                self.images.append(image.cpu())
            else:
                slot = int(torch.randint(self.capacity, (1,), generator=generator))
                self.images[slot] = image.cpu()
        picks = torch.randint(len(self.images), (images.shape[0],), generator=generator)
        return torch.stack([self.images[int(i)] for i in picks]).to(images.device, images.dtype)

    def state_dict(self) -> dict[str, torch.Tensor]:
        if not self.images:
            return {"images": torch.empty(0)}
        return {"images": torch.stack(self.images)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.images = list(state["images"].unbind(0)) if state["images"].numel() else []


@dataclass
class GeneratorOutputs:
    """Everything one bidirectional pass of G produces, reused by the D step (detached)."""

    fake_b: list[torch.Tensor]  # G(I_A, L_B, c_B) at every level
    fake_a: list[torch.Tensor]  # G(I_B, L_A, c_A) at every level
    reconstructed_a: torch.Tensor | None  # G(G(I_A, L_B, c_B), L_A, c_A)
    reconstructed_b: torch.Tensor | None  # G(G(I_B, L_A, c_A), L_B, c_B)


def run_generator(generator: Generator | nn.Module, batch: dict[str, torch.Tensor], cycle: bool) -> GeneratorOutputs:
    """Both translations A->B and B->A and, if ``cycle``, both cycles of Eq. 11."""
    fake_b = generator(batch["image_a"], batch["landmarks_map_b"], batch["modality_b"])
    fake_a = generator(batch["image_b"], batch["landmarks_map_a"], batch["modality_a"])
    reconstructed_a = reconstructed_b = None
    if cycle:
        reconstructed_a = generator(fake_b[0], batch["landmarks_map_a"], batch["modality_a"])[0]
        reconstructed_b = generator(fake_a[0], batch["landmarks_map_b"], batch["modality_b"])[0]
    return GeneratorOutputs(fake_b, fake_a, reconstructed_a, reconstructed_b)


def _for_texture(image: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or image.shape[-1] == size:
        return image
    return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def generator_objective(
    outputs: GeneratorOutputs,
    batch: dict[str, torch.Tensor],
    discriminator: MultiLevelDiscriminator | nn.Module,
    config: ObjectiveConfig,
    vgg: VGG19Features | None = None,
    real_for_matching: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Eq. 12 for the generator: every term on its own and their weighted ``total``.

    ``real_for_matching`` holds the real batches (B side, A side) drawn from the
    :class:`RealSamplePool` for feature matching; without it the batch's own reals are used.
    The discriminator's parameters should have ``requires_grad`` off during this step.
    """
    d = discriminator.module if hasattr(discriminator, "module") else discriminator
    real_b, real_a = real_for_matching or (batch["image_b"], batch["image_a"])
    fake_b_judged = discriminator(outputs.fake_b)
    fake_a_judged = discriminator(outputs.fake_a)
    terms: dict[str, torch.Tensor] = {
        "gan_a_to_b": lsgan_generator_loss(fake_b_judged),
        "gan_b_to_a": lsgan_generator_loss(fake_a_judged),
    }
    if config.feature_matching:
        with torch.no_grad():
            real_b_judged = discriminator(d.real_pyramid(real_b))
            real_a_judged = discriminator(d.real_pyramid(real_a))
        terms["feature_matching"] = feature_matching_loss(real_b_judged, fake_b_judged) + feature_matching_loss(
            real_a_judged, fake_a_judged
        )
    if config.identity:
        terms["identity"] = identity_loss(outputs.fake_b[0], batch["image_b"]) + identity_loss(
            outputs.fake_a[0], batch["image_a"]
        )
    if config.cycle:
        if outputs.reconstructed_a is None or outputs.reconstructed_b is None:
            raise ValueError("the cycle term needs run_generator(..., cycle=True)")
        terms["cycle"] = cycle_loss(outputs.reconstructed_a, batch["image_a"]) + cycle_loss(
            outputs.reconstructed_b, batch["image_b"]
        )
    if config.texture:
        if vgg is None:
            raise ValueError("the texture term (Eq. 8-9) needs a VGG19; pass vgg= or set texture weight 0")
        size = config.texture_image_size
        terms["texture"] = texture_loss(
            vgg, _for_texture(outputs.fake_b[0], size), _for_texture(batch["image_b"], size)
        ) + texture_loss(vgg, _for_texture(outputs.fake_a[0], size), _for_texture(batch["image_a"], size))
    weights = {
        "gan_a_to_b": config.adversarial,
        "gan_b_to_a": config.adversarial,
        "feature_matching": config.feature_matching,
        "identity": config.identity,
        "cycle": config.cycle,
        "texture": config.texture,
    }
    terms["total"] = sum(weights[name] * value for name, value in terms.items())
    return terms


def discriminator_objective(
    outputs: GeneratorOutputs,
    batch: dict[str, torch.Tensor],
    discriminator: MultiLevelDiscriminator | nn.Module,
) -> dict[str, torch.Tensor]:
    """Eq. 6 for both directions, on detached fakes; returns the terms and their sum ``total``."""
    d = discriminator.module if hasattr(discriminator, "module") else discriminator
    terms = {
        "d_a_to_b": lsgan_discriminator_loss(
            discriminator(d.real_pyramid(batch["image_b"])),
            discriminator([level.detach() for level in outputs.fake_b]),
        ),
        "d_b_to_a": lsgan_discriminator_loss(
            discriminator(d.real_pyramid(batch["image_a"])),
            discriminator([level.detach() for level in outputs.fake_a]),
        ),
    }
    terms["total"] = terms["d_a_to_b"] + terms["d_b_to_a"]
    return terms
