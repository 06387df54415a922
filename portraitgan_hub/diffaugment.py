"""Differentiable augmentation of every discriminator input, real and fake (not in the paper).

DiffAugment (Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training", NeurIPS 2020)
applies the same kinds of random, differentiable transforms to real and generated images before D
sees them, so that D cannot memorise a small training set (the London set has 80 people) while G
still receives gradients through the transforms. The three policies follow the paper's
``color,translation,cutout``: brightness, saturation and contrast jitter; a shift of up to 1/8 of the
side with zero fill; one zero square of half the side. This is our own implementation of the paper's
description, written for inputs that carry extra condition channels (the landmark map of a
conditional D): colour acts on the first three channels only, the geometric transforms on all.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _colour(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    rgb, rest = x[:, :3], x[:, 3:]
    batch = x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        draw = torch.rand(batch, 1, 1, 1, generator=generator)
        return (low + (high - low) * draw).to(x.device, x.dtype)

    rgb = rgb + uniform(-0.5, 0.5)  # brightness, in [-1, 1] units (DiffAugment's +-0.5 on [-1, 1] images)
    mean = rgb.mean(dim=1, keepdim=True)
    rgb = (rgb - mean) * uniform(0.0, 2.0) + mean  # saturation
    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    rgb = (rgb - mean) * uniform(0.5, 1.5) + mean  # contrast
    return torch.cat([rgb, rest], dim=1)


def _translation(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    batch, _, height, width = x.shape
    limit = torch.tensor([width, height], dtype=torch.float32) * TRANSLATION_RATIO
    shift = ((torch.rand(batch, 2, generator=generator) * 2 - 1) * limit).round()  # whole pixels
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = -shift[:, 0] * 2 / width
    theta[:, 1, 2] = -shift[:, 1] * 2 / height
    with torch.autocast(device_type=x.device.type, enabled=False):  # a bf16 grid skips columns
        grid = F.affine_grid(theta, list(x.shape), align_corners=False).to(x.device, torch.float32)
        shifted = F.grid_sample(x.float(), grid, "nearest", "zeros", align_corners=False)
    return shifted.to(x.dtype)


def _cutout(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    batch, _, height, width = x.shape
    cut_h, cut_w = int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5)
    top = torch.randint(0, height - cut_h + 1, (batch,), generator=generator)
    left = torch.randint(0, width - cut_w + 1, (batch,), generator=generator)
    rows = torch.arange(height)[None, :, None]
    cols = torch.arange(width)[None, None, :]
    inside = (rows >= top[:, None, None]) & (rows < top[:, None, None] + cut_h)
    inside = inside & (cols >= left[:, None, None]) & (cols < left[:, None, None] + cut_w)
    return x * (~inside)[:, None].to(x.device, x.dtype)


_TRANSFORMS = {"color": _colour, "translation": _translation, "cutout": _cutout}


def diff_augment(
    x: torch.Tensor, policy: Sequence[str] = POLICIES, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``x`` (B, C >= 3, H, W), RGB first in [-1, 1], through each transform of ``policy`` in order.

    Each sample draws its own parameters (from ``generator``, a CPU generator, if given). Every
    transform is differentiable in ``x``. Raises ``ValueError`` for an unknown policy name.
    """
    unknown = sorted(set(policy) - set(_TRANSFORMS))
    if unknown:
        raise ValueError(f"unknown DiffAugment policies {unknown}; choose from {list(POLICIES)}")
    for name in policy:
        x = _TRANSFORMS[name](x, generator)
    return x
