"""The full PortraitGAN objective (Eq. 12) over a bidirectional training tuple.

A batch is the paper's tuple (I_A, I_B, L_A, L_B, c_A, c_B) as a dict with keys ``image_a``,
``image_b`` (B,3,H,W in [-1,1]), ``landmarks_map_a``, ``landmarks_map_b`` (B,1,H,W in [0,1]) and
``modality_a``, ``modality_b`` (B,) indices, plus the points ``landmarks_a``, ``landmarks_b``
(B,68,2 pixels) that a warp-guided G and the mouth discriminator use. The generator is used in both
directions and in both cycles (Fig. 1); every output level goes to its discriminator.

Additions that are not in the paper, each off in its defaults: the conditional, mouth and
modality-conditional discriminators (discriminator.py), DiffAugment on every D input
(diffaugment.py), a cycle term that leaves out the warp-guided G's hallucination region
(losses.cycle_loss), Eq. 3 again over that region alone (losses.hallucination_loss), GANimation's
mask penalty for a masked G (losses.mask_penalty), and two terms on the samples that change
modality: an L1 on the target's outline pixels (losses.outline_loss) and an L1 between Sobel
gradients (losses.gradient_loss).
Modality mixtures (train/dataset.py) may replace c_A, c_B by (B, n) weights, ``condition_a/b``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from portraitgan_hub.condition import modality_change
from portraitgan_hub.diffaugment import diff_augment
from portraitgan_hub.discriminator import Augment, MultiLevelDiscriminator
from portraitgan_hub.generator import Generator, modality_planes
from portraitgan_hub.losses import (
    cycle_loss,
    feature_matching_loss,
    gradient_loss,
    hallucination_loss,
    identity_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    mask_penalty,
    outline_loss,
    texture_loss,
)
from portraitgan_hub.vgg import VGG19Features
from portraitgan_hub.warp_guidance import landmark_hallucination


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
    #: Weight of the mouth PatchGAN's LSGAN term (used when the model has ``mouth_discriminator``).
    mouth_adversarial: float = 1.0
    #: Weight of the mask penalty, the mean of the blend mask A (1 = copy the input) of both
    #: translations. GANimation (Pumarola et al. 2018, Eq. 4) adds it because A "can easily saturate
    #: to 1", G then copying everything: seen here, a warp-guided G stopped converting modalities.
    #: 0 (the paper has no mask) leaves the term out.
    mask_penalty: float = 0.0
    #: Weight of the outline L1 (``losses.outline_loss``) on the samples that change modality, each
    #: weighted by how much: Eq. 3's L1 over the target's outline pixels alone, normalised by their
    #: area. Not in the paper: a cartoon's outlines are about 5 % of its pixels but half of the L1
    #: between the photo and the cartoon, so Eq. 3 over the whole image barely asks for them.
    outline_l1: float = 0.0
    #: Weight of the Sobel-gradient L1 (``losses.gradient_loss``) on the samples that change modality:
    #: a sketch's strokes and a cartoon's edges are in its gradients, which a blurred C lacks.
    gradient_l1: float = 0.0
    #: DiffAugment policies applied to every discriminator input, real and fake: any of ``color``,
    #: ``translation``, ``cutout`` (Zhao et al. 2020). Empty in the paper.
    diff_augment: list[str] = field(default_factory=list)
    #: Leave the warp-guided G's hallucination region out of the cycle term (no effect otherwise).
    cycle_excludes_hallucination: bool = True
    #: Weight of Eq. 3's L1 over the warp-guided G's hallucination region alone, normalised by its
    #: area (``losses.hallucination_loss``; no effect without ``warp_guided``). Not in the paper.
    hallucination_l1: float = 0.0

    def augmentation(self) -> Augment | None:
        """The augmentation every D input goes through, or None."""
        if not self.diff_augment:
            return None
        policy = tuple(self.diff_augment)
        diff_augment(torch.zeros(1, 3, 8, 8), policy)  # raises ValueError for an unknown policy now
        return lambda x: diff_augment(x, policy)


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
    #: Hallucination masks (warp-guided G only) of the translations to A and to B: what G draws itself
    #: in ``fake_a``/``fake_b``, and what the cycle's ways back to A and B leave out (the same warps).
    hallucination_a: torch.Tensor | None = None
    hallucination_b: torch.Tensor | None = None
    #: Level-0 blend masks A of the two translations (only when asked for, for the mask penalty).
    mask_b: torch.Tensor | None = None
    mask_a: torch.Tensor | None = None


def run_generator(
    generator: Generator | nn.Module,
    batch: dict[str, torch.Tensor],
    cycle: bool,
    warp_guided: bool = False,
    masks: bool = False,
    hallucinations: bool = False,
) -> GeneratorOutputs:
    """Both translations A->B and B->A and, if ``cycle``, both cycles of Eq. 11.

    ``warp_guided``: pass the batch's landmark points to G (source, then target) and, with ``cycle``
    or ``hallucinations`` (for ``objective.hallucination_l1``), compute the hallucination masks of the
    translations (those of the ways back too). ``masks``: also keep the translations' blend masks A
    (for the mask penalty). Every pass also gets its input's modality (``source_modality``), which
    a conversion-gated G needs.
    """
    points_a = points_b = None
    if warp_guided:
        points_a, points_b = batch["landmarks_a"], batch["landmarks_b"]
    # c_A, c_B: the one-hot vectors, or (modality mixtures, train/dataset.py) their weights.
    c_a, c_b = condition_of(batch, "a"), condition_of(batch, "b")
    fake_b, mask_b = generator(
        batch["image_a"], batch["landmarks_map_b"], c_b, points_a, points_b, return_mask=True, source_modality=c_a
    )
    fake_a, mask_a = generator(
        batch["image_b"], batch["landmarks_map_a"], c_a, points_b, points_a, return_mask=True, source_modality=c_b
    )
    if not masks:
        mask_b = mask_a = None
    reconstructed_a = reconstructed_b = hallucination_a = hallucination_b = None
    if cycle:
        reconstructed_a = generator(fake_b[0], batch["landmarks_map_a"], c_a, points_b, points_a, source_modality=c_b)[
            0
        ]
        reconstructed_b = generator(fake_a[0], batch["landmarks_map_b"], c_b, points_a, points_b, source_modality=c_a)[
            0
        ]
    if warp_guided and (cycle or hallucinations):
        height, width = batch["image_a"].shape[-2:]
        with torch.no_grad():
            hallucination_a = landmark_hallucination(points_b, points_a, height, width)
            hallucination_b = landmark_hallucination(points_a, points_b, height, width)
    return GeneratorOutputs(
        fake_b,
        fake_a,
        reconstructed_a,
        reconstructed_b,
        hallucination_a,
        hallucination_b,
        mask_b,
        mask_a,
    )


def _real_only(region: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``region`` (B, 1, H, W) emptied for the samples whose side A is not a real picture.

    ``batch["real_a"]`` (B,) bool, from train/dataset.py (absent: every side A is real). Side A of a
    synthetic pair is the warp's picture: its opened mouth holds stretched lips, not a mouth, so
    Eq. 3 over that region would teach G to draw the warp there (docs/model.md, "Opened-mouth pairs").
    """
    real = batch.get("real_a")
    if real is None:
        return region
    return region * real.to(region.dtype).view(-1, 1, 1, 1)


def _for_texture(image: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or image.shape[-1] == size:
        return image
    return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def condition_of(batch: dict[str, torch.Tensor], side: str) -> torch.Tensor:
    """The target modality c of one side of ``batch`` (``"a"`` or ``"b"``): the one-hot indices, or
    (modality mixtures, train/dataset.py) the (B, n) weights of its convex combination."""
    return batch.get(f"condition_{side}", batch[f"modality_{side}"])


def pooled_real(
    d: MultiLevelDiscriminator, image: torch.Tensor, landmark_map: torch.Tensor, modality: torch.Tensor
) -> torch.Tensor:
    """One real sample as the :class:`RealSamplePool` keeps it: RGB, then what D is conditioned on
    (the landmark map for a conditional D, the modality planes for a modality D), as channels."""
    parts = [image]
    if d.conditional:
        parts.append(landmark_map.to(image.dtype))
    if d.sees_modality:
        parts.append(modality_planes(modality, d.num_modalities, *image.shape[-2:]).to(image.dtype))
    return parts[0] if len(parts) == 1 else torch.cat(parts, 1)


def _split_pooled(
    d: MultiLevelDiscriminator, real: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """The inverse of :func:`pooled_real`: RGB, landmark map or None, (B, n) modality weights or None."""
    landmark_map = real[:, 3:4] if d.conditional else None
    modality = real[:, real.shape[1] - d.num_modalities :].mean(dim=(2, 3)) if d.sees_modality else None
    return real[:, :3], landmark_map, modality


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
    :class:`RealSamplePool` for feature matching (with their landmark map as a fourth channel for a
    conditional D); without it the batch's own reals are used.
    The discriminator's parameters should have ``requires_grad`` off during this step.
    """
    d = discriminator.module if hasattr(discriminator, "module") else discriminator
    augment = config.augmentation()
    levels = len(d.discriminators)
    map_a, map_b = batch["landmarks_map_a"], batch["landmarks_map_b"]
    mouth_a, mouth_b = _mouth_landmarks(d, config, batch)
    c_a, c_b = condition_of(batch, "a"), condition_of(batch, "b")
    fake_b_judged = discriminator(outputs.fake_b, map_b, augment, mouth_b, c_b)
    fake_a_judged = discriminator(outputs.fake_a, map_a, augment, mouth_a, c_a)
    terms: dict[str, torch.Tensor] = {
        "gan_a_to_b": lsgan_generator_loss(fake_b_judged[:levels]),
        "gan_b_to_a": lsgan_generator_loss(fake_a_judged[:levels]),
    }
    if mouth_b is not None:
        terms["gan_mouth"] = lsgan_generator_loss(fake_b_judged[levels:]) + lsgan_generator_loss(fake_a_judged[levels:])
    if config.feature_matching:
        real_b, real_a = real_for_matching or (
            pooled_real(d, batch["image_b"], map_b, c_b),
            pooled_real(d, batch["image_a"], map_a, c_a),
        )
        with torch.no_grad():
            image_b, pooled_map_b, pooled_c_b = _split_pooled(d, real_b)
            image_a, pooled_map_a, pooled_c_a = _split_pooled(d, real_a)
            real_b_judged = discriminator(d.real_pyramid(image_b), pooled_map_b, augment, None, pooled_c_b)
            real_a_judged = discriminator(d.real_pyramid(image_a), pooled_map_a, augment, None, pooled_c_a)
        terms["feature_matching"] = feature_matching_loss(
            real_b_judged, fake_b_judged[:levels]
        ) + feature_matching_loss(real_a_judged, fake_a_judged[:levels])
    if config.identity:
        terms["identity"] = identity_loss(outputs.fake_b[0], batch["image_b"]) + identity_loss(
            outputs.fake_a[0], batch["image_a"]
        )
    if config.hallucination_l1 and outputs.hallucination_a is not None and outputs.hallucination_b is not None:
        # None: not a warp-guided G, which draws no region of its own (for a warp-guided one,
        # run_generator computes them with cycle=True or hallucinations=True).
        terms["hallucination"] = hallucination_loss(
            outputs.fake_b[0], batch["image_b"], outputs.hallucination_b
        ) + hallucination_loss(outputs.fake_a[0], batch["image_a"], _real_only(outputs.hallucination_a, batch))
    if config.cycle:
        if outputs.reconstructed_a is None or outputs.reconstructed_b is None:
            raise ValueError("the cycle term needs run_generator(..., cycle=True)")
        excluded_a, excluded_b = outputs.hallucination_a, outputs.hallucination_b
        if not config.cycle_excludes_hallucination:
            excluded_a = excluded_b = None
        terms["cycle"] = cycle_loss(outputs.reconstructed_a, batch["image_a"], excluded_a) + cycle_loss(
            outputs.reconstructed_b, batch["image_b"], excluded_b
        )
    if config.texture:
        if vgg is None:
            raise ValueError("the texture term (Eq. 8-9) needs a VGG19; pass vgg= or set texture weight 0")
        size = config.texture_image_size
        terms["texture"] = texture_loss(
            vgg, _for_texture(outputs.fake_b[0], size), _for_texture(batch["image_b"], size)
        ) + texture_loss(vgg, _for_texture(outputs.fake_a[0], size), _for_texture(batch["image_a"], size))
    if config.mask_penalty and outputs.mask_b is not None and outputs.mask_a is not None:
        terms["mask"] = mask_penalty(outputs.mask_b) + mask_penalty(outputs.mask_a)
    if config.outline_l1 or config.gradient_l1:
        change = modality_change(c_a, c_b, d.num_modalities)  # the same both ways
        pairs = ((outputs.fake_b[0], batch["image_b"]), (outputs.fake_a[0], batch["image_a"]))
        if config.outline_l1:
            terms["outline"] = sum(outline_loss(fake, real, change) for fake, real in pairs)
        if config.gradient_l1:
            terms["gradient"] = sum(gradient_loss(fake, real, change) for fake, real in pairs)
    weights = {
        "mask": config.mask_penalty,
        "outline": config.outline_l1,
        "gradient": config.gradient_l1,
        "gan_a_to_b": config.adversarial,
        "gan_b_to_a": config.adversarial,
        "gan_mouth": config.mouth_adversarial,
        "feature_matching": config.feature_matching,
        "identity": config.identity,
        "hallucination": config.hallucination_l1,
        "cycle": config.cycle,
        "texture": config.texture,
    }
    terms["total"] = sum(weights[name] * value for name, value in terms.items())
    return terms


def discriminator_objective(
    outputs: GeneratorOutputs,
    batch: dict[str, torch.Tensor],
    discriminator: MultiLevelDiscriminator | nn.Module,
    config: ObjectiveConfig | None = None,
) -> dict[str, torch.Tensor]:
    """Eq. 6 for both directions, on detached fakes; returns the terms and their sum ``total``.

    With a mouth PatchGAN, ``d_mouth`` is its Eq. 6 on the mouth crops of both directions.
    """
    config = config or ObjectiveConfig()
    d = discriminator.module if hasattr(discriminator, "module") else discriminator
    augment = config.augmentation()
    levels = len(d.discriminators)
    # The mouth PatchGAN, if it exists, is always trained (even when G's weight on it is 0), so that
    # every D parameter gets a gradient each step and DDP needs no unused-parameter search.
    mouth = dict(zip(("a", "b"), _mouth_landmarks(d, None, batch)))
    terms: dict[str, torch.Tensor] = {}
    for name, side, fake in (("d_a_to_b", "b", outputs.fake_b), ("d_b_to_a", "a", outputs.fake_a)):
        landmark_map, modality = batch[f"landmarks_map_{side}"], condition_of(batch, side)
        real = discriminator(d.real_pyramid(batch[f"image_{side}"]), landmark_map, augment, mouth[side], modality)
        judged = discriminator([level.detach() for level in fake], landmark_map, augment, mouth[side], modality)
        terms[name] = lsgan_discriminator_loss(real[:levels], judged[:levels])
        if mouth[side] is not None:
            terms["d_mouth"] = terms.get("d_mouth", 0.0) + lsgan_discriminator_loss(real[levels:], judged[levels:])
    terms["total"] = sum(terms.values())
    return terms


def _mouth_landmarks(
    d: MultiLevelDiscriminator, config: ObjectiveConfig | None, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The batch's points for the mouth PatchGAN (A side, B side), or None when it is not used
    (no mouth PatchGAN, or, given an objective ``config``, a zero weight on it)."""
    if d.mouth is None or (config is not None and not config.mouth_adversarial):
        return None, None
    return batch["landmarks_a"], batch["landmarks_b"]
