"""Full-resolution composition: G's result put into the photo at the photo's own resolution.

Not in the paper, which returns G's 512 px crop. G's output at level 0 is ``A * warped + (1 - A) * C``
(:func:`blend`, GANimation's attention blend; Pumarola et al. 2018). :func:`compose` evaluates the
same expression at the photo's resolution: the photo itself is warped by G's flow (sampled at full
resolution), and only the colour C and the mask A are upsampled from the model's size. What G
copies keeps every pixel of the photo; only what G really draws (mouth interior, creases, a change
of modality) is at model resolution. :func:`finish_colours` is the edit's last step on the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from portraitgan_hub.eyelids import lid_positions
from portraitgan_hub.faces.alignment import DEFAULT_FEATHER, Alignment, feather_mask, warp_to_crop
from portraitgan_hub.image_tensors import pil_to_tensor, tensor_to_pil
from portraitgan_hub.thin_plate_spline import normalized_to_pixels, pixels_to_normalized, sample_displacement

if TYPE_CHECKING:
    from portraitgan_hub.model import PortraitGAN
    from portraitgan_hub.stages import Rendering


def blend(mask: torch.Tensor, copied: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """The masked output ``A * copied + (1 - A) * C`` (GANimation's attention blend): ``mask`` A
    (B, 1, H, W) in [0, 1] (1 copies), ``copied`` and ``colour`` (B, 3, H, W) in the same range.
    The one place of this formula: G's levels, the editor's crop, its full-resolution composition
    and the whole-picture conversion."""
    return mask * copied + (1 - mask) * colour


#: Crop pixels next to the photo's edge that get no weight in :func:`compose`: G saw black fill
#: beyond the edge there, and resampling it would draw a dark line along the photo's border.
EDGE_GUARD_PX = 3


def _crop_weight(alignment: Alignment, photo_size: tuple[int, int], feather: float) -> torch.Tensor:
    """(1, 1, S, S) blend weight in the crop: the feather ramp, and 0 near or beyond the photo's edge."""
    size = alignment.crop_size
    centres = np.stack(np.meshgrid(np.arange(size), np.arange(size)), axis=-1).reshape(-1, 2)
    position = alignment.to_image(centres)
    width, height = photo_size
    inside = np.all((position >= -0.5) & (position <= np.array([width, height]) - 0.5), axis=1)
    valid = torch.from_numpy(inside.reshape(1, 1, size, size).astype(np.float32))
    if not bool(valid.all()):
        guard = EDGE_GUARD_PX
        valid = -F.max_pool2d(-valid, 2 * guard + 1, stride=1, padding=guard)  # erode
        valid = F.avg_pool2d(valid, 2 * guard + 1, stride=1, padding=guard, count_include_pad=False) * valid
    return torch.from_numpy(feather_mask(size, feather))[None, None] * valid


def compose(
    photo: Image.Image,
    alignment: Alignment,
    rendering: Rendering,
    feather: float = DEFAULT_FEATHER,
    background: Image.Image | None = None,
) -> Image.Image:
    """The editor's stage 4 (``FaceEditor.compose``): the photo with G's result put in at the photo's own resolution.

    Inside the crop's footprint each photo pixel p becomes ``A * photo(warp(p)) + (1 - A) * C``, with
    A and C bilinearly upsampled from the crop and the warp's flow sampled at p (the photo is never
    downsampled); this is blended into the photo with the feather ramp of
    :func:`portraitgan_hub.faces.alignment.feather_mask`, which is also 0 next to the photo's edge
    (:data:`EDGE_GUARD_PX`). Every pixel outside the footprint keeps its exact value. ``photo`` is RGB.

    ``background``: what the face is blended into instead of the photo (same size; e.g. the whole
    photo converted to the target modality by :func:`convert_picture`); the warp still reads ``photo``.
    """
    if background is not None and background.size != photo.size:
        raise ValueError(f"background size {background.size} != photo size {photo.size}")
    canvas = photo if background is None else background
    if alignment.crop_size != rendering.colour.shape[-1]:
        alignment = alignment.resized(rendering.colour.shape[-1])
    size = alignment.crop_size
    edges = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    corners = alignment.to_image(edges)
    left, top = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
    right = min(photo.width, int(np.ceil(corners[:, 0].max())) + 1)
    bottom = min(photo.height, int(np.ceil(corners[:, 1].max())) + 1)
    if left >= right or top >= bottom:
        return canvas.copy()
    # Normalised crop coordinates of every photo pixel in the box: an affine map, built separably.
    affine = torch.from_numpy(alignment.matrix * np.array([[2.0 / size], [2.0 / size]])).float()
    affine[:, 2] += 1.0 / size - 1.0  # pixels_to_normalized of the crop position
    xs = torch.arange(left, right, dtype=torch.float32)
    ys = torch.arange(top, bottom, dtype=torch.float32)
    at = (xs[None, :, None] * affine[:, 0] + ys[:, None, None] * affine[:, 1] + affine[:, 2])[None]  # (1, h, w, 2)
    weight = F.grid_sample(_crop_weight(alignment, photo.size, feather), at, "bilinear", "zeros", align_corners=False)
    rows, cols = torch.nonzero(weight[0, 0] > 0, as_tuple=True)
    if rows.numel() == 0:
        return canvas.copy()
    # Only the rows and columns that get some weight are computed.
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    at, weight = at[:, r0:r1, c0:c1], weight[:, :, r0:r1, c0:c1]
    box = (left + c0, top + r0, left + c1, top + r1)
    before = torch.from_numpy(np.asarray(photo.crop(box), dtype=np.float32)).permute(2, 0, 1)[None]
    base = (
        before
        if background is None
        else torch.from_numpy(np.asarray(canvas.crop(box), np.float32)).permute(2, 0, 1)[None]
    )
    colour = F.grid_sample(rendering.colour, at, "bilinear", "border", align_corners=False) * 127.5 + 127.5
    if rendering.mask is None:
        edited = colour
    else:
        mask = F.grid_sample(rendering.mask, at, "bilinear", "border", align_corners=False)
        warped = before
        if rendering.displacement is not None:
            taken = _lid_positions(at, rendering.lids, size) if rendering.lids else at
            warped = _warp_photo(photo, alignment, taken + sample_displacement(rendering.displacement, taken))
            for closing in rendering.lids:  # the closed lid's edge, antialiased
                warped = _antialiased_lid(photo, alignment, at, affine, rendering, closing, box, warped)
        edited = blend(mask, warped, colour)
    blended = base + (edited - base) * weight
    result = canvas.copy()
    pixels = blended[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    result.paste(Image.fromarray(pixels), box[:2])
    return result


#: The band of the blend mask where G's colour meets the copied photo: A in this range.
RING = (0.5, 0.99)


def match_drawn_colour(colour: torch.Tensor, copied: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """G's colour C (1, 3, S, S) with one gain per channel, so that where it meets the copied photo
    (the band of A in :data:`RING`) its mean is the photo's: what G draws in an expression edit (an
    opened mouth) takes the photo's light and white balance, while keeping G's own contrast (a dark
    mouth stays darker than its lips). The gain is the ratio of the band's mean intensities, in
    [0, 1] units (Reinhard et al.'s colour transfer, "Color Transfer between Images", 2001, with a
    gain only). C unchanged where no band is found. Values in [-1, 1]."""
    band = (mask > RING[0]) & (mask < RING[1])
    if int(band.sum()) < 16:
        return colour
    weights = band.to(colour)
    count = weights.sum()
    drawn_mean = (((colour + 1) / 2) * weights).sum(dim=(2, 3), keepdim=True) / count
    photo_mean = (((copied + 1) / 2) * weights).sum(dim=(2, 3), keepdim=True) / count
    gain = photo_mean / drawn_mean.clamp_min(1e-3)
    return (((colour + 1) / 2) * gain * 2 - 1).clamp(-1, 1)


def _lid_positions(at: torch.Tensor, lids: tuple, size: int) -> torch.Tensor:
    """Normalised crop positions ``at`` (1, h, w, 2) moved by the closing eyes' lid warp
    (:func:`portraitgan_hub.eyelids.lid_positions`, in crop pixels of a ``size`` crop)."""
    pixels = normalized_to_pixels(at[0].double(), size, size).numpy()
    moved = torch.from_numpy(lid_positions(pixels, lids))
    return pixels_to_normalized(moved, size, size).float()[None]


#: Samples per pixel, each way, near a closing eye: its closed line is an edge inside the warp.
LID_SUPERSAMPLING = 3


def _antialiased_lid(photo, alignment, at, affine, rendering, closing, box, warped) -> torch.Tensor:
    """``warped`` (1, 3, h, w) with the pixels around one closing eye re-sampled as the mean of
    :data:`LID_SUPERSAMPLING` x :data:`LID_SUPERSAMPLING` sub-pixel positions, each through the lid
    warp and the flow, so that the closed line is not a staircase. ``at``: the box's normalised
    crop positions (1, h, w, 2); ``affine``: photo pixels -> them; ``box``: the box in photo pixels."""
    size = alignment.crop_size
    width = float(np.linalg.norm(closing.corners[1] - closing.corners[0]))
    corners = np.concatenate([closing.corners - width, closing.corners + width])
    spread = alignment.to_image(corners) - np.array(box[:2])
    c0, r0 = np.maximum(np.floor(spread.min(axis=0)).astype(int), 0)
    c1 = min(at.shape[2], int(np.ceil(spread[:, 0].max())) + 1)
    r1 = min(at.shape[1], int(np.ceil(spread[:, 1].max())) + 1)
    if c0 >= c1 or r0 >= r1:
        return warped
    region = at[:, r0:r1, c0:c1]
    n = LID_SUPERSAMPLING
    ticks = (torch.arange(n, dtype=torch.float32) + 0.5) / n - 0.5
    total = 0.0
    for dy in ticks:
        for dx in ticks:
            shifted = region + dx * affine[:, 0] + dy * affine[:, 1]
            taken = _lid_positions(shifted, rendering.lids, size)
            total = total + _warp_photo(photo, alignment, taken + sample_displacement(rendering.displacement, taken))
    warped = warped.clone()
    warped[..., r0:r1, c0:c1] = total / (n * n)
    return warped


#: How :func:`compose` resamples the photo along G's flow at full resolution (a ``grid_sample``
#: mode). Bicubic (Keys' cubic convolution, a = -0.75) keeps more fine detail than bilinear, which
#: averages neighbouring pixels at a sub-pixel shift (``benchmarks/detail_kept.py`` measures both).
#: It interpolates: whole-pixel positions return the photo's own pixels, so a no-op stays exact.
PHOTO_SAMPLING = "bicubic"
#: Photo pixels read beyond the sampled positions, each way: the sampler's reach.
_SAMPLING_REACH = {"bilinear": 1, "bicubic": 2}


def _warp_photo(photo: Image.Image, alignment: Alignment, source: torch.Tensor) -> torch.Tensor:
    """The photo sampled (:data:`PHOTO_SAMPLING`, at full resolution) at ``source`` (1, h, w, 2),
    normalised crop coordinates.

    Returns (1, 3, h, w) float32 in [0, 255] (bicubic overshoot at edges is clamped). Only the part
    of the photo the positions reach is read; positions outside the photo take its border pixels.
    """
    size = alignment.crop_size
    reach = _SAMPLING_REACH[PHOTO_SAMPLING]
    crop_points = normalized_to_pixels(source[0].double(), size, size)
    inverse = torch.from_numpy(alignment.inverse)
    points = crop_points @ inverse[:, :2].T + inverse[:, 2]  # photo pixel-index coordinates
    low = torch.clamp(points.reshape(-1, 2).min(dim=0).values.floor() - reach, min=0)
    high = points.reshape(-1, 2).max(dim=0).values.ceil() + reach + 1
    x0, y0 = int(low[0]), int(low[1])
    x1, y1 = min(photo.width, max(x0 + 1, int(high[0]))), min(photo.height, max(y0 + 1, int(high[1])))
    x0, y0 = min(x0, x1 - 1), min(y0, y1 - 1)
    region = torch.from_numpy(np.asarray(photo.crop((x0, y0, x1, y1)), dtype=np.float32)).permute(2, 0, 1)[None]
    local = pixels_to_normalized((points - points.new_tensor([x0, y0])).float(), y1 - y0, x1 - x0)
    return F.grid_sample(region, local[None], PHOTO_SAMPLING, "border", align_corners=False).clamp(0.0, 255.0)


def achromatic_share(model: PortraitGAN, condition: torch.Tensor) -> torch.Tensor:
    """(B,) weight of a (B, n) condition on the model's grey modalities (``config.achromatic_modalities``)."""
    config = model.config
    share = torch.zeros(condition.shape[0])
    for name in config.achromatic_modalities:
        share += condition[:, config.modality_index(name)].float().cpu()
    return share.clamp(0.0, 1.0)


def remove_colour(images: torch.Tensor, share: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) images in [-1, 1] with their chroma scaled by ``1 - share`` (B,) around their
    ITU-R 601 luma (Pillow's ``convert("L")``): share 1 gives grey pixels, 0 leaves them."""
    weights = images.new_tensor([0.299, 0.587, 0.114])[None, :, None, None]
    luma = (images * weights).sum(dim=1, keepdim=True)
    keep = (1.0 - share.to(images))[:, None, None, None]
    return luma + (images - luma) * keep


def remove_achromatic_share(result: Image.Image, model: PortraitGAN, condition: torch.Tensor) -> Image.Image:
    """Colour scaled down by the condition's weight on grey modalities (a full sketch comes back grey,
    a half-way sketch with half the chroma). Not in the paper."""
    share = achromatic_share(model, condition)
    if float(share.max()) <= 0:
        return result
    return tensor_to_pil(remove_colour(pil_to_tensor(result.convert("RGB")), share))[0]


def finish_colours(
    result: Image.Image, photo: Image.Image, model: PortraitGAN, condition: torch.Tensor, converts: bool
) -> Image.Image:
    """The editor's last step on a composed result (the library's ``edit`` and the app share it):
    a grey modality's share of colour taken out (``config.achromatic_modalities``), and, unless the
    edit changes modality (``converts``), a grey ``photo`` gives a grey result (a sketch made a photo
    need not stay grey)."""
    result = remove_achromatic_share(result, model, condition)
    return result if converts else _as_input_colours(result, photo)


def _as_input_colours(result: Image.Image, photo: Image.Image) -> Image.Image:
    """An achromatic photo (grey pixels, whatever its mode) gives an achromatic result.

    (A grayscale file also comes back in mode ``L``: see ``faces.image_io.restore_photo_info``.)
    """
    small = np.asarray(photo.reduce(max(1, min(photo.size) // 256)), dtype=np.int16)
    if np.array_equal(small[..., 0], small[..., 1]) and np.array_equal(small[..., 1], small[..., 2]):
        return result.convert("L").convert("RGB")
    return result


def portrait_crop(result: Image.Image, alignment: Alignment) -> Image.Image:
    """The aligned portrait of an edited picture at twice the model's size (the paper's 512 px square
    for the 256 px ``lite`` model), sampled from the full-resolution result."""
    return warp_to_crop(result, alignment.resized(2 * alignment.crop_size))


def downscaled(photo: Image.Image, max_side: int) -> tuple[Image.Image, float]:
    """``photo`` with its longest side at most ``max_side`` pixels (bilinear, with Pillow's reducing
    gap for speed), and the factor used (<= 1; the width's, so pixel centres map exactly)."""
    factor = min(1.0, max_side / max(photo.size))
    if factor >= 1.0:
        return photo, 1.0
    size = (max(1, round(photo.width * factor)), max(1, round(photo.height * factor)))
    return photo.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0), size[0] / photo.width


def scaled_alignment(alignment: Alignment, factor: float) -> Alignment:
    """The alignment of the same face in the photo resized by ``factor`` (> 0; pixel centres kept);
    ``alignment`` itself at factor 1."""
    if factor == 1.0:
        return alignment
    linear = alignment.matrix[:, :2] / factor
    offset = alignment.matrix[:, 2] + alignment.matrix[:, :2] @ np.full(2, 0.5 / factor - 0.5)
    return Alignment(matrix=np.hstack([linear, offset[:, None]]), crop_size=alignment.crop_size)
