"""The embedded demo draws in an opened mouth instead of returning the warp's stretched lips (issue #22).

On the held-out photo 019 (neutral, closed lips) opened by the expression controls, the stage-1 G's
pixels inside the hallucination mask were the thin-plate-spline warp's within half a grey level (90th
percentile 140.0 against 139.9 for smile 1 and mouth_open 0.4, 137.0 against 137.0 for mouth_open
0.6). The stage-2 G (``data.opening_ratio``, synthetic mouths left out of Eq. 3 over the mask) draws a
light band there: 90th percentile 205 and 204.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from portraitgan_hub import DEFAULT_MODEL, PortraitGAN
from portraitgan_hub.faces.expressions import ExpressionControls
from portraitgan_hub.faces.landmarks import default_detector
from portraitgan_hub.image_tensors import pil_to_tensor, tensor_to_pil
from portraitgan_hub.stages import align_face, render, target_landmarks
from portraitgan_hub.thin_plate_spline import warp_by_landmarks
from portraitgan_hub.warp_guidance import landmark_hallucination

PHOTO = Path(__file__).resolve().parent / "assets" / "london" / "019_neutral.jpg"


@pytest.fixture(scope="module")
def demo() -> PortraitGAN:
    return PortraitGAN.from_pretrained(DEFAULT_MODEL).eval()


def _grey(pixels: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of (H, W, 3) RGB in 0-255."""
    return pixels @ np.array([0.299, 0.587, 0.114], np.float32)


@pytest.mark.parametrize("controls", [{"smile": 1.0, "mouth_open": 0.4}, {"mouth_open": 0.6}])
def test_the_demo_draws_a_light_band_where_the_mouth_opens(demo: PortraitGAN, controls: dict) -> None:
    photo = Image.open(PHOTO).convert("RGB")
    aligned = align_face(photo, default_detector().detect(photo)[0], demo.config.image_size)
    target = target_landmarks(aligned, ExpressionControls.from_dict(controls))
    rendering = render(demo, aligned, target, "photo")
    size = demo.config.image_size
    points = [torch.from_numpy(np.float32(p))[None] for p in (aligned.landmarks, target)]
    opening = landmark_hallucination(*points, size, size)[0, 0].numpy() > 0
    assert opening.sum() > 500  # the controls open the mouth
    warped = np.asarray(tensor_to_pil(warp_by_landmarks(pil_to_tensor(aligned.crop), *points))[0], np.float32)
    drawn = _grey(np.asarray(rendering.crop.convert("RGB"), np.float32))[opening]
    stretched = _grey(warped)[opening]
    assert np.percentile(drawn, 90) > np.percentile(stretched, 90) + 40, "the opened mouth is the warp's lips"
    assert drawn.mean() > stretched.mean() + 20
