"""The straight path of an edit: photo -> faces -> landmarks -> edited landmarks -> map -> G -> paste back.

Each stage is a plain function (:func:`align_face`, :func:`target_landmarks`, :func:`render_crop`,
:func:`paste_back`) that a test can call alone; :class:`FaceEditor` strings them together and
caches face detection per photo, so that moving a slider does not detect the face again.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from portraitgan_hub.faces.alignment import (
    DEFAULT_FEATHER,
    DEFAULT_MARGIN,
    Alignment,
    estimate_alignment,
    warp_to_crop,
)
from portraitgan_hub.faces.alignment import paste_back as paste_back_crop
from portraitgan_hub.faces.expressions import (
    ExpressionControls,
    check_reference_strength,
    move_points,
    reference_part_indices,
    transfer_expression,
)
from portraitgan_hub.faces.image_io import ImageSource, load_image, source_name
from portraitgan_hub.faces.landmark_map import draw_landmark_map
from portraitgan_hub.faces.landmarks import Face, LandmarkDetector, default_detector, select_face

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
    for a strength out of range or an unknown part.
    """
    points = aligned.landmarks if landmarks is None else aligned.alignment.to_crop(np.asarray(landmarks))
    if reference is not None:
        points = transfer_expression(points, reference, strength=reference_strength, parts=reference_parts)
    if controls is not None:
        points = controls.apply(points)
    if moves:
        points = move_points(points, moves)
    return np.asarray(points, dtype=np.float32)


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
        reference_strength: float = 1.0,
        reference_parts: str | Sequence[str] = "all",
        paste_back: bool = True,
        **controls: float,
    ) -> Image.Image:
        """The full-resolution photo with one face edited (or, ``paste_back=False``, the edited aligned
        crop); see :meth:`PortraitGAN.edit`."""
        check_reference_strength(reference_strength)
        reference_part_indices(reference_parts)
        expression = ExpressionControls.from_dict(controls)
        aligned = self.align(photo, face)
        reference_points = self.align(reference).landmarks if reference is not None else None
        target = target_landmarks(
            aligned,
            expression,
            reference=reference_points,
            landmarks=landmarks,
            moves=moves,
            reference_strength=reference_strength,
            reference_parts=reference_parts,
        )
        target_modality = self.model.config.modalities[0] if modality is None else modality
        crop = render_crop(self.model, aligned, target, target_modality)
        if not paste_back:
            return crop
        return paste_back_crop(aligned.photo, crop, aligned.alignment, self.feather)
