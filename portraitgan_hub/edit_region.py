"""Where a warp-guided G may draw: the conversion gate and the edit region (not in the paper).

A warp-guided G (:mod:`portraitgan_hub.warp_guidance`) blends ``A * warped + (1 - A) * C``. Two
limits on its blend mask A, each a :class:`~portraitgan_hub.config.PortraitGANConfig` option:

* **Conversion gate** (``conversion_gate``): ``A = sigmoid(a) * (1 - H) * (1 - dc)``, with H the
  hallucination mask and ``dc = 1/2 ||c_target - c_source||_1``
  (:func:`portraitgan_hub.condition.modality_change`): 0 for an expression edit (copying the warped
  photo is allowed), 1 for a full modality change (G draws every pixel: copying the photo cannot pay
  for a cartoon), s for a strength-s mixture. GANimation's mask (Pumarola et al. 2018) has no such
  gate: its G may copy the input wherever copying is cheap.
* **Edit region** (``edit_region``): in an expression edit G's colour may replace the warped photo
  only inside a feathered region R around what the edit changes (:func:`edit_region`): the
  hallucination regions and the features that move non-rigidly (mouth, eyes, brows and the creases
  beside them). Outside it A = 1 exactly, so an unfamiliar photo (another studio's light, a dim
  phone selfie) can at worst get a poor mouth, never a re-drawn face. For a modality change the
  region grows to the whole image with dc: ``A = 1 - R' (1 - A_gated)``, ``R' = R + (1 - R) dc``.

A rigid move (head roll, a shift) is carried by the warp alone: the region is found from each
point's move *after* the best similarity transform between the two point sets is taken out.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from portraitgan_hub.faces.landmarks import LEFT_EYE, OUTER_LIPS, RIGHT_EYE
from portraitgan_hub.warp_guidance import polygon_mask

#: A point is moved by the edit if its non-rigid move exceeds this fraction of the image side (0.8 px at 256).
MOVED_THRESHOLD = 0.003
#: How far the region reaches around the outer lips once the mouth moves, as a fraction of the side:
#: far enough for the creases beside the mouth and the chin (20 px at 256).
MOUTH_MARGIN = 0.08
#: How far it reaches around every other moved point and a moved eye (13 px at 256).
FEATURE_MARGIN = 0.05
#: Width of the feather ramp from R = 1 to R = 0, as a fraction of the side (8 px at 256).
FEATHER = 0.03
#: The region is computed on a grid of about this many pixels on the long side, then resized.
REGION_GRID = 64


def _non_rigid_moves(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """|target - S(source)| per point, (B, 68), with S the least-squares similarity source -> target."""
    src_mean, dst_mean = source.mean(dim=1, keepdim=True), target.mean(dim=1, keepdim=True)
    src, dst = source - src_mean, target - dst_mean
    norm = (src**2).sum(dim=(1, 2)).clamp_min(1e-12)
    a = (src * dst).sum(dim=(1, 2)) / norm  # s cos(theta)
    b = (src[..., 0] * dst[..., 1] - src[..., 1] * dst[..., 0]).sum(dim=1) / norm  # s sin(theta)
    rotated = torch.stack(
        [a[:, None] * src[..., 0] - b[:, None] * src[..., 1], b[:, None] * src[..., 0] + a[:, None] * src[..., 1]], -1
    )
    return (dst - rotated).norm(dim=-1)


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Square dilation by ``radius`` pixels, separably (a row pass, then a column pass)."""
    if radius <= 0:
        return mask
    mask = F.max_pool2d(mask, (1, 2 * radius + 1), stride=1, padding=(0, radius))
    return F.max_pool2d(mask, (2 * radius + 1, 1), stride=1, padding=(radius, 0))


def edit_region(
    source_landmarks: torch.Tensor,
    target_landmarks: torch.Tensor,
    height: int,
    width: int,
    hallucination: torch.Tensor | None = None,
    features: bool = True,
    margin: float = 1.0,
) -> torch.Tensor:
    """The feathered edit region R, (B, 1, H, W) in [0, 1]: 1 where G's colour may replace the warped
    photo in an expression edit, exactly 0 beyond the feather.

    ``source_landmarks``/``target_landmarks``: (B, 68, 2) pixel-index points of an H x W image;
    ``hallucination``: (B, 1, H, W) in {0, 1} (:func:`~portraitgan_hub.warp_guidance.hallucination_mask`),
    always inside R. R covers, at the target positions: the outer lips' polygon widened by
    :data:`MOUTH_MARGIN` once any mouth point moves; a moved eye's polygon and every moved point,
    widened by :data:`FEATURE_MARGIN`; then a :data:`FEATHER` ramp outwards. ``margin`` (>= 0)
    multiplies both margins (``PortraitGANConfig.edit_region_margin``; 1 as trained), rounded to
    whole cells of the region's grid (:data:`REGION_GRID`), so a change under about 0.1 may change
    nothing. Raises ValueError for a negative or non-finite ``margin``. No moved point
    and no hallucination gives R = 0 everywhere (a no-op or a pure head roll is the warp alone).
    """
    if not (math.isfinite(margin) and margin >= 0):  # PortraitGANConfig checks it too, but a config can be reassigned
        raise ValueError(f"edit_region_margin must be a finite number >= 0, got {margin!r}")
    source = source_landmarks.detach().float()
    target = target_landmarks.detach().float()
    batch = target.shape[0]
    moved = _non_rigid_moves(source, target) > MOVED_THRESHOLD * max(height, width)  # (B, 68)
    if not features:
        moved = torch.zeros_like(moved)
    # The region is smooth: it is drawn on a grid of REGION_GRID pixels on the long side and resized
    # bilinearly (zeros stay exactly zero), 40x cheaper than at 256 px.
    factor = max(1, max(height, width) // REGION_GRID)
    rows_low, cols_low = -(-height // factor), -(-width // factor)
    side = max(rows_low, cols_low)
    points = (target + 0.5) / factor - 0.5
    lips = list(OUTER_LIPS)
    mouth_moved = moved[:, lips].any(dim=1).float()[:, None, None, None]
    mouth = polygon_mask(points[:, lips], rows_low, cols_low) * mouth_moved
    rest = target.new_zeros(batch, 1, rows_low, cols_low)
    for eye in (RIGHT_EYE, LEFT_EYE):
        eye_moved = moved[:, list(eye)].any(dim=1).float()[:, None, None, None]
        rest = torch.maximum(rest, polygon_mask(points[:, list(eye)], rows_low, cols_low) * eye_moved)
    columns = points[..., 0].round().clamp(0, cols_low - 1).long()
    rows = points[..., 1].round().clamp(0, rows_low - 1).long()
    rest.view(batch, -1).scatter_reduce_(1, rows * cols_low + columns, moved.float(), reduce="amax")
    feather = max(1, round(FEATHER * side / 2))  # two box blurs of this radius make the ramp
    hard = torch.maximum(
        _dilate(mouth, round(margin * MOUTH_MARGIN * side) + 2 * feather),
        _dilate(rest, round(margin * FEATURE_MARGIN * side) + 2 * feather),
    )
    if hallucination is not None:  # alone (features=False) the ramp straddles its edge: no halo
        hole = F.adaptive_max_pool2d(hallucination.float(), (rows_low, cols_low))
        hard = torch.maximum(hard, _dilate(hole, 2 * feather if features else feather))
    for _ in range(2):  # a piecewise-quadratic ramp, flat at 1 inside and exactly 0 outside (separable)
        hard = F.avg_pool2d(hard, (1, 2 * feather + 1), stride=1, padding=(0, feather), count_include_pad=False)
        hard = F.avg_pool2d(hard, (2 * feather + 1, 1), stride=1, padding=(feather, 0), count_include_pad=False)
    if factor == 1:
        return hard
    return F.interpolate(hard, size=(height, width), mode="bilinear", align_corners=False).clamp(0, 1)


def gate_mask(mask: torch.Tensor, change: torch.Tensor | None, region: torch.Tensor | None) -> torch.Tensor:
    """Apply the conversion gate and the edit region to a blend mask A (B, 1, h, w) in [0, 1].

    ``change``: (B,) dc of :func:`portraitgan_hub.condition.modality_change`, or None (no gate).
    ``region``: R (B, 1, H, W) of :func:`edit_region` at the output's size (area-resized to
    ``mask``'s), or None (no region limit).
    Returns ``1 - R' (1 - A (1 - dc))`` with ``R' = R + (1 - R) dc``.
    """
    if change is not None:
        mask = mask * (1 - change.to(mask.dtype))[:, None, None, None]
    if region is None:
        return mask
    if region.shape[-2:] != mask.shape[-2:]:
        region = F.interpolate(region, size=mask.shape[-2:], mode="area")
    region = region.to(mask.dtype)
    if change is not None:
        dc = change.to(mask.dtype)[:, None, None, None]
        region = region + (1 - region) * dc
    return 1 - region * (1 - mask)


def limit_to_edit_region(
    mask: torch.Tensor,
    source_landmarks: torch.Tensor,
    target_landmarks: torch.Tensor,
    change: torch.Tensor,
    hallucination: torch.Tensor | None = None,
) -> torch.Tensor:
    """A limit on G's colour at edit time, for a warp-guided G trained without the edit region (the
    ``lite`` demo): ``1 - R' (1 - A)`` with ``R' = R + (1 - R) dc`` and R the feathered hallucination
    alone (``edit_region(..., features=False)``); no conversion gate, since such a G was trained to
    copy part of the photo in a conversion too.

    ``mask`` (B, 1, H, W) in [0, 1], G's own A; landmarks (B, 68, 2) pixel-index points of H x W;
    ``change`` (B,) dc; ``hallucination`` (B, 1, H, W) or None. In an expression edit (dc = 0) the
    result is exactly 1 outside the opened mouth's feathered region, so the warped photo is all that
    shows there: on a photo unlike its training light, such a G's colour could otherwise replace
    the whole face. The features' region is too wide for a G trained without it: it covers most of
    the face in a smile.
    """
    height, width = mask.shape[-2:]
    region = edit_region(source_landmarks, target_landmarks, height, width, hallucination, features=False)
    region = region.to(mask)
    dc = change.to(mask)[:, None, None, None]
    return gate_mask(mask, None, region + (1 - region) * dc)
