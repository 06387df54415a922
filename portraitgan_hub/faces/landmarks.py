"""68-point facial landmarks with dlib: find the model file, detect faces, fit the points.

The 68 points follow the iBUG 300-W convention. "Left" and "right" are the subject's own: the
subject's right eye (points 36-41) appears on the left of the picture.

Faces are *detected* coarse to fine: first on a copy whose longest side is at most
``detect_max_side`` (the HOG detector costs time in proportion to the pixel count and finds
portrait-sized faces just as well at 640 px), then, only if that finds nothing, on copies twice as
large each time, until a face is found, the smallest face asked for (``min_face``) is within reach, or
the pixel budget ``max_detect_pixels`` is spent. dlib's detector finds faces of about
:data:`DLIB_MIN_FACE` px in the image it is given, so a copy at scale ``s`` finds faces of
``DLIB_MIN_FACE / s`` photo pixels. The shape predictor runs on the full-resolution image, so the
points keep full precision.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from portraitgan_hub.errors import FaceIndexError, LandmarkModelNotFoundError, NoFaceError
from portraitgan_hub.faces.image_io import ImageSource, load_image, source_name
from portraitgan_hub.faces.model_files import locate_model_file

# --- the 68-point layout --------------------------------------------------------------------------
NUM_LANDMARKS = 68
JAW = range(0, 17)
RIGHT_BROW = range(17, 22)
LEFT_BROW = range(22, 27)
NOSE_BRIDGE = range(27, 31)
NOSE_BASE = range(31, 36)
RIGHT_EYE = range(36, 42)
LEFT_EYE = range(42, 48)
OUTER_LIPS = range(48, 60)
INNER_LIPS = range(60, 68)

#: Named parts in drawing order, each ``(name, indices, closed)``.
FACE_PARTS: tuple[tuple[str, range, bool], ...] = (
    ("jaw", JAW, False),
    ("right_brow", RIGHT_BROW, False),
    ("left_brow", LEFT_BROW, False),
    ("nose_bridge", NOSE_BRIDGE, False),
    ("nose_base", NOSE_BASE, False),
    ("right_eye", RIGHT_EYE, True),
    ("left_eye", LEFT_EYE, True),
    ("outer_lips", OUTER_LIPS, True),
    ("inner_lips", INNER_LIPS, True),
)


def _flip_permutation() -> tuple[int, ...]:
    """Mirror pairs of the iBUG layout, walked part by part (each listed pair is swapped)."""
    pairs: list[tuple[int, int]] = []
    pairs += [(i, 16 - i) for i in range(8)]  # jaw: 0<->16 ... 7<->9, 8 is the chin
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows: outer end <-> outer end
    pairs += [(31, 35), (32, 34)]  # nose base, 33 is the tip
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes, corner to corner
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips, 51 and 57 central
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lips, 62 and 66 central
    permutation = list(range(NUM_LANDMARKS))
    for a, b in pairs:
        permutation[a], permutation[b] = b, a
    return tuple(permutation)


#: ``mirrored[i] = flip_x(points[FLIP_PERMUTATION[i]])`` gives the landmarks of the flipped image.
FLIP_PERMUTATION: tuple[int, ...] = _flip_permutation()


def flip_landmarks(landmarks: np.ndarray, width: int) -> np.ndarray:
    """Landmarks of the horizontally flipped image of the given ``width`` (pixel-index coordinates)."""
    points = np.asarray(landmarks, dtype=np.float32)[list(FLIP_PERMUTATION)].copy()
    points[:, 0] = (width - 1) - points[:, 0]
    return points


# --- finding the model file -----------------------------------------------------------------------
LANDMARK_MODEL_FILENAME = "shape_predictor_68_face_landmarks.dat"
LANDMARK_MODEL_ENV = "PORTRAITGAN_LANDMARK_MODEL"
#: Hugging Face Hub repository holding dlib's 68-point model, the last place searched.
LANDMARK_MODEL_HUB_REPO = "public-data/dlib_face_landmark_model"


def check_landmarks(landmarks: np.ndarray, name: str = "") -> np.ndarray:
    """``landmarks`` as a float64 ``(68, 2)`` array, or a ValueError saying what is wrong with them.

    What is not an array of numbers at all is a ``TypeError`` naming the landmarks.
    """
    label = f"{name} landmarks" if name else "landmarks"
    try:
        points = np.asarray(landmarks, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{label} must be a ({NUM_LANDMARKS}, 2) array of numbers, got {type(landmarks).__name__}"
        ) from None
    if points.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"{label} must be ({NUM_LANDMARKS}, 2), got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError(f"{label} contain NaN or infinity")
    return points


def find_landmark_model(path: str | os.PathLike | None = None) -> Path:
    """Locate dlib's 68-point shape predictor file.

    Searched in order: ``path``; the file named by ``$PORTRAITGAN_LANDMARK_MODEL``; the copy inside
    the ``face_recognition_models`` package (found without importing it); a download from the
    Hugging Face Hub repository :data:`LANDMARK_MODEL_HUB_REPO`. An explicit ``path`` that does not
    exist is an error at once rather than a silent fall-back to another model.
    """
    return locate_model_file(
        LANDMARK_MODEL_FILENAME,
        path=path,
        env_var=LANDMARK_MODEL_ENV,
        error=LandmarkModelNotFoundError,
        hub_repo=LANDMARK_MODEL_HUB_REPO,
    )


# --- dlib models, loaded once per process ---------------------------------------------------------
@functools.cache
def _shape_predictor(path: str):
    import dlib

    return dlib.shape_predictor(path)


@functools.lru_cache(maxsize=1)
def _face_detector():
    import dlib

    return dlib.get_frontal_face_detector()


# --- detection ------------------------------------------------------------------------------------
@dataclass
class Face:
    """One detected face in full-resolution pixel coordinates of the image it was found in."""

    #: ``(left, top, right, bottom)``, right and bottom exclusive; may extend past the image border.
    box: tuple[int, int, int, int]
    #: ``(68, 2)`` float32 ``(x, y)``; integer values are pixel centres.
    landmarks: np.ndarray

    @property
    def area(self) -> int:
        left, top, right, bottom = self.box
        return max(0, right - left) * max(0, bottom - top)


#: The smallest face box (px) dlib's HOG detector finds reliably in the image it is given (80x80 window).
DLIB_MIN_FACE = 80
#: Default pixel budget of the largest detection copy: about 0.3 s of HOG on a 2-core CPU, so a
#: 12 MP photo without a face is given up on well under 1 s (``benchmarks/detection_time.py``).
DEFAULT_MAX_DETECT_PIXELS = 2_000_000


@dataclass(frozen=True)
class DetectionLevel:
    """One copy of the photo that the face detector ran on."""

    size: tuple[int, int]  # (width, height) of the copy
    scale: float  # copy pixels per photo pixel

    @property
    def min_face(self) -> int:
        """The smallest face (box side, photo pixels) this level can find."""
        return math.ceil(DLIB_MIN_FACE / self.scale)


class Detection(list):
    """The faces found (a list, largest first), and how hard the detector looked for them."""

    def __init__(self, faces: list[Face], levels: list[DetectionLevel]) -> None:
        super().__init__(faces)
        self.levels = levels

    @property
    def smallest_face_searched(self) -> int:
        """The smallest face size (px, photo pixels) the finest level could find."""
        return min(level.min_face for level in self.levels) if self.levels else DLIB_MIN_FACE

    __eq__ = list.__eq__
    __hash__ = None  # type: ignore[assignment]


def check_min_face(min_face: object, name: str = "min_face") -> int | None:
    """``min_face`` as an int (px) or None; ``TypeError``/``ValueError`` naming ``name`` otherwise."""
    if min_face is None:
        return None
    if isinstance(min_face, bool) or not isinstance(min_face, (int, np.integer)):
        raise TypeError(f"{name} must be an int (pixels) or None, got {type(min_face).__name__} {min_face!r}")
    if min_face < 1:
        raise ValueError(f"{name} must be at least 1 pixel, got {min_face}")
    return int(min_face)


class LandmarkDetector:
    """dlib's HOG frontal face detector plus its 68-point shape predictor.

    ``detect_max_side``: longest side (px) of the first, coarsest detection copy.
    ``max_detect_pixels``: pixel budget of the largest copy tried when no face is found at first;
    an explicit ``min_face`` may go past it (the caller asked for the cost).
    ``upsample`` > 0 makes dlib look for smaller faces in every copy (each step doubles the copy), at
    about four times the cost per step.
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        detect_max_side: int = 640,
        upsample: int = 0,
        max_detect_pixels: int = DEFAULT_MAX_DETECT_PIXELS,
    ) -> None:
        if detect_max_side < 32:
            raise ValueError(f"detect_max_side must be at least 32, got {detect_max_side}")
        if upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        if max_detect_pixels < 1:
            raise ValueError(f"max_detect_pixels must be positive, got {max_detect_pixels}")
        self.model_path = find_landmark_model(model_path)
        self.detect_max_side = int(detect_max_side)
        self.upsample = int(upsample)
        self.max_detect_pixels = int(max_detect_pixels)

    def levels(self, size: tuple[int, int], min_face: int | None = None) -> list[DetectionLevel]:
        """The detection copies tried, coarse to fine, for a photo of ``size`` (width, height).

        Scales double from the first copy (longest side ``detect_max_side``, never enlarged) up to
        full resolution or the pixel budget, whichever comes first. With ``min_face`` the ladder
        stops as soon as a level reaches faces that small, and goes on past the budget (and past
        full resolution, by enlarging) when that is what it takes.
        """
        width, height = size
        min_face = check_min_face(min_face)
        reach = DLIB_MIN_FACE / (2**self.upsample)  # face size (copy px) dlib finds with upsampling
        scale = min(1.0, self.detect_max_side / max(width, height))
        if min_face is not None:  # a copy that finds min_face is enough, even a coarser one
            scale = min(scale, max(reach / min_face, 16 / max(width, height)))
        budget_scale = min(1.0, math.sqrt(self.max_detect_pixels / (width * height)))
        wanted = None if min_face is None else reach / min_face
        last = max(budget_scale, scale) if wanted is None else wanted
        levels: list[DetectionLevel] = []
        while True:
            levels.append(self._level(size, scale))
            if scale >= last:
                return levels
            # double, but jump straight to the last level when doubling would come close to it
            scale = last if scale * 2 > 0.7 * last else scale * 2

    @staticmethod
    def _level(size: tuple[int, int], scale: float) -> DetectionLevel:
        width, height = size
        # rounded up (bar float noise), so that the copy's scale is never below the one asked for
        copy = (max(1, math.ceil(width * scale - 1e-6)), max(1, math.ceil(height * scale - 1e-6)))
        return DetectionLevel(copy, copy[0] / width if width >= height else copy[1] / height)

    def detect(self, image: ImageSource, min_face: int | None = None) -> Detection:
        """All faces in ``image``, largest box first; an empty :class:`Detection` when there is none.

        ``min_face``: the smallest face (box side in photo pixels) to look for; None searches as
        small as the pixel budget allows. The result's ``levels`` and ``smallest_face_searched``
        say how hard it looked. Raises ``TypeError``/``ValueError`` for a bad ``min_face``.
        """
        picture = load_image(image)
        import dlib

        levels = []
        rects: list = []
        for level in self.levels(picture.size, min_face):
            levels.append(level)
            if level.size == picture.size:
                copy = np.asarray(picture)
            else:
                copy = np.asarray(picture.resize(level.size, Image.Resampling.BILINEAR, reducing_gap=2.0))
            rects = list(_face_detector()(copy, self.upsample))
            if rects:
                sx, sy = picture.width / level.size[0], picture.height / level.size[1]
                break
        predictor = _shape_predictor(str(self.model_path))
        pixels = np.asarray(picture) if rects else None
        faces = []
        for rect in rects:
            box = (
                round(rect.left() * sx),
                round(rect.top() * sy),
                round((rect.right() + 1) * sx),
                round((rect.bottom() + 1) * sy),
            )
            shape = predictor(pixels, dlib.rectangle(box[0], box[1], box[2] - 1, box[3] - 1))
            points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(NUM_LANDMARKS)], np.float32)
            faces.append(Face(box=box, landmarks=points))
        faces.sort(key=lambda face: face.area, reverse=True)
        return Detection(faces, levels)

    def landmarks(self, image: ImageSource, face: int = 0, min_face: int | None = None) -> np.ndarray:
        """The ``(68, 2)`` landmarks of face number ``face`` (0 = the largest) in ``image``."""
        return select_face(self.detect(image, min_face), face, source_name(image)).landmarks


def no_face_message(name: str, faces: list[Face]) -> str:
    """The one-line "no face" reason, with the smallest face size searched for when it is known."""
    message = f"no face found in {name}: use a frontal, well-lit photo"
    if isinstance(faces, Detection) and faces.levels:
        message += (
            f" (searched for faces of {faces.smallest_face_searched} px and larger; "
            "to look for smaller ones set min_face= / --min-face PX)"
        )
    return message


def select_face(faces: list[Face], index: int, name: str) -> Face:
    """``faces[index]``, or :class:`NoFaceError` / :class:`FaceIndexError` naming the image ``name``.

    ``index`` must be an int (``TypeError`` naming ``face`` otherwise).
    """
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"face must be an int (0 = the largest face), got {type(index).__name__} {index!r}")
    if not faces:
        raise NoFaceError(no_face_message(name, faces))
    if not 0 <= index < len(faces):
        raise FaceIndexError(
            f"face index {index} is out of range: {name} has {len(faces)} face"
            f"{'s' if len(faces) != 1 else ''} (valid: 0..{len(faces) - 1})"
        )
    return faces[index]


@functools.lru_cache(maxsize=1)
def default_detector() -> LandmarkDetector:
    """One shared :class:`LandmarkDetector` with default settings (created on first use)."""
    return LandmarkDetector()
