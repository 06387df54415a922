"""Similarity alignment of a face onto a canonical square crop, and pasting an edited crop back.

Coordinates are pixel-index coordinates everywhere: ``(0, 0)`` is the centre of the top-left
pixel, so a crop of size ``S`` covers ``[-0.5, S - 0.5]`` on both axes.

The canonical face is the mean neutral shape of the 72 London training faces (``data/mean_face_68.json``),
stored in "eye units": origin between the two eye centres, x from the subject's right eye to the
left eye, y down, 1 = the distance between the eye centres. It is fitted to a face with the points
that expressions hardly move (eyes and nose), so a smile or an open mouth does not shift the crop.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from portraitgan_hub.faces.image_io import ImageSource, load_image
from portraitgan_hub.faces.landmarks import LEFT_EYE, NOSE_BASE, NOSE_BRIDGE, NUM_LANDMARKS, RIGHT_EYE, check_landmarks

DATA_DIR = Path(__file__).resolve().parent / "data"
TEMPLATE_FILE = DATA_DIR / "mean_face_68.json"

#: Points used to fit the similarity transform: eyes and nose, which expressions barely move.
ALIGNMENT_INDICES: tuple[int, ...] = tuple([*NOSE_BRIDGE, *NOSE_BASE, *RIGHT_EYE, *LEFT_EYE])

#: Padding around the template's landmark box on each side, as a fraction of the box's larger side.
#: 0.4 gives a crop of about four eye distances, the size of an FFHQ crop.
DEFAULT_MARGIN = 0.4
#: Share of the vertical padding placed above the brows. The 68 points stop at the brows, so the
#: forehead and some hair need most of the room; the rest keeps the chin clear of the crop border
#: (and of the composition's feather band) when the mouth opens.
TOP_PADDING_SHARE = 0.65
#: Width of the composition's blending ramp (:func:`feather_mask`), as a fraction of the crop size.
DEFAULT_FEATHER = 0.08
#: Pixels at the crop border that :func:`feather_mask` keeps at exactly 0, so that resampling near
#: the border (bicubic reads 2 pixels each way) never blends in the fill outside the crop.
_MASK_BORDER_PX = 2.0


@functools.lru_cache(maxsize=1)
def _template_eye_units() -> np.ndarray:
    data = json.loads(TEMPLATE_FILE.read_text(encoding="utf-8"))
    points = np.asarray(data["points"], dtype=np.float64)
    if points.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"{TEMPLATE_FILE} holds {points.shape} points, expected ({NUM_LANDMARKS}, 2)")
    points.setflags(write=False)
    return points


def mean_face() -> np.ndarray:
    """The canonical mean face, ``(68, 2)`` float64 in eye units (see the module docstring)."""
    return _template_eye_units().copy()


def template_in_crop(crop_size: int, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Where the canonical face's 68 points lie in a ``crop_size`` crop with the given ``margin``."""
    scale, offset = _template_placement(crop_size, margin)
    return _template_eye_units() * scale + offset


def _template_placement(crop_size: int, margin: float) -> tuple[float, np.ndarray]:
    """Scale and offset taking eye units to crop pixels."""
    if crop_size < 8:
        raise ValueError(f"crop_size must be at least 8, got {crop_size}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    points = _template_eye_units()
    low, high = points.min(axis=0), points.max(axis=0)
    extent = high - low
    side = float(extent.max()) * (1.0 + 2.0 * margin)  # crop side in eye units
    left = (low[0] + high[0]) / 2.0 - side / 2.0
    top = low[1] - (side - extent[1]) * TOP_PADDING_SHARE
    scale = crop_size / side
    # Eye-unit coordinate ``left`` is the crop's left edge, at pixel-index coordinate -0.5.
    return scale, np.array([-left * scale - 0.5, -top * scale - 0.5])


# --- similarity transforms ------------------------------------------------------------------------
def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The ``(2, 3)`` rotation + uniform scale + translation that best maps ``src`` onto ``dst``.

    Least squares in closed form (Umeyama 1991); reflections are excluded.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need two matching (N>=2, 2) point sets, got {src.shape} and {dst.shape}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c**2).sum() / len(src)
    if src_var <= 1e-12:
        raise ValueError("the source points are all at one place; no transform can be fitted")
    u, sigma, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    d = np.array([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ np.diag(d) @ vt
    scale = float((sigma * d).sum() / src_var)
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` (``(..., 2)``) mapped by a ``(2, 3)`` affine matrix, as float64."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    linear_inv = np.linalg.inv(matrix[:, :2])
    return np.hstack([linear_inv, (-linear_inv @ matrix[:, 2])[:, None]])


# --- the alignment --------------------------------------------------------------------------------
@dataclass
class Alignment:
    """A similarity transform from full-resolution image pixels to a square crop's pixels."""

    #: ``(2, 3)`` affine matrix: ``crop_xy = matrix[:, :2] @ image_xy + matrix[:, 2]``.
    matrix: np.ndarray
    crop_size: int

    @property
    def inverse(self) -> np.ndarray:
        """``(2, 3)`` matrix from crop pixels back to image pixels."""
        return invert_affine(self.matrix)

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        return apply_affine(self.matrix, points)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        return apply_affine(self.inverse, points)

    def resized(self, crop_size: int) -> Alignment:
        """The same crop area sampled at another resolution (e.g. a 512 crop for a 256 model)."""
        k = crop_size / self.crop_size
        matrix = self.matrix * k
        matrix[:, 2] += 0.5 * k - 0.5  # pixel centres sit at +0.5 in continuous coordinates
        return Alignment(matrix=matrix, crop_size=int(crop_size))


def estimate_alignment(landmarks: np.ndarray, crop_size: int, margin: float = DEFAULT_MARGIN) -> Alignment:
    """Fit the canonical face (placed in a ``crop_size`` crop with ``margin``) to ``landmarks``.

    ``margin`` is the padding on each side of the canonical face's landmark box, as a fraction of
    the box's larger side; :data:`TOP_PADDING_SHARE` of the vertical padding goes above the brows.
    """
    landmarks = check_landmarks(landmarks)
    target = template_in_crop(crop_size, margin)
    indices = list(ALIGNMENT_INDICES)
    return Alignment(matrix=similarity_transform(landmarks[indices], target[indices]), crop_size=int(crop_size))


# --- warping --------------------------------------------------------------------------------------
def warp_to_crop(
    image: ImageSource,
    alignment: Alignment,
    resample: Image.Resampling = Image.Resampling.BICUBIC,
    fill: tuple[int, int, int] = (0, 0, 0),
) -> Image.Image:
    """The aligned ``crop_size`` x ``crop_size`` RGB crop of ``image``; area outside it is ``fill``.

    When the crop is much smaller than the face in the image, the image is first box-filtered by an
    integer factor (``Image.reduce``) so that the final resampling does not alias.
    """
    picture = load_image(image)
    size = alignment.crop_size
    return _warp(picture, alignment.inverse, (size, size), resample, fill)


def _warp(
    source: Image.Image,
    out_to_src: np.ndarray,
    out_size: tuple[int, int],
    resample: Image.Resampling,
    fill: tuple[int, int, int] | float,
) -> Image.Image:
    """Sample ``source`` at ``out_to_src`` (pixel-index affine) for every pixel of the output.

    Only the part of ``source`` the output can see is cropped (and reduced), so the cost follows
    the output, not the source size.
    """
    out_w, out_h = out_size
    footprint = _footprint(out_to_src, out_w, out_h)
    source_per_output = float(np.sqrt(abs(np.linalg.det(out_to_src[:, :2]))))
    factor = max(1, int(source_per_output))  # box-filter first when shrinking by 2x or more
    pad = 3 * factor + 2
    box = (
        max(0, int(np.floor(footprint[0])) - pad),
        max(0, int(np.floor(footprint[1])) - pad),
        min(source.width, int(np.ceil(footprint[2])) + pad + 1),
        min(source.height, int(np.ceil(footprint[3])) + pad + 1),
    )
    if box[0] >= box[2] or box[1] >= box[3]:
        return Image.new(source.mode, out_size, fill)
    region = source.crop(box)
    if factor > 1:
        region = region.reduce(factor)
    # Pixel index p in the full source is (p - box_origin - (factor - 1) / 2) / factor in the region.
    to_region = np.array(
        [
            [1.0 / factor, 0.0, -(box[0] + (factor - 1) / 2.0) / factor],
            [0.0, 1.0 / factor, -(box[1] + (factor - 1) / 2.0) / factor],
        ]
    )
    out_to_region = to_region[:, :2] @ out_to_src
    out_to_region[:, 2] += to_region[:, 2]
    return region.transform(out_size, Image.Transform.AFFINE, _pil_affine(out_to_region), resample, fillcolor=fill)


def _pil_affine(out_to_src: np.ndarray) -> tuple[float, ...]:
    """Pillow's AFFINE data for a pixel-index matrix: Pillow works in continuous coordinates, where
    pixel centres sit at +0.5, so the matrix is conjugated by that half-pixel shift."""
    linear = out_to_src[:, :2]
    offset = out_to_src[:, 2] + 0.5 - linear @ np.array([0.5, 0.5])
    return (linear[0, 0], linear[0, 1], offset[0], linear[1, 0], linear[1, 1], offset[1])


def _footprint(out_to_src: np.ndarray, out_w: int, out_h: int) -> tuple[float, float, float, float]:
    """Bounding box, in source pixel-index coordinates, of the output rectangle."""
    corners = np.array([[-0.5, -0.5], [out_w - 0.5, -0.5], [-0.5, out_h - 0.5], [out_w - 0.5, out_h - 0.5]])
    mapped = apply_affine(out_to_src, corners)
    return (*mapped.min(axis=0), *mapped.max(axis=0))


# --- pasting back ---------------------------------------------------------------------------------
def feather_mask(crop_size: int, feather: float = DEFAULT_FEATHER) -> np.ndarray:
    """``(crop_size, crop_size)`` float32 blend weights: 1 inside, 0 at the border.

    The weight is 1 everywhere except a ramp of ``feather * crop_size`` pixels along the border,
    where it falls smoothly (smoothstep, rounded at the corners) to exactly 0; the outermost
    2 pixels are 0 as well. ``feather = 0`` gives a hard edge.
    """
    width = float(feather) * crop_size
    if feather < 0 or width + _MASK_BORDER_PX >= crop_size / 2:
        raise ValueError(f"feather must be in [0, {(crop_size / 2 - _MASK_BORDER_PX) / crop_size:.3f}), got {feather}")
    centres = np.arange(crop_size, dtype=np.float64) + 0.5  # continuous coordinates of pixel centres
    low, high = _MASK_BORDER_PX + width, crop_size - _MASK_BORDER_PX - width
    outside = np.maximum(np.maximum(low - centres, centres - high), 0.0)
    distance = np.hypot(outside[:, None], outside[None, :])  # to the inner, fully opaque square
    if width == 0:
        return (distance == 0).astype(np.float32)
    t = np.clip(1.0 - distance / width, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)
