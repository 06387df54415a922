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
#: coincide; on the mean face in a 256 px crop the spline then misses the points by under 0.01 px for
#: a smile. Evaluated through the 64x64 grid, a point lands within about 1 px of its source.
REGULARIZATION = 1e-5
#: If the fitted map folds over anywhere (its Jacobian determinant on the grid falls below
#: ``MIN_JACOBIAN``), the spline is refitted smoother with each next value, per sample, until it does
#: not: a fold shows as torn or doubled features (a lip pushed into the nose), a smoother warp as a
#: slightly inexact one that G corrects.
SMOOTHER_REGULARIZATION = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
MIN_JACOBIAN = 0.05
#: Target points closer than about this fraction of the image side (1 px at 256) share the mean of
#: their moves (Gaussian weights of this width): a closed eye or mouth puts upper-lid points onto
#: lower-lid points that come from different places, which no smooth map can interpolate exactly.
MERGE_RADIUS = 1.0 / 256
#: The flow is never longer than this multiple of the longest landmark move.
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
    squared = (a[:, :, None, :] - b[:, None, :, :]).square().sum(-1)  # differences: exact in float32
    return squared * torch.log(squared.clamp_min(1e-12))


def fit_thin_plate_spline(
    control: torch.Tensor, values: torch.Tensor, regularization: float | torch.Tensor = REGULARIZATION
) -> tuple[torch.Tensor, torch.Tensor]:
    """The spline f with f(control_i) = values_i: kernel weights ``(B, N, D)`` and affine part ``(B, 3, D)``.

    ``control`` (B, N, 2) and ``values`` (B, N, D); ``regularization`` a float or one per sample (B,).
    Solved in float64 with ``torch.linalg.solve`` (Bookstein's linear system), differentiable in both.
    Raises ``torch.linalg.LinAlgError`` only when all control points are collinear.
    """
    batch, count, _ = control.shape
    c = control.double()
    smoothing = torch.as_tensor(regularization, dtype=c.dtype, device=c.device).reshape(-1, 1, 1)
    kernel = _kernel(c, c) + smoothing * torch.eye(count, dtype=c.dtype, device=c.device)
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
    dlib landmarks). Returns (B, 2, grid_size, grid_size) float32 normalised displacements: the output
    pixel at target point i samples the input at source point i; the image border stays put
    (:func:`border_anchors`). ``source == target`` gives exactly zero. Target points that (nearly)
    coincide share their sources (:data:`MERGE_RADIUS_PX`), and a fit that would fold over is refitted
    smoother (:data:`SMOOTHER_REGULARIZATION`), so the map stays one-to-one. Always computed in
    float32/float64, also inside an autocast region (bf16 distances would be off by pixels).
    """
    if source.shape != target.shape or source.ndim != 3 or source.shape[-1] != 2:
        raise ValueError(f"source and target must both be (B, N, 2), got {tuple(source.shape)}, {tuple(target.shape)}")
    with torch.autocast(device_type=source.device.type, enabled=False):
        src = pixels_to_normalized(source.float(), height, width)
        dst = pixels_to_normalized(target.float(), height, width)
        moves = _merge_coincident_moves(src - dst, dst, 2.0 * MERGE_RADIUS)
        anchors = border_anchors().to(dst).expand(dst.shape[0], -1, -1)
        control = torch.cat([dst, anchors], dim=1)
        shift = torch.cat([moves, torch.zeros_like(anchors)], dim=1)
        grid = _grid_centres(grid_size, grid_size, dst).reshape(1, -1, 2).expand(dst.shape[0], -1, -1)
        smoothing = torch.full((dst.shape[0],), REGULARIZATION, dtype=torch.float64, device=dst.device)
        longest = shift.norm(dim=-1).amax(dim=1)[:, None, None, None] * MAX_OVERSHOOT
        field = _fitted_field(control, shift, grid, smoothing, grid_size, longest)
        for stronger in SMOOTHER_REGULARIZATION:
            folded = min_jacobian(field, grid_size) < MIN_JACOBIAN
            if not bool(folded.any()):
                break
            smoothing = torch.where(folded, torch.full_like(smoothing, stronger), smoothing)
            smoother = _fitted_field(control, shift, grid, smoothing, grid_size, longest)
            field = torch.where(folded[:, None, None, None], smoother, field)
        return field


def _merge_coincident_moves(moves: torch.Tensor, target: torch.Tensor, radius: float) -> torch.Tensor:
    """Moves averaged over target points closer than about ``radius`` (normalised units), Gaussian
    weights; no move stays exactly no move."""
    distance = (target[:, :, None, :] - target[:, None, :, :]).square().sum(-1)
    weights = torch.exp(-distance / radius**2)  # 1 on the diagonal; ~0 beyond 2 radii
    return weights @ moves / weights.sum(-1, keepdim=True)


def _fitted_field(
    control: torch.Tensor,
    shift: torch.Tensor,
    grid: torch.Tensor,
    smoothing: torch.Tensor,
    grid_size: int,
    longest: torch.Tensor,
) -> torch.Tensor:
    """The spline's displacement on the grid, (B, 2, g, g), no vector longer than ``longest`` (B, 1, 1, 1)."""
    weights, affine = fit_thin_plate_spline(control, shift, smoothing)
    field = evaluate_thin_plate_spline(control, weights, affine, grid)
    field = field.reshape(control.shape[0], grid_size, grid_size, 2).permute(0, 3, 1, 2)
    return field * (longest / field.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)


def min_jacobian(field: torch.Tensor, grid_size: int) -> torch.Tensor:
    """Per sample, the smallest Jacobian determinant of p -> p + field(p) on the grid, (B,).

    ``field``: (B, 2, G, G) displacement in normalised [-1, 1] coordinates on a ``grid_size`` (G)
    square grid; finite differences between neighbours. 1 is the identity, <= 0 a fold.
    """
    step = 2.0 / grid_size
    dx = (field[:, :, :, 1:] - field[:, :, :, :-1])[:, :, :-1, :] / step  # d field / dx
    dy = (field[:, :, 1:, :] - field[:, :, :-1, :])[:, :, :, :-1] / step  # d field / dy
    determinant = (1 + dx[:, 0]) * (1 + dy[:, 1]) - dx[:, 1] * dy[:, 0]
    return determinant.flatten(1).amin(dim=1)


def sample_displacement(displacement: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """The coarse field at any normalised ``points`` (B, H, W, 2): bilinear, (B, H, W, 2).

    One interpolation for every resolution, so the flow at 256 px and at 4000 px agree.
    """
    with torch.autocast(device_type=displacement.device.type, enabled=False):
        sampled = F.grid_sample(displacement.float(), points.float(), "bilinear", "border", align_corners=False)
    return sampled.permute(0, 2, 3, 1)


def sampling_grid(displacement: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The dense ``grid_sample`` grid (B, H, W, 2) of a displacement field, at any output size."""
    centres = _grid_centres(height, width, displacement.float()).expand(displacement.shape[0], -1, -1, -1)
    return centres + sample_displacement(displacement, centres)


def warp_image(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``image`` (B, C, H, W) resampled at ``grid`` (B, H', W', 2): bilinear, border pixels repeated.

    Sampled in float32 (and returned in the image's dtype): a bf16 grid is off by up to half a pixel.
    """
    with torch.autocast(device_type=image.device.type, enabled=False):
        warped = F.grid_sample(image.float(), grid.float(), "bilinear", "border", align_corners=False)
    return warped.to(image.dtype)


def warp_by_landmarks(
    image: torch.Tensor, source: torch.Tensor, target: torch.Tensor, grid_size: int = DEFAULT_GRID_SIZE
) -> torch.Tensor:
    """``image`` (B, C, H, W) warped so that its landmarks ``source`` move to ``target`` (B, N, 2 pixels)."""
    height, width = image.shape[-2:]
    displacement = landmark_displacement(source, target, height, width, grid_size)
    return warp_image(image, sampling_grid(displacement, height, width))
