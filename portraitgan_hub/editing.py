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
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from portraitgan_hub.faces.alignment import (
    DEFAULT_FEATHER,
    DEFAULT_MARGIN,
    Alignment,
    estimate_alignment,
    feather_mask,
    warp_to_crop,
)
from portraitgan_hub.faces.expressions import ExpressionControls, move_points, transfer_expression
from portraitgan_hub.faces.image_io import ImageSource, load_image, source_name
from portraitgan_hub.faces.landmark_map import draw_landmark_map
from portraitgan_hub.faces.landmarks import Face, LandmarkDetector, default_detector, select_face
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
) -> np.ndarray:
    """Stage 3: the edited landmarks, in crop pixels.

    Start from ``landmarks`` (explicit target points in photo pixels) if given, else from the face's
    own; take on the expression of ``reference`` (a reference face's landmarks in crop pixels) if
    given; then apply the expression ``controls``; then move single points (``moves`` in crop pixels).
    """
    points = aligned.landmarks if landmarks is None else aligned.alignment.to_crop(np.asarray(landmarks))
    if reference is not None:
        points = transfer_expression(points, reference)
    if controls is not None:
        points = controls.apply(points)
    if moves:
        points = move_points(points, moves)
    return np.asarray(points, dtype=np.float32)


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


def render(model: PortraitGAN, aligned: AlignedFace, landmarks: np.ndarray, modality: str | int) -> Rendering:
    """Stages 4-5: the landmark map L and (warp-guided G) the source -> target flow, then G(crop | L, c).

    ``landmarks``: the (68, 2) target points in crop pixels (:func:`target_landmarks`).
    """
    size = model.config.image_size
    landmark_map = torch.from_numpy(draw_landmark_map(landmarks, size, model.config.landmark_line_width))
    result = model.render(pil_to_tensor(aligned.crop), landmark_map[None, None], modality, aligned.landmarks, landmarks)
    mask = None if result.mask is None else result.mask.float().cpu()
    displacement = None
    if result.guidance is not None and result.guidance.displacement.shape[-1] > 1:
        displacement = result.guidance.displacement.float().cpu()
    return Rendering(tensor_to_pil(result.images[0])[0], result.colour.float().cpu(), mask, displacement)


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
    photo: Image.Image, alignment: Alignment, rendering: Rendering, feather: float = DEFAULT_FEATHER
) -> Image.Image:
    """Stage 6: the photo with G's result put in at the photo's own resolution.

    Inside the crop's footprint each photo pixel p becomes ``A * photo(warp(p)) + (1 - A) * C``, with
    A and C bilinearly upsampled from the crop and the warp's flow sampled at p (the photo is never
    downsampled); this is blended into the photo with the feather ramp of
    :func:`portraitgan_hub.faces.alignment.feather_mask`, which is also 0 next to the photo's edge
    (:data:`EDGE_GUARD_PX`). Every pixel outside the footprint keeps its exact value. ``photo`` is RGB.
    """
    if alignment.crop_size != rendering.colour.shape[-1]:
        alignment = alignment.resized(rendering.colour.shape[-1])
    size = alignment.crop_size
    edges = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    corners = alignment.to_image(edges)
    left, top = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
    right = min(photo.width, int(np.ceil(corners[:, 0].max())) + 1)
    bottom = min(photo.height, int(np.ceil(corners[:, 1].max())) + 1)
    if left >= right or top >= bottom:
        return photo.copy()
    # Normalised crop coordinates of every photo pixel in the box: an affine map, built separably.
    affine = torch.from_numpy(alignment.matrix * np.array([[2.0 / size], [2.0 / size]])).float()
    affine[:, 2] += 1.0 / size - 1.0  # pixels_to_normalized of the crop position
    xs = torch.arange(left, right, dtype=torch.float32)
    ys = torch.arange(top, bottom, dtype=torch.float32)
    at = (xs[None, :, None] * affine[:, 0] + ys[:, None, None] * affine[:, 1] + affine[:, 2])[None]  # (1, h, w, 2)
    weight = F.grid_sample(_crop_weight(alignment, photo.size, feather), at, "bilinear", "zeros", align_corners=False)
    rows, cols = torch.nonzero(weight[0, 0] > 0, as_tuple=True)
    if rows.numel() == 0:
        return photo.copy()
    # Only the rows and columns that get some weight are computed.
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    at, weight = at[:, r0:r1, c0:c1], weight[:, :, r0:r1, c0:c1]
    box = (left + c0, top + r0, left + c1, top + r1)
    before = torch.from_numpy(np.asarray(photo.crop(box), dtype=np.float32)).permute(2, 0, 1)[None]
    colour = F.grid_sample(rendering.colour, at, "bilinear", "border", align_corners=False) * 127.5 + 127.5
    if rendering.mask is None:
        edited = colour
    else:
        mask = F.grid_sample(rendering.mask, at, "bilinear", "border", align_corners=False)
        warped = before
        if rendering.displacement is not None:
            warped = _warp_photo(photo, alignment, at + sample_displacement(rendering.displacement, at))
        edited = mask * warped + (1 - mask) * colour
    blended = before + (edited - before) * weight
    result = photo.copy()
    pixels = blended[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    result.paste(Image.fromarray(pixels), box[:2])
    return result


def _warp_photo(photo: Image.Image, alignment: Alignment, source: torch.Tensor) -> torch.Tensor:
    """The photo sampled (bilinear, at full resolution) at ``source`` (1, h, w, 2), normalised crop coordinates.

    Returns (1, 3, h, w) float32 in [0, 255]. Only the part of the photo the positions reach is read.
    """
    size = alignment.crop_size
    crop_points = normalized_to_pixels(source[0].double(), size, size)
    inverse = torch.from_numpy(alignment.inverse)
    points = crop_points @ inverse[:, :2].T + inverse[:, 2]  # photo pixel-index coordinates
    low = torch.clamp(points.reshape(-1, 2).min(dim=0).values.floor() - 1, min=0)
    high = points.reshape(-1, 2).max(dim=0).values.ceil() + 2
    x0, y0 = int(low[0]), int(low[1])
    x1, y1 = min(photo.width, max(x0 + 1, int(high[0]))), min(photo.height, max(y0 + 1, int(high[1])))
    x0, y0 = min(x0, x1 - 1), min(y0, y1 - 1)
    region = torch.from_numpy(np.asarray(photo.crop((x0, y0, x1, y1)), dtype=np.float32)).permute(2, 0, 1)[None]
    local = pixels_to_normalized((points - points.new_tensor([x0, y0])).float(), y1 - y0, x1 - x0)
    return F.grid_sample(region, local[None], "bilinear", "border", align_corners=False)


def is_no_op(aligned: AlignedFace, landmarks: np.ndarray, modality: str | int, model: PortraitGAN) -> bool:
    """Whether an edit asks for nothing: the face's own landmarks and the input's modality.

    The editor then returns the photo as it is rather than a re-rendering of it.
    """
    same_points = np.allclose(np.asarray(landmarks, np.float64), aligned.landmarks, atol=1e-3)
    return same_points and model.config.modality_index(modality) == 0


def _as_input_mode(result: Image.Image, photo: Image.Image, source: ImageSource) -> Image.Image:
    """A grayscale photo (mode L, or RGB with equal channels) comes back grayscale, in its own mode."""
    mode = source.mode if isinstance(source, Image.Image) else None
    if mode is None and not isinstance(source, np.ndarray):
        try:
            with Image.open(source) as opened:  # the header only, to learn the file's mode
                mode = opened.mode
        except (OSError, TypeError, ValueError, AttributeError):
            mode = None
    if mode in ("L", "I", "I;16", "F", "1"):
        return result.convert("L")
    small = np.asarray(photo.reduce(max(1, min(photo.size) // 256)), dtype=np.int16)
    if np.abs(small[..., 0] - small[..., 1]).max() == 0 and np.abs(small[..., 1] - small[..., 2]).max() == 0:
        return result.convert("L").convert("RGB")
    return result


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

    def faces(self, photo: Image.Image) -> list[Face]:
        """All faces of ``photo``, largest first; detected once per distinct photo."""
        key = hashlib.blake2b(f"{photo.size}".encode() + photo.tobytes(), digest_size=16).hexdigest()
        if key in self._faces:
            self._faces.move_to_end(key)
            return self._faces[key]
        found = (self.detector or default_detector()).detect(photo)
        self.detections += 1
        self._faces[key] = found
        while len(self._faces) > self.cache_size:
            self._faces.popitem(last=False)
        return found

    def align(self, photo: ImageSource, face: int = 0) -> AlignedFace:
        """Load ``photo``, find its faces (cached) and align face number ``face`` (0 = largest)."""
        picture = load_image(photo)
        chosen = select_face(self.faces(picture), face, source_name(photo))
        return align_face(picture, chosen, self.model.config.image_size, self.margin)

    def edit(
        self,
        photo: ImageSource,
        *,
        modality: str | int | None = None,
        face: int = 0,
        reference: ImageSource | None = None,
        landmarks: np.ndarray | None = None,
        moves: Mapping[int, tuple[float, float]] | None = None,
        **controls: float,
    ) -> Image.Image:
        """The full-resolution photo with one face edited; see :meth:`PortraitGAN.edit`."""
        aligned = self.align(photo, face)
        reference_points = self.align(reference).landmarks if reference is not None else None
        target = target_landmarks(
            aligned,
            ExpressionControls.from_dict(controls),
            reference=reference_points,
            landmarks=landmarks,
            moves=moves,
        )
        target_modality = self.model.config.modalities[0] if modality is None else modality
        if is_no_op(aligned, target, target_modality, self.model):
            return _as_input_mode(aligned.photo.copy(), aligned.photo, photo)
        rendering = render(self.model, aligned, target, target_modality)
        result = compose(aligned.photo, aligned.alignment, rendering, self.feather)
        return _as_input_mode(result, aligned.photo, photo)
