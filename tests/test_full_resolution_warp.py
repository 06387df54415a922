"""The photo is resampled bicubically at full resolution along G's flow (issue #25, item 3).

A G that copies the photo (mask 1) along a constant sub-pixel flow: bilinear sampling averages
neighbouring pixels and keeps a third to a half of the face's fine detail (Laplacian variance);
bicubic keeps three quarters or more. With no flow both return the photo's own pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from portraitgan_hub import composition
from portraitgan_hub.composition import compose
from portraitgan_hub.faces.image_io import load_image
from portraitgan_hub.faces.landmarks import default_detector
from portraitgan_hub.stages import Rendering, align_face
from train.metrics import grey, laplacian_variance

CROP = 256


@pytest.fixture(scope="module")
def aligned(full_size_photo):
    photo = load_image(full_size_photo)
    return align_face(photo, default_detector().detect(photo)[0], CROP)


def copying_rendering(shift_photo_pixels: float, scale: float) -> Rendering:
    """G's output that copies the photo (A = 1) along a constant flow of ``shift_photo_pixels`` in x and y."""
    shift = shift_photo_pixels * scale * 2.0 / CROP  # photo pixels -> crop pixels -> normalised crop units
    displacement = torch.full((1, 2, 16, 16), shift)
    blank = torch.zeros(1, 3, CROP, CROP)
    return Rendering(Image.new("RGB", (CROP, CROP)), blank, torch.ones(1, 1, CROP, CROP), displacement)


def detail_ratio(before: Image.Image, after: Image.Image, box) -> float:
    def detail(image: Image.Image) -> float:
        return laplacian_variance(grey(np.asarray(image.crop(box), dtype=np.float64)))

    return detail(after) / detail(before)


#: (shift in photo pixels, detail ratio bicubic keeps at least, bilinear keeps at most). Measured on
#: the 1350 px photo: 0.868 / 0.506 at a quarter pixel, 0.754 / 0.373 at half a pixel (the worst
#: case of any interpolator).
SHIFTS = [(0.25, 0.8, 0.6), (0.5, 0.7, 0.45)]


@pytest.mark.parametrize(("shift", "bicubic_keeps", "bilinear_keeps"), SHIFTS)
def test_a_sub_pixel_flow_keeps_the_fine_detail(aligned, shift, bicubic_keeps, bilinear_keeps) -> None:
    assert composition.PHOTO_SAMPLING == "bicubic"
    result = compose(aligned.photo, aligned.alignment, copying_rendering(shift, aligned.alignment.scale))
    assert detail_ratio(aligned.photo, result, aligned.face.box) > bicubic_keeps


@pytest.mark.parametrize(("shift", "bicubic_keeps", "bilinear_keeps"), SHIFTS)
def test_the_bilinear_sampler_loses_it(aligned, monkeypatch, shift, bicubic_keeps, bilinear_keeps) -> None:
    monkeypatch.setattr(composition, "PHOTO_SAMPLING", "bilinear")
    result = compose(aligned.photo, aligned.alignment, copying_rendering(shift, aligned.alignment.scale))
    assert detail_ratio(aligned.photo, result, aligned.face.box) < bilinear_keeps


def test_a_whole_pixel_flow_moves_the_photo_exactly(aligned) -> None:
    """Bicubic interpolates: at whole-pixel positions it returns the photo's own pixels, shifted."""
    result = np.asarray(compose(aligned.photo, aligned.alignment, copying_rendering(0.0, aligned.alignment.scale)))
    photo = np.asarray(aligned.photo)
    left, top, right, bottom = aligned.face.box
    inner = (slice(top + 20, bottom - 20), slice(left + 20, right - 20))
    assert np.abs(result[inner].astype(int) - photo[inner]).max() <= 1
