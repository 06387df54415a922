"""A differentiable thin-plate-spline (TPS) landmark warp, batched, at any resolution.

Not in the paper: the warp-guided generator (``PortraitGANConfig.warp_guided``) first moves the input
to the target landmarks with this warp, so that G only has to draw what a warp cannot (teeth, mouth
interior, creases, a change of modality). The spline is Bookstein's (1989) thin-plate spline with
the kernel U(r) = r^2 log r^2, fitted so that each *target* point maps to its *source* point: a
backward map, which is what ``torch.nn.functional.grid_sample`` needs.

Why our own module rather than kornia's ``get_tps_transform``/``warp_image_tps``: kornia evaluates
the kernel at every output pixel (15-20x slower at 256 px on a 2-core CPU than the coarse grid used
here), and its current release requires Python >= 3.11 and torch 2.5.1, which this package does not.
Here the spline is evaluated on a coarse grid (``DEFAULT_GRID_SIZE``, 64x64) and the displacement is
interpolated bilinearly, so the same flow can be sampled at 256 px for G and at 4000 px for the photo.

Conventions:

* Points are pixel-index coordinates ``(x, y)`` of an image of size ``(height, width)``: ``(0, 0)`` is
  the centre of the top-left pixel (as everywhere in :mod:`portraitgan_hub.faces`).
* Normalised coordinates are those of ``grid_sample(..., align_corners=False)``: -1 and +1 are the
  outer edges of the border pixels.
* A *displacement field* is ``(B, 2, g, g)`` in normalised units, sampled at the pixel centres of a
  ``g x g`` grid over the image: output position ``p`` samples the source at ``p + displacement(p)``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

#: Side of the grid on which the spline is evaluated; the dense flow is interpolated from it.
DEFAULT_GRID_SIZE = 64
#: Fixed border anchors per side (corners included): they pin the image border in place.
ANCHORS_PER_SIDE = 5
#: Tikhonov term added to the kernel's diagonal: keeps the system solvable when two control points
#: coincide (closed lips put points 61-63 on 65-67); measured on the mean face in a 256 px crop, the
#: spline then misses the points by under 0.01 px for a smile, 0.12 px on average (1.6 px at worst)
#: when an open mouth is pressed shut.
REGULARIZATION = 1e-5
#: The flow is never longer than this multiple of the longest landmark move: where target points fold
#: over (lips pressed shut from an open mouth), an exact spline overshoots wildly between them.
MAX_OVERSHOOT = 1.25


def pixels_to_normalized(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pixel-index ``(..., 2)`` points -> ``grid_sample`` normalised coordinates (align_corners=False)."""
    scale = points.new_tensor([2.0 / width, 2.0 / height])
    return (points + 0.5) * scale - 1.0


def normalized_to_pixels(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`pixels_to_normalized`."""
    scale = points.new_tensor([width / 2.0, height / 2.0])
    return (points + 1.0) * scale - 0.5


def border_anchors(per_side: int = ANCHORS_PER_SIDE) -> torch.Tensor:
    """``(4 * (per_side - 1), 2)`` fixed points on the image's outer edge, normalised coordinates."""
    ticks = torch.linspace(-1.0, 1.0, per_side)
    top = torch.stack([ticks[:-1], torch.full_like(ticks[:-1], -1.0)], dim=1)
    right = torch.stack([torch.full_like(ticks[:-1], 1.0), ticks[:-1]], dim=1)
    bottom = torch.stack([ticks.flip(0)[:-1], torch.full_like(ticks[:-1], 1.0)], dim=1)
    left = torch.stack([torch.full_like(ticks[:-1], -1.0), ticks.flip(0)[:-1]], dim=1)
    return torch.cat([top, right, bottom, left])


def _kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """U(|a_i - b_j|) = r^2 log r^2 for ``a`` (B, N, 2), ``b`` (B, M, 2) -> (B, N, M); U(0) = 0."""
    squared = (a.square().sum(-1)[:, :, None] + b.square().sum(-1)[:, None, :] - 2 * a @ b.transpose(1, 2)).clamp_min(0)
    return squared * torch.log(squared.clamp_min(1e-12))


def fit_thin_plate_spline(
    control: torch.Tensor, values: torch.Tensor, regularization: float = REGULARIZATION
) -> tuple[torch.Tensor, torch.Tensor]:
    """The spline f with f(control_i) = values_i: kernel weights ``(B, N, D)`` and affine part ``(B, 3, D)``.

    ``control`` (B, N, 2) and ``values`` (B, N, D); solved in float64 with ``torch.linalg.solve``
    (Bookstein's linear system), differentiable in both. Raises ``torch.linalg.LinAlgError`` only
    when all control points are collinear.
    """
    batch, count, _ = control.shape
    c = control.double()
    kernel = _kernel(c, c) + regularization * torch.eye(count, dtype=c.dtype, device=c.device)
    affine = torch.cat([torch.ones_like(c[..., :1]), c], dim=-1)  # (B, N, 3)
    top = torch.cat([kernel, affine], dim=2)
    bottom = torch.cat([affine.transpose(1, 2), c.new_zeros(batch, 3, 3)], dim=2)
    system = torch.cat([top, bottom], dim=1)  # (B, N + 3, N + 3)
    rhs = torch.cat([values.double(), values.new_zeros(batch, 3, values.shape[-1]).double()], dim=1)
    solution = torch.linalg.solve(system, rhs)
    return solution[:, :count].to(values.dtype), solution[:, count:].to(values.dtype)


def evaluate_thin_plate_spline(
    control: torch.Tensor, weights: torch.Tensor, affine: torch.Tensor, points: torch.Tensor
) -> torch.Tensor:
    """f(points) for a spline from :func:`fit_thin_plate_spline`: ``points`` (B, M, 2) -> (B, M, D)."""
    kernel = _kernel(points.to(control.dtype), control).to(weights.dtype)
    homogeneous = torch.cat([torch.ones_like(points[..., :1]), points], dim=-1).to(weights.dtype)
    return kernel @ weights + homogeneous @ affine


def _grid_centres(height: int, width: int, reference: torch.Tensor) -> torch.Tensor:
    """``(H, W, 2)`` normalised coordinates of the pixel centres of an ``H x W`` grid."""
    ys = (torch.arange(height, dtype=reference.dtype, device=reference.device) + 0.5) * (2.0 / height) - 1.0
    xs = (torch.arange(width, dtype=reference.dtype, device=reference.device) + 0.5) * (2.0 / width) - 1.0
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1)


def landmark_displacement(
    source: torch.Tensor,
    target: torch.Tensor,
    height: int,
    width: int,
    grid_size: int = DEFAULT_GRID_SIZE,
) -> torch.Tensor:
    """The backward flow that moves ``source`` landmarks onto ``target``, as a coarse displacement field.

    ``source``, ``target``: (B, N, 2) pixel-index points of a ``height x width`` image (N = 68 for
    dlib landmarks). Returns (B, 2, grid_size, grid_size) normalised displacements: the output pixel
    at target point i samples the input at source point i; the image border stays put
    (:func:`border_anchors`). ``source == target`` gives exactly zero.
    """
    if source.shape != target.shape or source.ndim != 3 or source.shape[-1] != 2:
        raise ValueError(f"source and target must both be (B, N, 2), got {tuple(source.shape)}, {tuple(target.shape)}")
    dtype = torch.promote_types(source.dtype, torch.float32)
    src = pixels_to_normalized(source.to(dtype), height, width)
    dst = pixels_to_normalized(target.to(dtype), height, width)
    anchors = border_anchors().to(dst).expand(dst.shape[0], -1, -1)
    control = torch.cat([dst, anchors], dim=1)
    shift = torch.cat([src - dst, torch.zeros_like(anchors)], dim=1)
    weights, affine = fit_thin_plate_spline(control, shift)
    grid = _grid_centres(grid_size, grid_size, dst).reshape(1, -1, 2).expand(dst.shape[0], -1, -1)
    field = evaluate_thin_plate_spline(control, weights, affine, grid)
    longest = shift.norm(dim=-1).amax(dim=1)[:, None, None] * MAX_OVERSHOOT
    length = field.norm(dim=-1, keepdim=True)
    field = field * (longest / length.clamp_min(1e-12)).clamp(max=1.0)
    return field.reshape(dst.shape[0], grid_size, grid_size, 2).permute(0, 3, 1, 2).contiguous()


def sample_displacement(displacement: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """The coarse field at any normalised ``points`` (B, H, W, 2): bilinear, (B, H, W, 2).

    One interpolation for every resolution, so the flow at 256 px and at 4000 px agree.
    """
    sampled = F.grid_sample(displacement, points.to(displacement.dtype), "bilinear", "border", align_corners=False)
    return sampled.permute(0, 2, 3, 1)


def sampling_grid(displacement: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The dense ``grid_sample`` grid (B, H, W, 2) of a displacement field, at any output size."""
    centres = _grid_centres(height, width, displacement).expand(displacement.shape[0], -1, -1, -1)
    return centres + sample_displacement(displacement, centres)


def warp_image(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``image`` (B, C, H, W) resampled at ``grid`` (B, H', W', 2): bilinear, border pixels repeated.

    Sampled in float32 (and returned in the image's dtype): a bf16 grid is off by up to half a pixel.
    """
    warped = F.grid_sample(image.float(), grid.float(), "bilinear", "border", align_corners=False)
    return warped.to(image.dtype)


def warp_by_landmarks(
    image: torch.Tensor, source: torch.Tensor, target: torch.Tensor, grid_size: int = DEFAULT_GRID_SIZE
) -> torch.Tensor:
    """``image`` (B, C, H, W) warped so that its landmarks ``source`` move to ``target`` (B, N, 2 pixels)."""
    height, width = image.shape[-2:]
    displacement = landmark_displacement(source, target, height, width, grid_size)
    return warp_image(image, sampling_grid(displacement, height, width))
