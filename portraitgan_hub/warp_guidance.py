"""What the warp-guided generator adds around G (not in the paper): the warp and the hallucination mask.

With ``PortraitGANConfig.warp_guided`` the generator first warps its input from the source landmarks
to the target landmarks (:mod:`portraitgan_hub.thin_plate_spline`), then draws only what a warp
cannot move there. The idea follows warp-then-refine face reenactment (FOMM, Siarohin et al. 2019;
LivePortrait, Guo et al. 2024) and GANimation's attention mask (Pumarola et al. 2018).

The *hallucination mask* marks where the warp has nothing to move: the target's inner mouth
(points 60-67) minus the source's inner mouth as the warp carries it there, dilated. Opening a closed
mouth stretches the lips over that region, so G must draw teeth and mouth interior there itself;
the generator forces its blend mask A to 0 inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from portraitgan_hub.faces.landmarks import INNER_LIPS
from portraitgan_hub.thin_plate_spline import landmark_displacement, sampling_grid, warp_image

#: Dilation of the hallucination mask, as a fraction of the image side (3 px at 256).
HALLUCINATION_DILATION = 0.012
#: Slivers thinner than about twice this (fraction of the side; 1 px at 256) are not hallucinated: a
#: slight smile parts the lips by a pixel, which the warp renders well.
HALLUCINATION_MIN_HALF_WIDTH = 0.004
#: Inner-lip point pairs (upper, lower) facing each other across the mouth.
_INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))


def polygon_mask(polygon: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(B, 1, H, W)`` float mask, 1 at pixel centres inside ``polygon`` (B, P, 2 pixel-index points).

    Even-odd rule, vectorised over the P edges; not differentiable (a mask, not a loss).
    """
    dtype = polygon.dtype if polygon.is_floating_point() else torch.float32
    ys = torch.arange(height, dtype=dtype, device=polygon.device)[:, None]
    xs = torch.arange(width, dtype=dtype, device=polygon.device)[None, :]
    start = polygon.detach().to(dtype)
    end = start.roll(-1, dims=1)
    x0, y0 = start[..., 0, None, None], start[..., 1, None, None]  # (B, P, 1, 1)
    x1, y1 = end[..., 0, None, None], end[..., 1, None, None]
    straddles = (y0 > ys) != (y1 > ys)  # (B, P, H, 1)
    crossing_x = x0 + (ys - y0) * (x1 - x0) / torch.where(y1 == y0, torch.ones_like(y1), y1 - y0)
    crossings = (straddles & (xs < crossing_x)).sum(dim=1)  # (B, H, W)
    return (crossings % 2 == 1).to(dtype)[:, None]


def hallucination_mask(
    grid: torch.Tensor, source_landmarks: torch.Tensor, target_landmarks: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """``(B, 1, H, W)`` in {0, 1}: target inner mouth minus the warped source inner mouth, dilated.

    ``grid`` is the warp's dense sampling grid (B, H, W, 2); landmarks are (B, 68, 2) pixel-index points.
    """
    inner = list(INNER_LIPS)
    target_mouth = polygon_mask(_uncrossed(target_landmarks)[:, inner], height, width)
    source_mouth = polygon_mask(_uncrossed(source_landmarks)[:, inner], height, width)
    carried = warp_image(source_mouth, grid.detach()) > 0.5
    mask = ((target_mouth > 0.5) & ~carried).to(grid.dtype)
    side = max(height, width)
    thin = max(1, round(HALLUCINATION_MIN_HALF_WIDTH * side))
    mask = -F.max_pool2d(-mask, 2 * thin + 1, stride=1, padding=thin)  # erode: slivers vanish
    radius = thin + max(1, round(HALLUCINATION_DILATION * side))  # grow back, then dilate
    return F.max_pool2d(mask, 2 * radius + 1, stride=1, padding=radius)


def _uncrossed(landmarks: torch.Tensor) -> torch.Tensor:
    """Landmarks whose inner lips, where the upper point lies below the lower one (a detector's
    crossed lips), are closed: each such pair moves to its midpoint. (B, 68, 2) -> (B, 68, 2)."""
    points = landmarks.detach().clone()
    across = points[:, 64] - points[:, 60]  # mouth corner to corner
    down = torch.stack([-across[:, 1], across[:, 0]], dim=-1)  # perpendicular, pointing to the chin
    for upper, lower in _INNER_LIP_PAIRS:
        crossed = ((points[:, lower] - points[:, upper]) * down).sum(-1) < 0
        middle = (points[:, upper] + points[:, lower]) / 2
        points[:, upper] = torch.where(crossed[:, None], middle, points[:, upper])
        points[:, lower] = torch.where(crossed[:, None], middle, points[:, lower])
    return points


def landmark_hallucination(source_landmarks: torch.Tensor, target_landmarks: torch.Tensor, height: int, width: int):
    """The hallucination mask (B, 1, H, W) of a warp from ``source_landmarks`` to ``target_landmarks`` alone."""
    source, target = source_landmarks.float(), target_landmarks.float()
    grid = sampling_grid(landmark_displacement(source, target, height, width), height, width)
    return hallucination_mask(grid, source, target, height, width)


@dataclass
class WarpGuidance:
    """The warp of one batch: coarse flow, warped image and hallucination mask."""

    displacement: torch.Tensor | None  # (B, 2, g, g) normalised (see thin_plate_spline); None: no warp
    warped: torch.Tensor  # (B, C, H, W) the input moved to the target landmarks
    hallucination: torch.Tensor  # (B, 1, H, W) in {0, 1}


def warp_guidance(
    image: torch.Tensor, source_landmarks: torch.Tensor | None, target_landmarks: torch.Tensor | None
) -> WarpGuidance:
    """Warp ``image`` (B, C, H, W) from ``source_landmarks`` to ``target_landmarks`` (B, 68, 2 pixels).

    Without landmarks (a stylised input dlib cannot read) the warp is the identity and the
    hallucination mask is empty.
    """
    batch, _, height, width = image.shape
    if source_landmarks is None or target_landmarks is None:
        return WarpGuidance(None, image, image.new_zeros(batch, 1, height, width))
    source = source_landmarks.to(image.device, torch.float32)
    target = target_landmarks.to(image.device, torch.float32)
    displacement = landmark_displacement(source, target, height, width)
    grid = sampling_grid(displacement, height, width)
    warped = warp_image(image, grid)
    return WarpGuidance(displacement, warped, hallucination_mask(grid, source, target, height, width).to(image))
