"""An expression edit of a photo unlike the training light keeps the face a photo (issues #22, #27).

The previous demo's G (``lite``) was trained on studio light; on a dim, warm, noisy version of a London photo
its mask falls over the whole face and its colour (a bleached grey sketch with a grid) replaced the
face. The editor now lets a G trained without the edit region draw only the opened mouth
(``edit_region.limit_to_edit_region``); a ``lite-u`` G has the region in its own mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from portraitgan_hub import DEFAULT_MODEL, PortraitGAN
from portraitgan_hub.edit_region import edit_region
from portraitgan_hub.faces.expressions import ExpressionControls
from portraitgan_hub.faces.landmarks import default_detector
from portraitgan_hub.stages import align_face, render, target_landmarks
from portraitgan_hub.warp_guidance import landmark_hallucination

ASSETS = Path(__file__).resolve().parent / "assets" / "london"


def dim_warm(photo: Image.Image, seed: int = 0) -> Image.Image:
    """A phone-selfie look made from a studio photo: warm white balance, dimmer, gamma 1.3, sensor noise."""
    pixels = np.asarray(photo.convert("RGB"), np.float32) * np.array([0.75, 0.55, 0.38])
    pixels = 255 * (pixels / 255) ** 1.3 + np.random.default_rng(seed).normal(0, 6, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _chroma(pixels: np.ndarray) -> float:
    return float((pixels.max(axis=-1) - pixels.min(axis=-1)).mean())


@pytest.fixture(scope="module")
def demo() -> PortraitGAN:
    return PortraitGAN.from_pretrained(DEFAULT_MODEL).eval()


@pytest.fixture(scope="module")
def casual() -> Image.Image:
    return dim_warm(Image.open(ASSETS / "019_neutral.jpg"))


def test_a_smile_keeps_the_dim_warm_face_a_photo(demo: PortraitGAN, casual: Image.Image) -> None:
    torch.set_num_threads(2)
    out = demo.edit(casual, smile=0.8)
    face = default_detector().detect(casual)[0]
    left, top = np.floor(face.landmarks.min(axis=0)).astype(int)
    right, bottom = np.ceil(face.landmarks.max(axis=0)).astype(int)
    before = np.asarray(casual, np.float32)[top:bottom, left:right]
    after = np.asarray(out, np.float32)[top:bottom, left:right]
    assert abs(_chroma(after) - _chroma(before)) < 0.2 * _chroma(before)  # the face keeps its colour
    changed = np.abs(after - before).max(axis=-1) > 40
    assert changed.mean() < 0.02  # a warp's moves, not a re-drawn face (it was 0.29 of the picture > 20)


def test_outside_its_edit_region_the_demo_only_warps(demo: PortraitGAN, casual: Image.Image) -> None:
    """A G with the edit region in its mask (``lite-u``) copies the warped photo outside that region; one
    trained without it gets the editor's narrower limit, the opened mouth alone (``features=False``)."""
    aligned = align_face(casual, default_detector().detect(casual)[0], demo.config.image_size)
    for controls in ({"smile": 0.8}, {"smile": 0.8, "mouth_open": 0.8}, {"roll": 10.0}):
        target = target_landmarks(aligned, ExpressionControls.from_dict(controls))
        rendering = render(demo, aligned, target, "photo")
        size = demo.config.image_size
        points = [torch.from_numpy(np.float32(p))[None] for p in (aligned.landmarks, target)]
        hole = landmark_hallucination(*points, size, size)
        own = demo.config.edit_region
        region = edit_region(*points, size, size, hole, features=own, margin=demo.config.edit_region_margin)
        assert torch.all(rendering.mask[region == 0] == 1), controls


def test_an_opened_mouth_takes_the_photos_light(demo: PortraitGAN, casual: Image.Image) -> None:
    """G draws the mouth in its studio light: on the dim photo it was a glowing patch, 106 grey levels
    above the lips around it. Its colour now takes the light of the photo where they meet
    (``composition.match_drawn_colour``), keeping G's own contrast: the mouth stays darker than its lips."""
    aligned = align_face(casual, default_detector().detect(casual)[0], demo.config.image_size)
    target = target_landmarks(aligned, ExpressionControls(mouth_open=1.0))
    rendering = render(demo, aligned, target, "photo")
    grey = np.asarray(rendering.crop.convert("L"), np.float32)
    mask = rendering.mask[0, 0].numpy()
    drawn, ring = grey[mask < 0.5].mean(), grey[(mask > 0.95) & (mask < 0.999)].mean()
    assert drawn < ring + 10, f"the opened mouth is {drawn - ring:.0f} levels lighter than its lips"
