from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from portraitgan_hub.faces.alignment import (
    Alignment,
    estimate_alignment,
    feather_mask,
    mean_face,
    similarity_transform,
    template_in_crop,
    warp_to_crop,
)
from portraitgan_hub.faces.landmarks import FLIP_PERMUTATION, default_detector


@pytest.fixture(scope="module")
def photo_and_landmarks(london_photo):
    path = london_photo("005", "smiling")
    return Image.open(path).convert("RGB"), default_detector().landmarks(path)


def _rotation(degrees: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)) * scale, np.sin(np.radians(degrees)) * scale
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def test_mean_face_is_in_symmetric_eye_units():
    face = mean_face()
    assert face.shape == (68, 2)
    assert np.allclose(face[36:42].mean(axis=0), [-0.5, 0.0], atol=1e-4)
    assert np.allclose(face[42:48].mean(axis=0), [0.5, 0.0], atol=1e-4)
    mirrored = face[list(FLIP_PERMUTATION)] * [-1.0, 1.0]
    assert np.allclose(mirrored, face, atol=1e-4)
    assert face[8, 1] > face[57, 1] > face[33, 1] > 0 > face[19, 1]  # chin, lip, nose, brow


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(20, 2)) * 50
    truth = _rotation(23.0, 1.7, (12.0, -40.0))
    dst = src @ truth[:, :2].T + truth[:, 2]
    assert np.allclose(similarity_transform(src, dst), truth, atol=1e-9)


def test_round_trip_points_crop_image(photo_and_landmarks):
    _, points = photo_and_landmarks
    alignment = estimate_alignment(points, 256)
    assert alignment.matrix.shape == (2, 3) and alignment.inverse.shape == (2, 3)
    rng = np.random.default_rng(1)
    extra = rng.uniform(-100, 800, size=(50, 2))
    for sample in (points, extra):
        assert np.abs(alignment.to_image(alignment.to_crop(sample)) - sample).max() < 0.5
        assert np.abs(alignment.to_image(alignment.to_crop(sample)) - sample).max() < 1e-6


def test_aligned_landmarks_sit_on_the_template(photo_and_landmarks):
    _, points = photo_and_landmarks
    for size in (256, 512):
        alignment = estimate_alignment(points, size)
        aligned = alignment.to_crop(points)
        template = template_in_crop(size)
        assert np.abs(aligned[36:48] - template[36:48]).max() < 0.03 * size
        assert (aligned > 0).all() and (aligned < size).all()  # whole face, chin and brows included
        assert aligned[:, 1].min() > 0.15 * size and aligned[8, 1] < 0.9 * size  # room for hair and chin


def test_resized_alignment_covers_the_same_area(photo_and_landmarks):
    _, points = photo_and_landmarks
    small = estimate_alignment(points, 256)
    large = small.resized(512)
    assert np.allclose((small.to_crop(points) + 0.5) * 2 - 0.5, large.to_crop(points))
    assert np.allclose(large.matrix, estimate_alignment(points, 512).matrix, atol=1e-9)


@pytest.mark.parametrize("scale", [1.3, 0.9, 0.3])
def test_warp_puts_image_points_where_the_matrix_says(scale):
    """A bright dot must land at ``to_crop(dot)``: checks Pillow's half-pixel convention and reduce."""
    image = Image.new("RGB", (900, 700), (0, 0, 0))
    dot = np.array([412.0, 305.0])
    image.paste((255, 255, 255), (411, 304, 414, 307))  # 3x3 dot centred on (412, 305)
    matrix = _rotation(17.0, scale, (0.0, 0.0))
    matrix[:, 2] = 64 - matrix[:, :2] @ dot + np.array([3.3, -5.7])
    alignment = Alignment(matrix=matrix, crop_size=128)
    crop = np.asarray(warp_to_crop(image, alignment), dtype=np.float64)[:, :, 0]
    ys, xs = np.mgrid[0:128, 0:128]
    centroid = np.array([(crop * xs).sum(), (crop * ys).sum()]) / crop.sum()
    assert np.linalg.norm(centroid - alignment.to_crop(dot)) < 0.25


def test_detected_landmarks_in_the_crop_match_the_mapped_ones(full_size_photo):
    points = default_detector().landmarks(full_size_photo)
    alignment = estimate_alignment(points, 320)
    crop = warp_to_crop(full_size_photo, alignment)
    assert crop.size == (320, 320) and crop.mode == "RGB"
    in_crop = default_detector().landmarks(crop)
    eye_distance = np.linalg.norm(in_crop[36:42].mean(axis=0) - in_crop[42:48].mean(axis=0))
    assert np.linalg.norm(in_crop - alignment.to_crop(points), axis=1).mean() < 0.05 * eye_distance


def test_feather_mask():
    mask = feather_mask(200, 0.1)
    assert mask.shape == (200, 200) and mask.dtype == np.float32
    assert mask.min() == 0.0 and mask.max() == 1.0
    assert (mask[:2] == 0).all() and (mask[-2:] == 0).all() and (mask[:, :2] == 0).all() and (mask[:, -2:] == 0).all()
    assert (mask[25:175, 25:175] == 1).all()
    row = mask[100, :100]
    assert (np.diff(row) >= 0).all()  # rises smoothly from the border
    assert 0 < mask[100, 10] < 1
    assert mask[5, 5] < mask[5, 100]  # rounded corners
    hard = feather_mask(50, 0.0)
    assert set(np.unique(hard)) == {0.0, 1.0} and hard[2:48, 2:48].all()
    with pytest.raises(ValueError):
        feather_mask(50, 0.6)
