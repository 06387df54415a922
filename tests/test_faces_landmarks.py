from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from portraitgan_hub.errors import FaceIndexError, LandmarkModelNotFoundError, NoFaceError
from portraitgan_hub.faces import landmarks as lm
from portraitgan_hub.faces import model_files
from portraitgan_hub.faces.landmarks import (
    FLIP_PERMUTATION,
    LANDMARK_MODEL_ENV,
    LANDMARK_MODEL_HUB_REPO,
    LandmarkDetector,
    default_detector,
    find_landmark_model,
    flip_landmarks,
)


def inter_ocular(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[36:42].mean(axis=0) - points[42:48].mean(axis=0)))


def assert_plausible_face(points: np.ndarray) -> None:
    assert points.shape == (68, 2) and points.dtype == np.float32
    eyes_y = points[36:48, 1].mean()
    nose_tip_y = points[30, 1]
    mouth_y = points[48:68, 1].mean()
    chin_y = points[8, 1]
    assert eyes_y < nose_tip_y < mouth_y < chin_y
    assert points[36:42, 0].mean() < points[42:48, 0].mean()  # subject's right eye on the image left
    assert points[:, 1].min() >= points[17:27, 1].min() - 1  # nothing above the brows


@pytest.fixture(scope="module")
def detector() -> LandmarkDetector:
    return default_detector()


@pytest.mark.parametrize("identity", ["001", "005"])
@pytest.mark.parametrize("expression", ["neutral", "smiling"])
def test_real_photos_have_one_plausible_face(detector, london_photo, identity, expression):
    faces = detector.detect(london_photo(identity, expression))
    assert len(faces) == 1
    points = faces[0].landmarks
    assert_plausible_face(points)
    left, top, right, bottom = faces[0].box
    inside = (points[:, 0] > left - 0.2 * (right - left)) & (points[:, 0] < right + 0.2 * (right - left))
    assert inside.all()


def test_full_size_photo_detection_and_speed(detector, full_size_photo):
    detector.detect(full_size_photo)  # warm up: load the models
    times = []
    for _ in range(3):
        start = time.perf_counter()
        faces = detector.detect(full_size_photo)
        times.append(time.perf_counter() - start)
    assert len(faces) == 1
    left, _, right, _ = faces[0].box
    assert 350 < right - left < 650  # the set's README: faces are about 465 px wide at 1350 px
    assert_plausible_face(faces[0].landmarks)
    assert float(np.median(times)) < 2.0, times  # ~0.06 s on a 2-core CPU; generous for slow CI


def test_downscaled_detection_matches_full_resolution_detection(full_size_photo):
    fast = LandmarkDetector(detect_max_side=640).landmarks(full_size_photo)
    full = LandmarkDetector(detect_max_side=4000).landmarks(full_size_photo)
    error = np.linalg.norm(fast - full, axis=1).mean()
    assert error < 0.02 * inter_ocular(full), error


def test_flip_permutation_is_a_mirror_involution():
    permutation = np.array(FLIP_PERMUTATION)
    assert sorted(permutation) == list(range(68))
    assert (permutation[permutation] == np.arange(68)).all()
    assert permutation[8] == 8 and permutation[30] == 30 and permutation[36] == 45 and permutation[48] == 54


def test_flip_permutation_matches_the_flipped_photo(detector, london_photo):
    path = london_photo("005", "smiling")
    image = Image.open(path)
    points = detector.landmarks(path)
    mirrored = detector.landmarks(ImageOps.mirror(image))
    predicted = flip_landmarks(points, image.width)
    error = np.linalg.norm(predicted - mirrored, axis=1).mean()
    assert error < 0.03 * inter_ocular(points), error


def test_no_face(detector):
    gray = Image.new("RGB", (400, 300), (128, 128, 128))
    assert detector.detect(gray) == []
    with pytest.raises(NoFaceError, match="no face found in <PIL image>: use a frontal, well-lit photo"):
        detector.landmarks(gray)


def test_two_faces_largest_first(detector, london_photo):
    canvas = Image.new("RGB", (1100, 640), (200, 200, 200))
    canvas.paste(Image.open(london_photo("001", "smiling")).resize((400, 400)), (0, 120))
    canvas.paste(Image.open(london_photo("005", "neutral")), (460, 0))
    faces = detector.detect(canvas)
    assert len(faces) == 2
    assert faces[0].area > faces[1].area
    assert faces[0].box[0] > 460 and faces[1].box[2] < 420
    assert np.array_equal(detector.landmarks(canvas, face=1), faces[1].landmarks)
    with pytest.raises(FaceIndexError, match="has 2 faces"):
        detector.landmarks(canvas, face=2)
    with pytest.raises(FaceIndexError):
        detector.landmarks(canvas, face=-1)


def test_exif_rotated_photo_gets_upright_landmarks(detector, london_photo):
    path = london_photo("005", "neutral")
    upright = detector.landmarks(path)
    stored = Image.open(path).transpose(Image.Transpose.ROTATE_270)  # lying on its side
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 CCW to display"
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    points = detector.landmarks(buffer.getvalue())
    assert_plausible_face(points)
    assert np.linalg.norm(points - upright, axis=1).mean() < 0.05 * inter_ocular(upright)


def test_predictor_is_loaded_once():
    path = str(find_landmark_model())
    assert lm._shape_predictor(path) is lm._shape_predictor(path)
    LandmarkDetector()
    LandmarkDetector()
    assert lm._shape_predictor.cache_info().currsize == 1


# --- finding the model file -----------------------------------------------------------------------
@pytest.fixture
def fake_model(tmp_path) -> Path:
    path = tmp_path / "explicit.dat"
    path.write_bytes(b"not really a model")
    return path


@pytest.fixture
def nowhere(monkeypatch, tmp_path):
    """Neither the environment, the package nor the Hub has the model."""
    import huggingface_hub

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.delenv(LANDMARK_MODEL_ENV, raising=False)
    monkeypatch.setattr(model_files, "packaged_model", lambda name: tmp_path / "pkg" / name)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)


def test_explicit_path_wins(monkeypatch, fake_model, tmp_path):
    other = tmp_path / "env.dat"
    other.write_bytes(b"x")
    monkeypatch.setenv(LANDMARK_MODEL_ENV, str(other))
    assert find_landmark_model(fake_model) == fake_model
    assert find_landmark_model(str(fake_model)) == fake_model


def test_missing_explicit_path_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(LandmarkModelNotFoundError, match="missing.dat"):
        find_landmark_model(tmp_path / "missing.dat")


def test_env_var_comes_before_the_package(monkeypatch, fake_model):
    monkeypatch.setenv(LANDMARK_MODEL_ENV, str(fake_model))
    assert find_landmark_model() == fake_model


def test_package_copy_is_found_without_an_env_var(monkeypatch):
    monkeypatch.delenv(LANDMARK_MODEL_ENV, raising=False)
    found = find_landmark_model()
    assert found.name == lm.LANDMARK_MODEL_FILENAME and "face_recognition_models" in str(found)


def test_hub_is_the_last_resort(monkeypatch, nowhere, fake_model):
    import huggingface_hub

    calls = []

    def download(repo_id, filename, **kwargs):
        calls.append((repo_id, filename))
        return str(fake_model)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    assert find_landmark_model() == fake_model
    assert calls == [(LANDMARK_MODEL_HUB_REPO, lm.LANDMARK_MODEL_FILENAME)]


def test_missing_everywhere_names_every_place(monkeypatch, nowhere):
    monkeypatch.setenv(LANDMARK_MODEL_ENV, "/no/such/model.dat")
    with pytest.raises(LandmarkModelNotFoundError) as error:
        find_landmark_model()
    message = str(error.value)
    assert "\n" not in message
    for place in (
        LANDMARK_MODEL_ENV,
        "/no/such/model.dat",
        "face_recognition_models",
        LANDMARK_MODEL_HUB_REPO,
        "offline",
    ):
        assert place in message, message
    with pytest.raises(LandmarkModelNotFoundError):
        LandmarkDetector()
