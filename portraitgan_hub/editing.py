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
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

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


def render(model: PortraitGAN, aligned: AlignedFace, landmarks: np.ndarray, modality: str | int) -> Rendering:
    """Stages 4-5: the landmark map L and (warp-guided G) the source -> target flow, then G(crop | L, c).

    ``landmarks``: the (68, 2) target points in crop pixels (:func:`target_landmarks`).
    """
    size = model.config.image_size
    landmark_map = torch.from_numpy(draw_landmark_map(landmarks, size, model.config.landmark_line_width))
    result = model.render(pil_to_tensor(aligned.crop), landmark_map[None, None], modality, aligned.landmarks, landmarks)
    mask = None if result.mask is None else result.mask.float().cpu()
    displacement = None
    if result.guidance is not None and result.guidance.displacement is not None:
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


def _as_input_colours(result: Image.Image, photo: Image.Image) -> Image.Image:
    """An achromatic photo (grey pixels, whatever its mode) gives an achromatic result.

    (A grayscale file also comes back in mode ``L``: see ``faces.image_io.restore_photo_info``.)
    """
    small = np.asarray(photo.reduce(max(1, min(photo.size) // 256)), dtype=np.int16)
    if np.array_equal(small[..., 0], small[..., 1]) and np.array_equal(small[..., 1], small[..., 2]):
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

    def _align(self, picture: Image.Image, name: str, face: int, min_face: int | None) -> AlignedFace:
        chosen = select_face(self.faces(picture, min_face), face, name)
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
        min_face: int | None = None,
        reference_strength: float = 1.0,
        reference_parts: str | Sequence[str] = "all",
        paste_back: bool = True,
        **controls: float,
    ) -> Image.Image:
        """The full-resolution photo with one face edited (or, ``paste_back=False``, the edited aligned
        crop); see :meth:`PortraitGAN.edit`."""
        check_image_source(photo, "photo")
        check_edit_arguments(
            self.model, modality=modality, face=face, reference=reference, moves=moves, min_face=min_face
        )
        check_reference_strength(reference_strength)
        reference_part_indices(reference_parts)
        expression = ExpressionControls.from_dict(controls)
        target_points = None if landmarks is None else select_target_landmarks(landmarks, face)
        picture, info = load_photo(photo)
        name = source_name(photo)
        if info.frames > 1:
            warnings.warn(frames_note(name, info), UserWarning, stacklevel=3)
        aligned = self._align(picture, name, face, min_face)
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
        target_modality = self.model.config.modalities[0] if modality is None else modality
        if is_no_op(aligned, target, target_modality, self.model):
            if not paste_back:
                return aligned.crop.copy()
            return restore_photo_info(_as_input_colours(aligned.photo, aligned.photo), info)
        rendering = render(self.model, aligned, target, target_modality)
        if not paste_back:
            return rendering.crop
        result = compose(aligned.photo, aligned.alignment, rendering, self.feather)
        return restore_photo_info(_as_input_colours(result, aligned.photo), info)

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
    "face",
    "reference",
    "landmarks",
    "moves",
    "min_face",
    "reference_strength",
    "reference_parts",
    "paste_back",
)
_CHECKED_OPTIONS = ("modality", "face", "reference", "moves", "min_face")


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
    if moves is not None and not isinstance(moves, Mapping):
        raise TypeError(f"moves must be a mapping {{index: (x, y)}}, got {type(moves).__name__}")
    check_min_face(min_face)
