"""The attribute vector c (Eq. 1): one builder, from modality indices or condition weights.

A partial change of modality conditions G on ``(1 - s) c_source + s c_target`` (the paper's
continuous conditioning, Sec. 3.2, applied to c); :func:`modality_change` measures how much of its
modality a sample changes, which the edit region, the conversion gate and the mask penalty use.
"""

from __future__ import annotations

import torch


def condition_vector(modality: torch.Tensor, num_modalities: int) -> torch.Tensor:
    """The attribute vector c of each sample, (B, n) float.

    ``modality``: (B,) indices (c is their one-hot vector, Eq. 1) or (B, n) weights, e.g. the convex
    combination ``(1 - s) c_source + s c_target`` of a partial modality change (the paper's continuous
    conditioning, Sec. 3.2, applied to c). Raises ``ValueError`` for weights of the wrong width.
    """
    if modality.is_floating_point() and modality.ndim == 2:
        if modality.shape[1] != num_modalities:
            raise ValueError(f"modality weights must be (B, {num_modalities}), got {tuple(modality.shape)}")
        return modality
    return torch.nn.functional.one_hot(modality.long(), num_modalities).float()


def modality_change(source: torch.Tensor, target: torch.Tensor, num_modalities: int) -> torch.Tensor:
    """How much of its modality each sample changes: half the L1 distance between the source and the
    target condition vectors, (B,) in [0, 1]: 0 for the same modality, 1 for another one, s for a
    mixture ``(1 - s) c_source + s c_target``. ``source``/``target``: (B,) indices or (B, n) weights."""
    vectors = [condition_vector(c, num_modalities).float() for c in (target, source)]
    return 0.5 * (vectors[0] - vectors[1]).abs().sum(dim=1)
