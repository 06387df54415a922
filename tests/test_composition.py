"""Full-resolution composition (``portraitgan_hub.composition.compose``) of a crop G drew whole (no
mask): it is blended in with the feather ramp, and every pixel outside its footprint keeps its value."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from portraitgan_hub.composition import compose
from portraitgan_hub.faces.alignment import estimate_alignment, warp_to_crop
from portraitgan_hub.faces.landmarks import default_detector
from portraitgan_hub.image_tensors import pil_to_tensor
from portraitgan_hub.stages import Rendering


@pytest.fixture(scope="module")
def photo_and_landmarks(london_photo):
    path = london_photo("005", "smiling")
    return Image.open(path).convert("RGB"), default_detector().landmarks(path)


def _paste(image: Image.Image, crop: Image.Image, alignment) -> Image.Image:
    """``crop`` composed into ``image`` as G's colour everywhere (a G without a blend mask)."""
    return compose(image, alignment, Rendering(crop, pil_to_tensor(crop), None, None))


def test_composing_the_unchanged_crop_restores_the_original(photo_and_landmarks):
    image, points = photo_and_landmarks
    alignment = estimate_alignment(points, 384)  # about 1 crop pixel per image pixel
    crop = warp_to_crop(image, alignment)
    result = _paste(image, crop, alignment)
    assert result.size == image.size and result.mode == "RGB"
    before = np.asarray(image, dtype=np.int16)
    after = np.asarray(result, dtype=np.int16)

    ys, xs = np.mgrid[0 : image.height, 0 : image.width]
    crop_xy = alignment.to_crop(np.stack([xs.ravel(), ys.ravel()], axis=1)).reshape(image.height, image.width, 2)
    size = alignment.crop_size
    outside = ((crop_xy < 1) | (crop_xy > size - 2)).any(axis=2)  # where the mask is exactly 0
    inner = ((crop_xy > 0.1 * size) & (crop_xy < 0.9 * size)).all(axis=2)  # fully pasted
    assert outside.sum() > 0.3 * outside.size
    assert np.array_equal(after[outside], before[outside])
    assert np.abs(after[inner] - before[inner]).mean() < 2.0


def test_composing_changes_only_the_face_region(photo_and_landmarks):
    image, points = photo_and_landmarks
    alignment = estimate_alignment(points, 256)
    edited = Image.new("RGB", (128, 128), (255, 0, 0))  # another resolution than the alignment's
    result = np.asarray(_paste(image, edited, alignment))
    nose = np.rint(points[30]).astype(int)
    assert tuple(result[nose[1], nose[0]]) == (255, 0, 0)
    corners = alignment.to_image(np.array([[-0.5, -0.5], [255.5, -0.5], [-0.5, 255.5], [255.5, 255.5]]))
    left, top = np.floor(corners.min(axis=0)).astype(int)
    right, bottom = np.ceil(corners.max(axis=0)).astype(int)
    untouched = np.ones(result.shape[:2], bool)
    untouched[max(top, 0) : bottom + 1, max(left, 0) : right + 1] = False
    assert np.array_equal(result[untouched], np.asarray(image)[untouched])
