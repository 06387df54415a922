"""What ``train.evaluation`` measures with: dlib identity descriptors on the real asset photos, and
the metrics mouth SSIM, PSNR, Laplacian variance and mean chroma."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from test_evaluate import SIZE

from portraitgan_hub.errors import FaceRecognitionModelNotFoundError
from portraitgan_hub.faces import model_files
from portraitgan_hub.faces.alignment import template_in_crop
from portraitgan_hub.faces.identity import (
    FACE_RECOGNITION_MODEL_ENV,
    SAME_PERSON_THRESHOLD,
    descriptor_distance,
    face_descriptor,
    find_face_recognition_model,
)
from portraitgan_hub.faces.landmarks import default_detector
from train.metrics import grey, laplacian_variance, mean_chroma, mouth_ssim, mouth_window, psnr


# --- identity descriptors ------------------------------------------------------------------------------
def test_identity_distance_separates_people_on_real_photos(london_photo) -> None:
    def describe(identity: str, expression: str) -> np.ndarray:
        path = london_photo(identity, expression)
        return face_descriptor(path, default_detector().landmarks(path))

    first, other = describe("001", "smiling"), describe("005", "smiling")
    assert first.shape == (128,)
    assert descriptor_distance(first, describe("001", "smiling")) < 1e-6
    assert descriptor_distance(first, other) > SAME_PERSON_THRESHOLD
    assert descriptor_distance(describe("005", "neutral"), other) < SAME_PERSON_THRESHOLD  # one person, two expressions


def test_face_recognition_model_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packaged = find_face_recognition_model()  # the face_recognition_models copy in this environment
    assert packaged.name == "dlib_face_recognition_resnet_model_v1.dat" and packaged.is_file()
    with pytest.raises(FaceRecognitionModelNotFoundError, match="does not exist"):
        find_face_recognition_model(tmp_path / "missing.dat")
    chosen = tmp_path / "mine.dat"
    chosen.write_bytes(b"x")
    monkeypatch.setenv(FACE_RECOGNITION_MODEL_ENV, str(chosen))
    assert find_face_recognition_model() == chosen
    monkeypatch.setenv(FACE_RECOGNITION_MODEL_ENV, str(tmp_path / "gone.dat"))
    monkeypatch.setattr(model_files, "packaged_model", lambda name: tmp_path / "pkg" / name)
    with pytest.raises(FaceRecognitionModelNotFoundError, match="gone.dat.*face_recognition_models"):
        find_face_recognition_model()


# --- metrics of the evaluation: mouth SSIM, PSNR, Laplacian variance, chroma --------------------------
def test_mouth_window_surrounds_the_mouth_inside_the_image() -> None:
    points = template_in_crop(SIZE)
    x0, y0, x1, y1 = mouth_window(points, SIZE)
    assert 0 <= x0 < x1 <= SIZE and 0 <= y0 < y1 <= SIZE
    mouth = points[48:68]
    assert (mouth[:, 0] >= x0).all() and (mouth[:, 0] <= x1 - 1).all()
    assert (mouth[:, 1] >= y0).all() and (mouth[:, 1] <= y1 - 1).all()
    width, height = np.ptp(mouth, axis=0)  # padded by 15 % of the mouth's size on each side
    assert mouth[:, 0].min() - x0 >= 0.15 * width and x1 - 1 - mouth[:, 0].max() >= 0.15 * width
    assert mouth[:, 1].min() - y0 >= 0.15 * height and y1 - 1 - mouth[:, 1].max() >= 0.15 * height
    assert (x1 - x0) < 2 * width and (y1 - y0) < 3 * height  # the mouth, not the face
    for outside in (*range(36, 48), 8, 30):  # eyes, chin, nose tip
        assert not (x0 <= points[outside, 0] < x1 and y0 <= points[outside, 1] < y1), outside
    low = points + [0, SIZE - 1 - points[57, 1]]  # lower lip on the bottom row: clamped to the image
    assert mouth_window(low, SIZE)[3] == SIZE
    assert mouth_window(points * 2, (2 * SIZE, 3 * SIZE)) == mouth_window(points * 2, 2 * SIZE)
    with pytest.raises(ValueError, match="outside"):
        mouth_window(points + 2 * SIZE, SIZE)


def test_mouth_ssim_sees_only_the_mouth() -> None:
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, SIZE, SIZE, generator=generator) * 2 - 1
    points = template_in_crop(SIZE)[None]
    x0, y0, x1, y1 = mouth_window(points[0], SIZE)
    outside, inside = image.clone(), image.clone()
    outside[..., :y0, :] = -1  # everything above the mouth box changes
    inside[..., y0:y1, x0:x1] = -inside[..., y0:y1, x0:x1]
    assert mouth_ssim(image, image, points).item() == pytest.approx(1.0)
    assert mouth_ssim(outside, image, points).item() == pytest.approx(1.0)
    assert mouth_ssim(inside, image, points).item() < 0.5
    both = mouth_ssim(torch.cat([outside, inside]), torch.cat([image, image]), np.repeat(points, 2, axis=0))
    assert both.shape == (2,) and both[0] > 0.99 > both[1]


def test_psnr_of_identical_and_of_known_noise() -> None:
    rng = np.random.default_rng(0)
    photo = rng.integers(10, 245, (40, 30, 3)).astype(np.uint8)
    assert psnr(photo, photo) == float("inf")
    assert psnr(photo, photo.astype(np.int16) + 5) == pytest.approx(10 * np.log10(255**2 / 25))  # 34.15 dB
    signs = np.where(rng.random(photo.shape) < 0.5, -4, 4)  # noise of exactly 4 grey levels: MSE 16
    assert psnr(photo, photo + signs) == pytest.approx(36.09, abs=0.01)  # 10 log10(255² / 16)
    assert psnr(np.zeros(4), np.ones(4), data_range=1.0) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        psnr(photo, photo[:10])


def test_laplacian_variance_of_a_checkerboard_and_of_a_blurred_photo(london_photo) -> None:
    checkerboard = np.indices((10, 12)).sum(axis=0) % 2 * 2.0 - 1  # +-1: Laplacian +-8 everywhere
    assert laplacian_variance(checkerboard) == pytest.approx(64.0)
    assert laplacian_variance(np.full((9, 9), 117.0)) == 0.0
    with Image.open(london_photo("005", "neutral")) as stored:
        photo = stored.convert("RGB").crop((200, 150, 440, 450))
    blurred = photo.filter(ImageFilter.GaussianBlur(1.5))
    sharp = laplacian_variance(grey(np.asarray(photo)))
    assert sharp > 0 and laplacian_variance(grey(np.asarray(blurred))) / sharp < 0.5
    assert grey(np.full((2, 2, 3), 200, np.uint8)) == pytest.approx(np.full((2, 2), 200.0))


def test_mean_chroma_is_zero_for_grey_and_the_channel_spread_in_grey_levels() -> None:
    grey_images = torch.rand(2, 1, 8, 8).expand(-1, 3, -1, -1) * 2 - 1
    assert mean_chroma(grey_images).tolist() == [0.0, 0.0]
    colour = torch.tensor([100.0, 110.0, 130.0])[None, :, None, None].expand(1, 3, 4, 4) / 127.5 - 1
    red = torch.tensor([1.0, -1.0, -1.0])[None, :, None, None].expand(1, 3, 4, 4)
    assert mean_chroma(torch.cat([colour, red])).tolist() == pytest.approx([30.0, 255.0], abs=1e-3)
