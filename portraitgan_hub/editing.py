"""The straight path of an edit: photo -> faces -> landmarks -> edited landmarks -> map -> G -> paste back.

Each stage is a plain function (:func:`align_face`, :func:`target_landmarks`, :func:`render_crop`,
:func:`paste_back`) that a test can call alone; :class:`FaceEditor` strings them together and
caches face detection per photo, so that moving a slider does not detect the face again.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from portraitgan_hub.errors import PortraitGANError
from portraitgan_hub.faces.alignment import (
    DEFAULT_FEATHER,
    DEFAULT_MARGIN,
    Alignment,
    estimate_alignment,
    paste_back,
    warp_to_crop,
)
from portraitgan_hub.faces.expressions import ExpressionControls, move_points, transfer_expression
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
    Explicit ``landmarks`` that lie mostly outside this face's crop are a ``ValueError`` (they were
    found on another face or another photo).
    """
    points = aligned.landmarks
    if landmarks is not None:
        points = aligned.alignment.to_crop(check_landmarks(landmarks, "target"))
        check_inside_crop(points, aligned)
    if reference is not None:
        points = transfer_expression(points, reference)
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


def render_crop(model: PortraitGAN, aligned: AlignedFace, landmarks: np.ndarray, modality: str | int) -> Image.Image:
    """Stages 4-5: draw the landmark map L of the target points and run G(crop | L, c) on it."""
    size = model.config.image_size
    landmark_map = draw_landmark_map(landmarks, size, model.config.landmark_line_width)
    return model.generate(aligned.crop, landmark_map, modality)


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
        **controls: float,
    ) -> Image.Image:
        """The full-resolution photo with one face edited; see :meth:`PortraitGAN.edit`."""
        check_image_source(photo, "photo")
        check_edit_arguments(
            self.model, modality=modality, face=face, reference=reference, moves=moves, min_face=min_face
        )
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
        )
        target_modality = self.model.config.modalities[0] if modality is None else modality
        crop = render_crop(self.model, aligned, target, target_modality)
        return restore_photo_info(paste_back(aligned.photo, crop, aligned.alignment, self.feather), info)

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


_EDIT_OPTIONS = ("modality", "face", "reference", "landmarks", "moves", "min_face")
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
