"""Identity descriptors with dlib's face-recognition ResNet: is an edited face still the same person?

dlib's ``dlib_face_recognition_resnet_model_v1`` maps a face, aligned by its landmarks onto a
150x150 chip, to a 128-d descriptor. Two faces are the same person when the Euclidean distance of
their descriptors is below :data:`SAME_PERSON_THRESHOLD` (0.6, dlib's own threshold; about 99.4 %
accuracy on LFW). The chip is cut with the 68 points of ``faces.landmarks``, so callers that already
have landmarks (a prepared crop, a re-detected output) need no second detection.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from portraitgan_hub.errors import FaceRecognitionModelNotFoundError
from portraitgan_hub.faces.image_io import ImageSource, load_image
from portraitgan_hub.faces.landmarks import check_landmarks
from portraitgan_hub.faces.model_files import locate_model_file

FACE_RECOGNITION_MODEL_FILENAME = "dlib_face_recognition_resnet_model_v1.dat"
FACE_RECOGNITION_MODEL_ENV = "PORTRAITGAN_FACE_RECOGNITION_MODEL"
#: dlib's distance below which two descriptors are taken to be the same person.
SAME_PERSON_THRESHOLD = 0.6
DESCRIPTOR_SIZE = 128


def find_face_recognition_model(path: str | os.PathLike | None = None) -> Path:
    """Locate ``dlib_face_recognition_resnet_model_v1.dat``.

    Searched in order, like :func:`~portraitgan_hub.faces.landmarks.find_landmark_model`: ``path``
    (an error at once if it does not exist); the file named by ``$PORTRAITGAN_FACE_RECOGNITION_MODEL``;
    the copy inside the ``face_recognition_models`` package (found without importing it).
    """
    return locate_model_file(
        FACE_RECOGNITION_MODEL_FILENAME,
        path=path,
        env_var=FACE_RECOGNITION_MODEL_ENV,
        error=FaceRecognitionModelNotFoundError,
    )


@functools.cache
def _recognition_model(path: str):
    import dlib

    return dlib.face_recognition_model_v1(path)


def face_descriptor(
    image: ImageSource, landmarks: np.ndarray, model_path: str | os.PathLike | None = None
) -> np.ndarray:
    """The 128-d descriptor (float64) of the face whose 68 ``landmarks`` (image pixels) are given.

    ``image``: anything :func:`~portraitgan_hub.faces.image_io.load_image` reads. The landmarks
    come from ``faces.landmarks`` (or a prepared manifest); dlib cuts its aligned chip from them.
    """
    import dlib

    points = check_landmarks(landmarks)
    pixels = np.ascontiguousarray(np.asarray(load_image(image), dtype=np.uint8))
    rounded = np.rint(points).astype(int)
    (left, top), (right, bottom) = rounded.min(axis=0), rounded.max(axis=0)
    shape = dlib.full_object_detection(
        dlib.rectangle(int(left), int(top), int(right), int(bottom)),
        [dlib.point(int(x), int(y)) for x, y in rounded],
    )
    model = _recognition_model(str(find_face_recognition_model(model_path)))
    return np.asarray(model.compute_face_descriptor(pixels, shape), dtype=np.float64)


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance of two descriptors: dlib's convention, same person below 0.6."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))
