"""Where an edit's flow may move the photo: its own head, not the neck, the crop's edge or a neighbour.

Not in the paper, which returns G's crop and has no photo around it. The thin-plate-spline flow of an
edit (``thin_plate_spline.landmark_displacement``) is fitted to the 68 landmarks and pinned to zero
only at the crop's border, so a head roll also turns the neck, the shoulders and any other face
inside the crop; where the composition's feather ramp then blends the moved photo into the unmoved
one, every edge shows twice (a second neck contour, a doubled ear). :func:`flow_falloff` is the
weight the full-resolution composition multiplies the flow by:

- 0 through the feather ramp and 1 from :data:`BORDER_FADE` inside it, so the ramp blends two
  identical pictures;
- below the lower jaw (the lower of the face's own and the target jaw line, flat beyond the jaw
  corners), 1 down to
  :data:`NECK_FADE` ``[0]`` and 0 from ``[1]`` of the landmark box's height, so the head turns on a
  neck that bends smoothly and stays put further down;
- 0 on and inside any other detected face's outline (jaw and brows), 1 from :data:`NEIGHBOUR_FADE`
  of the crop away from it.

The weights are smoothstep ramps, products of the three, on the flow's own grid; :func:`faded_flow`
applies them, and eases them towards 1 where a ramp would fold a large flow over. Local warps that
fade to zero away from the controlled region are the usual way of confining landmark edits (e.g.
the moving least squares and thin-plate-spline face warps of image editors, which bound the warp by a
mask); the distances here were chosen on the London faces by looking at ``roll`` and ``smile`` on two
cheek-to-cheek faces and on a bare neck.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from portraitgan_hub.faces.alignment import _MASK_BORDER_PX, DEFAULT_FEATHER  # the feather mask's hard border
from portraitgan_hub.thin_plate_spline import MIN_JACOBIAN, min_jacobian

#: Where the flow reaches 1 inside the feather ramp, as a share of the crop's side.
BORDER_FADE = 0.06
#: Below the jaw line, the flow fades from 1 to 0 between these shares of the landmark box's height.
NECK_FADE = (0.05, 0.4)
#: The flow is 0 on another face's outline and 1 this share of the crop's side away from it.
NEIGHBOUR_FADE = 0.08


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _jaw_envelope(jaws: Sequence[np.ndarray], xs: np.ndarray) -> np.ndarray:
    """The lowest (largest y) of the lower jaw lines ``jaws`` (landmarks 4-12: jaw corner, chin, jaw
    corner) at every x of ``xs``; beyond the jaw corners, their y. The steep sides of the jaw (0-3,
    13-16) are left out: a fade along them would turn sharply across a short distance and fold the
    flow over."""
    lowest = np.full(xs.shape, -np.inf)
    for jaw in jaws:
        order = np.argsort(jaw[:, 0])
        lowest = np.maximum(lowest, np.interp(xs, jaw[order, 0], jaw[order, 1]))
    return lowest


def _outline(landmarks: np.ndarray) -> np.ndarray:
    """A face's outline polygon (27, 2): the jaw (0-16), then the brows back (26-17)."""
    return np.concatenate([landmarks[0:17], landmarks[26:16:-1]])


def _distance_outside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Distance of each of ``points`` (N, 2) to ``polygon`` (M, 2), 0 inside it (even-odd rule)."""
    start, end = polygon, np.roll(polygon, -1, axis=0)
    edge = end - start
    rel = points[:, None, :] - start[None]
    t = np.clip((rel * edge).sum(-1) / np.maximum((edge * edge).sum(-1), 1e-12), 0.0, 1.0)
    distance = np.linalg.norm(rel - t[..., None] * edge, axis=-1).min(axis=1)
    y, x = points[:, None, 1], points[:, None, 0]
    crosses = ((start[None, :, 1] > y) != (end[None, :, 1] > y)) & (
        x
        < (end[None, :, 0] - start[None, :, 0]) * (y - start[None, :, 1]) / (edge[None, :, 1] + 1e-12)
        + start[None, :, 0]
    )
    inside = crosses.sum(axis=1) % 2 == 1
    return np.where(inside, 0.0, distance)


def _cell_centres(crop_size: int, grid_size: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y (crop pixels) of the flow grid's cell centres, as ``thin_plate_spline`` lays them out."""
    centres = (np.arange(grid_size) + 0.5) * crop_size / grid_size - 0.5
    return np.meshgrid(centres, centres)


def flow_falloff(
    source: np.ndarray,
    target: np.ndarray,
    crop_size: int,
    grid_size: int,
    feather: float = DEFAULT_FEATHER,
) -> torch.Tensor:
    """The flow's weight from the feather ramp and the neck, (1, 1, grid_size, grid_size) float32 in
    [0, 1], on the cells of the flow's grid over the crop.

    ``source``/``target``: the face's own and edited (68, 2) landmarks, crop pixels. ``feather``: the
    composition's feather ramp, a share of the crop's side.
    """
    xs, ys = _cell_centres(crop_size, grid_size)
    to_edge = np.minimum(np.minimum(xs, ys), np.minimum(crop_size - 1 - xs, crop_size - 1 - ys))
    ramp_end = _MASK_BORDER_PX + feather * crop_size
    weight = _smoothstep((to_edge - ramp_end) / (BORDER_FADE * crop_size))
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    height = max(np.ptp(source[:, 1]), 1.0)
    below = ys - _jaw_envelope([source[4:13], target[4:13]], xs)
    start, end = NECK_FADE
    weight = weight * (1.0 - _smoothstep((below / height - start) / (end - start)))
    return torch.from_numpy(weight.astype(np.float32))[None, None]


def neighbour_falloff(others: Sequence[np.ndarray], crop_size: int, grid_size: int) -> torch.Tensor:
    """The flow's weight from the photo's other faces, (1, 1, grid_size, grid_size) float32 in [0, 1]:
    0 on and inside each face's outline (``others``: their (68, 2) landmarks in this crop's pixels),
    1 from :data:`NEIGHBOUR_FADE` of the crop away."""
    xs, ys = _cell_centres(crop_size, grid_size)
    weight = np.ones(xs.shape)
    cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
    for other in others:
        distance = _distance_outside(cells, _outline(np.asarray(other, np.float64))).reshape(xs.shape)
        weight = weight * _smoothstep(distance / (NEIGHBOUR_FADE * crop_size))
    return torch.from_numpy(weight.astype(np.float32))[None, None]


#: How many times :func:`faded_flow` halves the falloff's depth before it gives up fading.
FOLD_RETRIES = 4


def faded_flow(displacement: torch.Tensor, falloff: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
    """``displacement`` (B, 2, g, g) times ``falloff`` and ``neighbours`` (1, 1, g, g each).

    Where the product would fold over (a Jacobian determinant of p -> p + flow(p) under
    ``thin_plate_spline.MIN_JACOBIAN``: a steep ramp across a large flow), the depth of ``falloff``
    (the feather ramp and the neck) is halved, up to :data:`FOLD_RETRIES` times, then it is dropped.
    ``neighbours`` always applies: another person's face stays still even where that leaves a fold
    in the narrow gap between two faces."""
    grid = displacement.shape[-1]
    for _ in range(FOLD_RETRIES + 1):
        faded = displacement * falloff * neighbours
        if bool((min_jacobian(faded, grid) >= MIN_JACOBIAN).all()):
            return faded
        falloff = 1.0 - (1.0 - falloff) * 0.5
    return displacement * neighbours
