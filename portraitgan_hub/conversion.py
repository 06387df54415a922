"""Whole-picture modality conversion: a change of modality converts everything around the face too.

Not in the paper, which converts only its aligned crop. :func:`convert_picture` runs G over the photo
at the face's training scale in overlapping model-size tiles, blended with linear ramps over the
overlap (as tiled super-resolution and tiled diffusion decoders do), each tile carrying the
landmarks that fall inside it; G was trained on such windows of wider context crops
(``train.prepare``, ``train/dataset.py``). The editor then composes the face, with its expression
edit, on top of the converted picture (:func:`portraitgan_hub.composition.compose`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from portraitgan_hub.composition import blend
from portraitgan_hub.faces.landmark_map import draw_landmark_map
from portraitgan_hub.image_tensors import pil_to_tensor
from portraitgan_hub.stages import input_index

if TYPE_CHECKING:
    from portraitgan_hub.model import PortraitGAN


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
    """For a change of modality: the whole ``picture`` converted by G.

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
        result = model.infer(
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
