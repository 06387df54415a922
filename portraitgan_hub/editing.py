"""The straight path of an edit: photo -> faces -> landmarks -> edited landmarks -> flow and map -> G
-> full-resolution composition.

Each stage is a plain function that a test can call alone: :func:`align_face` (faces and landmarks
into the model's crop), :func:`target_landmarks` (the edit), :func:`render` (landmark map, and for a
warp-guided G the thin-plate-spline flow, then G at its own size) and :func:`compose` (the result at
the photo's resolution). :class:`FaceEditor` strings them together and caches face detection per
photo, so that moving a slider does not detect the face again.

Full-resolution composition (not in the paper, which returns G's 512 px crop): G's output at level 0
is ``A * warped + (1 - A) * C``. :func:`compose` evaluates the same expression at the photo's
resolution: the photo itself is warped by G's flow (sampled at full resolution), and only the colour
C and the mask A are upsampled from the model's size. What G copies keeps every pixel of the photo;
only what G really draws (mouth interior, creases, a change of modality) is at model resolution.

Whole-picture modality conversion (issue #12; the paper converts only its aligned crop): a change of
modality also converts everything around the face, so that no crop box shows. :func:`convert_picture`
runs G over the photo at the face's training scale in overlapping model-size tiles (blended with
linear ramps over the overlap, as tiled super-resolution and tiled diffusion decoders do), each tile
carrying the landmarks that fall inside it; G was trained on such windows of wider context crops
(``train.prepare``, ``train/dataset.py``). The face, with its expression edit, is then composed on
top of that converted picture. A partial change of modality conditions G on
``(1 - s) c_source + s c_target`` (:func:`modality_condition`).
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from portraitgan_hub.edit_region import limit_to_edit_region
from portraitgan_hub.errors import PortraitGANError
from portraitgan_hub.faces.alignment import (
    DEFAULT_FEATHER,
    DEFAULT_MARGIN,
    Alignment,
    estimate_alignment,
    feather_mask,
    warp_to_crop,
)
from portraitgan_hub.faces.expressions import (
    ExpressionControls,
    check_reference_strength,
    move_points,
    reference_part_indices,
    transfer_expression,
)
from portraitgan_hub.faces.image_io import (
    ImageSource,
    PhotoInfo,
    check_image_source,
    load_image,
    load_photo,
    restore_photo_info,
    source_name,
)
from portraitgan_hub.faces.landmark_map import draw_landmark_map
from portraitgan_hub.faces.landmarks import (
    NUM_LANDMARKS,
    Face,
    LandmarkDetector,
    check_landmarks,
    check_min_face,
    default_detector,
    select_face,
)
from portraitgan_hub.generator import blend
from portraitgan_hub.losses import modality_change
from portraitgan_hub.model import pil_to_tensor, tensor_to_pil
from portraitgan_hub.thin_plate_spline import normalized_to_pixels, pixels_to_normalized, sample_displacement

if TYPE_CHECKING:
    from portraitgan_hub.model import PortraitGAN


@dataclass(frozen=True)
class AlignedFace:
    """One face of one photo, aligned to the model's canonical crop."""

    photo: Image.Image  # the full-resolution RGB photo
    face: Face  # its detection, in photo pixels
    alignment: Alignment  # photo pixels -> crop pixels
    crop: Image.Image  # the aligned crop the generator sees
    landmarks: np.ndarray  # (68, 2) landmarks in crop pixels


def align_face(photo: Image.Image, face: Face, crop_size: int, margin: float = DEFAULT_MARGIN) -> AlignedFace:
    """Stage 2: the canonical crop of one detected face, and its landmarks in crop pixels."""
    alignment = estimate_alignment(face.landmarks, crop_size, margin)
    return AlignedFace(photo, face, alignment, warp_to_crop(photo, alignment), alignment.to_crop(face.landmarks))


def target_landmarks(
    aligned: AlignedFace,
    controls: ExpressionControls | None = None,
    *,
    reference: np.ndarray | None = None,
    landmarks: np.ndarray | None = None,
    moves: Mapping[int, tuple[float, float]] | None = None,
    reference_strength: float = 1.0,
    reference_parts: str | Sequence[str] = "all",
) -> np.ndarray:
    """Stage 3: the edited landmarks, in crop pixels.

    Start from ``landmarks`` (explicit target points in photo pixels) if given, else from the face's
    own; take on the expression of ``reference`` (a reference face's landmarks in crop pixels) if
    given, scaled by ``reference_strength`` (0..1.5) and limited to ``reference_parts`` (``"eyes"``,
    ``"brows"``, ``"mouth"``, ``"all"`` or a list; see ``transfer_expression``); then apply the
    expression ``controls``; then move single points (``moves`` in crop pixels). Raises ValueError
    for a strength out of range or an unknown part. Explicit ``landmarks`` that lie mostly outside
    this face's crop are a ``ValueError`` (they were found on another face or another photo).
    """
    points = aligned.landmarks
    if landmarks is not None:
        points = aligned.alignment.to_crop(check_landmarks(landmarks, "target"))
        check_inside_crop(points, aligned)
    if reference is not None:
        points = transfer_expression(points, reference, strength=reference_strength, parts=reference_parts)
    if controls is not None:
        points = controls.apply(points)
    if moves:
        points = move_points(points, moves)
    return np.asarray(points, dtype=np.float32)


#: Explicit target landmarks are refused when fewer than this share of them fall inside the crop.
MIN_INSIDE_SHARE = 0.5


def check_inside_crop(points: np.ndarray, aligned: AlignedFace) -> None:
    """``ValueError`` unless most target ``points`` (crop pixels) lie inside the crop of ``aligned``."""
    size = aligned.alignment.crop_size
    inside = int(((points >= 0) & (points < size)).all(axis=1).sum())
    if inside < MIN_INSIDE_SHARE * NUM_LANDMARKS:
        raise ValueError(
            f"landmarks: only {inside} of {NUM_LANDMARKS} target points lie inside the crop of the face being "
            f"edited (box {aligned.face.box} in photo pixels): they belong to another face or another photo. "
            "Give the points of this face (with several faces, choose it with face= / --face)"
        )


def select_target_landmarks(landmarks: object, face: int) -> np.ndarray:
    """The ``(68, 2)`` target points for face number ``face`` from ``landmarks``.

    ``landmarks``: ``(68, 2)`` points, or ``(N, 68, 2)`` points of N faces (largest first, as
    ``portraitgan landmarks`` writes them), of which face ``face`` is taken. Raises ``TypeError``
    for what is not an array of numbers, ``ValueError`` naming ``landmarks`` for another shape, for
    non-finite values, or when face ``face`` is not there.
    """
    try:
        points = np.asarray(landmarks, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"landmarks must be an array of (68, 2) points, got {type(landmarks).__name__}") from None
    if points.ndim == 3:
        if not 0 <= face < points.shape[0]:
            raise ValueError(f"landmarks hold {points.shape[0]} face(s), so there are no points for face {face}")
        points = points[face]
    return check_landmarks(points, "target")


@dataclass(frozen=True)
class Rendering:
    """What G made of one aligned face (stages 4-5), everything in the crop's frame.

    ``crop``: G's output image at the model's size. ``colour``: its tanh colour C, (1, 3, S, S) in
    [-1, 1]. ``mask``: the blend mask A, (1, 1, S, S) in [0, 1], or None for a G that draws every pixel.
    ``displacement``: the warp's coarse flow, (1, 2, g, g) in normalised crop units (see
    :mod:`portraitgan_hub.thin_plate_spline`), or None when G does not warp.
    """

    crop: Image.Image
    colour: torch.Tensor
    mask: torch.Tensor | None
    displacement: torch.Tensor | None


def input_index(model: PortraitGAN, input_modality: str | int | None = None) -> int:
    """Index of the edit's input modality (None: the model's first, usually ``photo``); ValueError if unknown."""
    config = model.config
    return config.modality_index(config.modalities[0] if input_modality is None else input_modality)


def modality_condition(
    model: PortraitGAN,
    modality: str | int | None = None,
    input_modality: str | int | None = None,
    strength: float = 1.0,
) -> torch.Tensor:
    """The attribute vector c of an edit, (1, n) float32: ``(1 - strength) e_input + strength e_target``.

    ``modality``/``input_modality``: names or indices (None: the model's first, usually ``photo``).
    ``strength`` in [0, 1]: 0 keeps the input's modality, 1 is the full target modality (the paper's
    continuous conditioning, Sec. 3.2, applied to c; the demo model was trained on such mixtures).
    Raises ``ValueError`` for an unknown modality or a strength outside [0, 1], ``TypeError`` for a
    strength that is not a number.
    """
    config = model.config
    target = config.modality_index(config.modalities[0] if modality is None else modality)
    source = input_index(model, input_modality)
    strength = check_modality_strength(strength)
    condition = torch.zeros(1, config.num_modalities)
    condition[0, source] += 1.0 - strength
    condition[0, target] += strength
    return condition


def check_modality_strength(strength: object) -> float:
    """``modality_strength`` as a float in [0, 1]; ``TypeError``/``ValueError`` naming it otherwise."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.integer, np.floating)):
        raise TypeError(f"modality_strength must be a number in [0, 1], got {type(strength).__name__} {strength!r}")
    if not 0.0 <= float(strength) <= 1.0:
        raise ValueError(
            f"modality_strength must be in [0, 1] (0 = the input's modality, 1 = the full target), got {strength}"
        )
    return float(strength)


def render(
    model: PortraitGAN,
    aligned: AlignedFace,
    landmarks: np.ndarray,
    modality: str | int | torch.Tensor,
    input_modality: str | int | None = None,
    limit_region: bool = True,
) -> Rendering:
    """Stages 4-5: the landmark map L and (warp-guided G) the source -> target flow, then G(crop | L, c).

    ``landmarks``: the (68, 2) target points in crop pixels (:func:`target_landmarks`). ``modality``:
    the target modality's name or index, or a (1, n) condition from :func:`modality_condition`.
    ``input_modality``: the crop's own modality (None: the model's first, usually ``photo``).
    ``limit_region``: give a warp-guided G trained without the edit region the editor's narrower
    limit (:func:`~portraitgan_hub.edit_region.limit_to_edit_region`); False shows G's own mask
    (the evaluation's no-op fidelity, which measures G's re-rendering of an unchanged face).
    """
    size = model.config.image_size
    landmark_map = torch.from_numpy(draw_landmark_map(landmarks, size, model.config.landmark_line_width))
    source_index = input_index(model, input_modality)
    result = model.render(
        pil_to_tensor(aligned.crop),
        landmark_map[None, None],
        modality,
        aligned.landmarks,
        landmarks,
        source_modality=source_index,
    )
    mask, image = result.mask, result.images[0]
    if limit_region and mask is not None and result.guidance is not None and not model.config.edit_region:
        # A warp-guided G trained without the edit region gets its limit here (edit_region.py).
        source = torch.tensor([source_index])
        change = modality_change(source, model._modality_indices(modality, 1).cpu(), model.config.num_modalities)
        change = change.to(mask.device)
        points = [torch.from_numpy(np.float32(p))[None].to(mask.device) for p in (aligned.landmarks, landmarks)]
        mask = limit_to_edit_region(mask, *points, change, result.guidance.hallucination)
        image = blend(mask, result.base, result.colour)
    mask = None if mask is None else mask.float().cpu()
    displacement = None
    if result.guidance is not None and result.guidance.displacement is not None:
        displacement = result.guidance.displacement.float().cpu()
    return Rendering(tensor_to_pil(image)[0], result.colour.float().cpu(), mask, displacement)


def render_crop(model: PortraitGAN, aligned: AlignedFace, landmarks: np.ndarray, modality: str | int) -> Image.Image:
    """G's output for the aligned face at the model's size: ``render(...).crop``."""
    return render(model, aligned, landmarks, modality).crop


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
    """Stage 6: the photo with G's result put in at the photo's own resolution.

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
            warped = _warp_photo(photo, alignment, at + sample_displacement(rendering.displacement, at))
        edited = blend(mask, warped, colour)
    blended = base + (edited - base) * weight
    result = canvas.copy()
    pixels = blended[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    result.paste(Image.fromarray(pixels), box[:2])
    return result


#: How :func:`compose` resamples the photo along G's flow at full resolution (a ``grid_sample``
#: mode). Bicubic (Keys' cubic convolution, a = -0.75) keeps more fine detail than bilinear, which
#: averages neighbouring pixels at a sub-pixel shift: at ``smile=0.05`` the face box keeps 0.936 of
#: its Laplacian variance against 0.736 (median of the 16 held-out 1350 px London photos,
#: ``benchmarks/detail_kept.py``; issue #25). It interpolates: whole-pixel positions return the
#: photo's own pixels, so a no-op stays exact.
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


#: Overlap of neighbouring tiles in :func:`convert_picture`, as a share of the model's size.
TILE_OVERLAP = 0.25
#: Tiles per pass of G in :func:`convert_picture`.
TILE_BATCH = 4
#: :func:`convert_picture` works on at most this many pixels on the long side (about 100 tiles of a
#: 256 px model): a small face in a large photo would otherwise ask for hundreds of tiles. The face
#: itself is composed at its own scale on top, so only the surroundings get coarser.
MAX_CONVERT_SIDE = 2048


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of ``tile``-px tiles covering ``length`` px with at least ``overlap`` px shared
    by neighbours; the first starts at 0 and the last ends at ``length`` (``length >= tile``)."""
    if length <= tile:
        return [0]
    count = int(np.ceil((length - overlap) / (tile - overlap)))
    return [int(round(i * (length - tile) / (count - 1))) for i in range(count)]


def convert_picture(
    model: PortraitGAN,
    picture: Image.Image,
    scale: float,
    condition: str | int | torch.Tensor,
    landmarks: np.ndarray | None = None,
    input_modality: str | int | None = None,
) -> Image.Image:
    """Stage 5 for a change of modality (issue #12): the whole ``picture`` converted by G.

    ``picture``: RGB, any size. ``scale``: model pixels per picture pixel, the face's training scale
    (``Alignment.scale`` of its crop); G sees the picture resized by it, in model-size tiles that
    overlap by :data:`TILE_OVERLAP` and are blended with linear ramps. ``condition``: the target
    modality or a (1, n) condition (:func:`modality_condition`). ``landmarks``: the face's (68, 2)
    points in picture pixels; each tile's landmark map draws those falling inside it, unchanged (the
    expression edit is the face's, composed on top by :func:`compose`); None: empty maps, no warp.
    ``input_modality``: the picture's own modality (None: the model's first, usually ``photo``).

    As in :func:`compose`, the colour C and mask A are blended from the tiles and upsampled, and the
    result is ``A * picture + (1 - A) * C`` at the picture's own resolution. Returns an RGB image of
    ``picture``'s size. Cost: one pass of G per tile, about ``(side * scale / (0.75 * size))**2``;
    the scale is lowered so that the long side stays within :data:`MAX_CONVERT_SIDE`.
    """
    size = model.config.image_size
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number of model pixels per picture pixel, got {scale}")
    scale = min(scale, MAX_CONVERT_SIDE / max(picture.size))
    width, height = max(1, round(picture.width * scale)), max(1, round(picture.height * scale))
    small = np.asarray(picture.convert("RGB").resize((width, height), Image.Resampling.BICUBIC))
    padded = np.pad(small, ((0, max(0, size - height)), (0, max(0, size - width)), (0, 0)), mode="edge")
    overlap = int(size * TILE_OVERLAP)
    tiles = [
        (x, y) for y in tile_starts(padded.shape[0], size, overlap) for x in tile_starts(padded.shape[1], size, overlap)
    ]
    ramp = np.minimum(np.arange(size) + 0.5, size - np.arange(size) - 0.5) / max(overlap, 1)
    ramp = torch.from_numpy(np.clip(ramp, 1e-3, 1.0).astype(np.float32))
    window = (ramp[:, None] * ramp[None, :])[None, None]
    colour = torch.zeros(1, 3, *padded.shape[:2])
    mask = torch.zeros(1, 1, *padded.shape[:2])
    total = torch.zeros(1, 1, *padded.shape[:2])
    points = (
        None
        if landmarks is None
        else (np.asarray(landmarks, np.float64) + 0.5) * np.array([width / picture.width, height / picture.height])
        - 0.5
    )
    for first in range(0, len(tiles), TILE_BATCH):
        batch = tiles[first : first + TILE_BATCH]
        images = pil_to_tensor([Image.fromarray(padded[y : y + size, x : x + size]) for x, y in batch])
        maps, tile_points = [], []
        for x, y in batch:
            if points is None:
                maps.append(np.zeros((size, size), np.float32))
            else:
                tile_points.append(points - np.array([x, y]))
                maps.append(draw_landmark_map(tile_points[-1], size, model.config.landmark_line_width))
        maps_tensor = torch.from_numpy(np.stack(maps))[:, None]
        source = None if points is None else np.stack(tile_points).astype(np.float32)
        result = model.render(
            images, maps_tensor, condition, source, source, source_modality=input_index(model, input_modality)
        )
        tile_colour = result.colour.float().cpu()
        tile_mask = torch.zeros(len(batch), 1, size, size) if result.mask is None else result.mask.float().cpu()
        for i, (x, y) in enumerate(batch):
            colour[..., y : y + size, x : x + size] += tile_colour[i] * window
            mask[..., y : y + size, x : x + size] += tile_mask[i] * window
            total[..., y : y + size, x : x + size] += window
    colour, mask = colour / total, mask / total
    colour, mask = colour[..., :height, :width], mask[..., :height, :width]
    full = (picture.height, picture.width)
    colour = F.interpolate(colour, full, mode="bilinear", align_corners=False) * 127.5 + 127.5
    mask = F.interpolate(mask, full, mode="bilinear", align_corners=False).clamp(0, 1)
    original = torch.from_numpy(np.asarray(picture.convert("RGB"), np.float32)).permute(2, 0, 1)[None]
    converted = blend(mask, original, colour)
    return Image.fromarray(converted[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy())


def changes_modality(condition: torch.Tensor, input_index: int) -> bool:
    """Whether a (1, n) condition asks for anything but the input's own modality."""
    expected = torch.zeros_like(condition)
    expected[..., input_index] = 1.0
    return not torch.allclose(condition, expected, atol=1e-6)


def is_no_op(
    aligned: AlignedFace,
    landmarks: np.ndarray,
    modality: str | int | torch.Tensor,
    model: PortraitGAN,
    input_modality: str | int | None = None,
) -> bool:
    """Whether an edit asks for nothing: the face's own landmarks and the input's modality.

    ``modality``: the target's name or index, or a (1, n) condition (:func:`modality_condition`).
    The editor then returns the photo as it is rather than a re-rendering of it.
    """
    same_points = np.allclose(np.asarray(landmarks, np.float64), aligned.landmarks, atol=1e-3)
    if not same_points:
        return False
    source = input_index(model, input_modality)
    if isinstance(modality, torch.Tensor):
        return not changes_modality(modality, source)
    return model.config.modality_index(modality) == source


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


def _achromatic_share_removed(result: Image.Image, model: PortraitGAN, condition: torch.Tensor) -> Image.Image:
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
    result = _achromatic_share_removed(result, model, condition)
    return result if converts else _as_input_colours(result, photo)


def _as_input_colours(result: Image.Image, photo: Image.Image) -> Image.Image:
    """An achromatic photo (grey pixels, whatever its mode) gives an achromatic result.

    (A grayscale file also comes back in mode ``L``: see ``faces.image_io.restore_photo_info``.)
    """
    small = np.asarray(photo.reduce(max(1, min(photo.size) // 256)), dtype=np.int16)
    if np.array_equal(small[..., 0], small[..., 1]) and np.array_equal(small[..., 1], small[..., 2]):
        return result.convert("L").convert("RGB")
    return result


#: Face sizes, as a share of the picture's shorter side, at which :meth:`FaceEditor.faces_via_cycle`
#: converts a stylized picture to a photo to find its face (portraits first).
CYCLE_FACE_SHARES = (0.45, 0.25)


def portrait_crop(result: Image.Image, alignment: Alignment) -> Image.Image:
    """The aligned portrait of an edited picture at twice the model's size (the paper's 512 px square
    for the 256 px ``lite`` model), sampled from the full-resolution result."""
    return warp_to_crop(result, alignment.resized(2 * alignment.crop_size))


class FaceEditor:
    """Edits faces in photos with one model; remembers the faces of the last few photos it saw."""

    def __init__(
        self,
        model: PortraitGAN,
        detector: LandmarkDetector | None = None,
        margin: float = DEFAULT_MARGIN,
        feather: float = DEFAULT_FEATHER,
        cache_size: int = 8,
    ) -> None:
        self.model = model
        self.detector = detector
        self.margin = margin
        self.feather = feather
        self.cache_size = cache_size
        self._faces: OrderedDict[str, list[Face]] = OrderedDict()
        self.detections = 0  # how many times a detector actually ran (cache misses)

    def faces(self, photo: Image.Image, min_face: int | None = None) -> list[Face]:
        """All faces of ``photo``, largest first; detected once per distinct photo and ``min_face``.

        ``min_face``: the smallest face (px) to search for (see ``LandmarkDetector.detect``).
        """
        min_face = check_min_face(min_face)
        key = hashlib.blake2b(f"{photo.size}{min_face}".encode() + photo.tobytes(), digest_size=16).hexdigest()
        if key in self._faces:
            self._faces.move_to_end(key)
            return self._faces[key]
        found = (self.detector or default_detector()).detect(photo, min_face)
        self.detections += 1
        self._faces[key] = found
        while len(self._faces) > self.cache_size:
            self._faces.popitem(last=False)
        return found

    def align(self, photo: ImageSource, face: int = 0, min_face: int | None = None) -> AlignedFace:
        """Load ``photo``, find its faces (cached) and align face number ``face`` (0 = largest)."""
        return self._align(load_image(photo), source_name(photo), face, min_face)

    def _align(
        self,
        picture: Image.Image,
        name: str,
        face: int,
        min_face: int | None,
        input_modality: str | int | None = None,
    ) -> AlignedFace:
        """Align face number ``face``; for a stylized input (``input_modality`` other than the model's
        first) where the detector finds no face, use the faces found on the picture converted to a photo
        by G itself (:meth:`faces_via_cycle`)."""
        found = self.faces(picture, min_face)
        config = self.model.config
        if not found and input_modality is not None and input_index(self.model, input_modality) != 0:
            found = self.faces_via_cycle(picture, input_modality, min_face)
        chosen = select_face(found, face, name)
        return align_face(picture, chosen, config.image_size, self.margin)

    def faces_via_cycle(
        self, picture: Image.Image, input_modality: str | int, min_face: int | None = None
    ) -> list[Face]:
        """Faces of a stylized picture found through the model's own cycle (issue #12): G converts the
        whole picture from ``input_modality`` to a photo (:func:`convert_picture`, no landmarks), and
        the detector runs on that. The paper notes that its model lets landmarks be extracted on
        other modalities this way. The face's scale is unknown before detection, so G runs at the
        scales of :data:`CYCLE_FACE_SHARES` (the face's share of the picture's shorter side) until a
        face is found; returns [] when none is. The faces' coordinates are the picture's.
        """
        config = self.model.config
        condition = modality_condition(self.model, config.modalities[0], input_modality, 1.0)
        # The aligned crop's landmark box spans 1 / (1 + 2 * margin) of the crop (faces.alignment).
        face_in_crop = config.image_size / (1.0 + 2.0 * self.margin)
        for share in CYCLE_FACE_SHARES:
            scale = face_in_crop / (share * min(picture.size))
            as_photo = convert_picture(self.model, picture, scale, condition, None, input_modality)
            found = self.faces(as_photo, min_face)
            if found:
                return found
        return []

    def edit(
        self,
        photo: ImageSource,
        *,
        modality: str | int | None = None,
        face: int = 0,
        reference: ImageSource | None = None,
        landmarks: np.ndarray | None = None,
        moves: Mapping[int, tuple[float, float]] | None = None,
        min_face: int | None = None,
        reference_strength: float = 1.0,
        reference_parts: str | Sequence[str] = "all",
        paste_back: bool = True,
        modality_strength: float = 1.0,
        input_modality: str | int | None = None,
        portrait: bool = False,
        **controls: float,
    ) -> Image.Image:
        """The full-resolution photo with one face edited (or, ``paste_back=False``, the edited aligned
        crop; ``portrait=True``, the aligned portrait at twice the model's size); see :meth:`PortraitGAN.edit`."""
        check_image_source(photo, "photo")
        check_edit_arguments(
            self.model,
            modality=modality,
            face=face,
            reference=reference,
            moves=moves,
            min_face=min_face,
            input_modality=input_modality,
            portrait=portrait,
        )
        check_reference_strength(reference_strength)
        reference_part_indices(reference_parts)
        condition = modality_condition(self.model, modality, input_modality, modality_strength)
        expression = ExpressionControls.from_dict(controls)
        target_points = None if landmarks is None else select_target_landmarks(landmarks, face)
        picture, info = load_photo(photo)
        name = source_name(photo)
        if info.frames > 1:
            warnings.warn(frames_note(name, info), UserWarning, stacklevel=3)
        aligned = self._align(picture, name, face, min_face, input_modality)
        reference_points = self.align(reference, 0, min_face).landmarks if reference is not None else None
        target = target_landmarks(
            aligned,
            expression,
            reference=reference_points,
            landmarks=target_points,
            moves=moves,
            reference_strength=reference_strength,
            reference_parts=reference_parts,
        )
        source_index = input_index(self.model, input_modality)
        converts = changes_modality(condition, source_index)
        if is_no_op(aligned, target, condition, self.model, source_index):
            if not paste_back:
                return aligned.crop.copy()
            result = aligned.photo
        else:
            rendering = render(self.model, aligned, target, condition, source_index)
            if not paste_back:
                return _achromatic_share_removed(rendering.crop, self.model, condition)
            background = None
            if converts:
                background = convert_picture(
                    self.model, aligned.photo, aligned.alignment.scale, condition, aligned.face.landmarks, source_index
                )
            result = compose(aligned.photo, aligned.alignment, rendering, self.feather, background)
        result = finish_colours(result, aligned.photo, self.model, condition, converts)
        if portrait:
            return portrait_crop(result, aligned.alignment)
        return restore_photo_info(result, info)

    def edit_many(self, photos: Iterable[ImageSource], **options: object) -> Iterator[EditOutcome]:
        """Edit every photo of ``photos`` with the same ``options`` (those of :meth:`edit`), one by one.

        The options are checked at once (``TypeError``/``ValueError`` naming the bad one, before any
        photo). Returns an iterator of one :class:`EditOutcome` per photo, in order: the result, or
        the error that stopped that photo (a :class:`PortraitGANError`, ``ValueError``,
        ``TypeError`` or ``OSError``) while the others go on. Warnings (e.g. dropped animation
        frames) are collected per photo into the outcome instead of being emitted.
        """
        if isinstance(photos, (str, bytes, bytearray, Image.Image, np.ndarray)) or not isinstance(photos, Iterable):
            raise TypeError(f"photos must be an iterable of photos (paths, ...), got {type(photos).__name__}")
        check_edit_arguments(self.model, **{k: v for k, v in options.items() if k in _CHECKED_OPTIONS})
        if "modality_strength" in options:
            check_modality_strength(options["modality_strength"])
        ExpressionControls.from_dict({k: v for k, v in options.items() if k not in _EDIT_OPTIONS})
        if options.get("landmarks") is not None:
            select_target_landmarks(options["landmarks"], options.get("face", 0))  # type: ignore[arg-type]
        return self._edit_each(photos, options)

    def _edit_each(self, photos: Iterable[ImageSource], options: dict[str, object]) -> Iterator[EditOutcome]:
        for photo in photos:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    result = self.edit(photo, **options)  # type: ignore[arg-type]
                except (PortraitGANError, ValueError, TypeError, OSError) as error:
                    image, failure = None, error
                else:
                    image, failure = result, None
            notes = []
            for caught_warning in caught:  # the user's warnings go into the outcome, others pass on
                if issubclass(caught_warning.category, UserWarning):
                    notes.append(str(caught_warning.message))
                else:
                    warnings.warn_explicit(
                        caught_warning.message, caught_warning.category, caught_warning.filename, caught_warning.lineno
                    )
            yield EditOutcome(photo, image, failure, tuple(notes))


_EDIT_OPTIONS = (
    "modality",
    "modality_strength",
    "input_modality",
    "portrait",
    "face",
    "reference",
    "landmarks",
    "moves",
    "min_face",
    "reference_strength",
    "reference_parts",
    "paste_back",
)
_CHECKED_OPTIONS = ("modality", "face", "reference", "moves", "min_face", "input_modality", "portrait")


@dataclass(frozen=True)
class EditOutcome:
    """One photo of :meth:`FaceEditor.edit_many`: ``image`` on success, else the ``error``."""

    source: ImageSource
    image: Image.Image | None
    error: Exception | None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


def frames_note(name: str, info: PhotoInfo) -> str:
    """The warning for an animated input: only frame 0 is edited, the other frames are dropped."""
    return (
        f"{name} has {info.frames} frames: only frame 0 was edited, "
        f"the other {info.frames - 1} are dropped from the result"
    )


def check_edit_arguments(
    model: PortraitGAN,
    *,
    modality: object = None,
    face: object = 0,
    reference: object = None,
    moves: object = None,
    min_face: object = None,
    input_modality: object = None,
    portrait: object = False,
) -> None:
    """``TypeError``/``ValueError`` naming the first bad option of an edit (the photo is checked apart)."""
    if reference is not None:
        check_image_source(reference, "reference")
    if isinstance(face, bool) or not isinstance(face, (int, np.integer)):
        raise TypeError(f"face must be an int (0 = the largest face), got {type(face).__name__} {face!r}")
    if face < 0:
        raise ValueError(f"face must be 0 or more (0 = the largest face), got {face}")
    if modality is not None:
        if isinstance(modality, bool) or not isinstance(modality, (str, int)):
            raise TypeError(f"modality must be a name or an index, got {type(modality).__name__} {modality!r}")
        model.config.modality_index(modality)  # ValueError naming the modality and the valid ones
    if input_modality is not None:
        if isinstance(input_modality, bool) or not isinstance(input_modality, (str, int)):
            raise TypeError(
                f"input_modality must be a name or an index, got {type(input_modality).__name__} {input_modality!r}"
            )
        model.config.modality_index(input_modality)
    if not isinstance(portrait, bool):
        raise TypeError(f"portrait must be True or False, got {type(portrait).__name__} {portrait!r}")
    if moves is not None and not isinstance(moves, Mapping):
        raise TypeError(f"moves must be a mapping {{index: (x, y)}}, got {type(moves).__name__}")
    check_min_face(min_face)
