"""The warp-guided generator: thin-plate-spline warp, hallucination mask, the generator and old
checkpoints. What trains it (discriminators, DiffAugment, the cycle, synthetic pairs) is in
test_warp_guided_training.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from portraitgan_hub import PortraitGAN, PortraitGANConfig
from portraitgan_hub.faces.alignment import template_in_crop
from portraitgan_hub.faces.expressions import apply_expression
from portraitgan_hub.generator import Generator
from portraitgan_hub.thin_plate_spline import (
    evaluate_thin_plate_spline,
    fit_thin_plate_spline,
    landmark_displacement,
    pixels_to_normalized,
    sampling_grid,
    warp_by_landmarks,
    warp_image,
)
from portraitgan_hub.warp_guidance import polygon_mask, warp_guidance

SIZE = 64


def _points(size: int = SIZE, **expression: float) -> torch.Tensor:
    """The mean face in a ``size`` crop, with an expression applied: (1, 68, 2) pixels."""
    points = template_in_crop(size)
    if expression:
        points = apply_expression(points, **expression)
    return torch.tensor(np.asarray(points), dtype=torch.float32)[None]


def _smooth_image(size: int) -> torch.Tensor:
    """A smooth colour pattern (1, 3, size, size) in [-1, 1], the same picture at any size."""
    centres = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([torch.sin(6 * x), torch.cos(5 * y), torch.sin(4 * (x + y))])[None]


# --- the thin-plate spline ---------------------------------------------------------------------------
def test_warp_is_exactly_the_identity_when_nothing_moves():
    image = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    points = _points().expand(2, -1, -1)
    displacement = landmark_displacement(points, points, SIZE, SIZE)
    assert torch.count_nonzero(displacement) == 0
    assert torch.allclose(warp_by_landmarks(image, points, points), image, atol=1e-5)


def test_spline_is_exact_at_the_control_points():
    source, target = _points(256), _points(256, smile=1.0, mouth_open=0.6)
    control = pixels_to_normalized(target, 256, 256)
    values = pixels_to_normalized(source, 256, 256) - control
    weights, affine = fit_thin_plate_spline(control, values)
    error_px = (evaluate_thin_plate_spline(control, weights, affine, control) - values).abs().max() * 128
    assert error_px < 0.05
    # through the coarse grid and its bilinear interpolation, a point lands within a pixel of its source
    # (for an edit that does not fold: an opening mouth is smoothed on purpose, see test_warp_never_folds_over)
    target = _points(256, smile=1.0)
    control = pixels_to_normalized(target, 256, 256)
    grid = sampling_grid(landmark_displacement(source, target, 256, 256), 256, 256)
    at_target = torch.nn.functional.grid_sample(
        grid.permute(0, 3, 1, 2), control[:, None], "bilinear", "border", align_corners=False
    )[:, :, 0].transpose(1, 2)
    assert (at_target - pixels_to_normalized(source, 256, 256)).abs().max() * 128 < 1.0


def test_warp_gradients_reach_image_and_points():
    image = _smooth_image(SIZE).requires_grad_()
    source = _points().requires_grad_()
    target = _points(smile=1.0)
    warp_by_landmarks(image, source, target).square().mean().backward()
    for grad in (image.grad, source.grad):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_same_flow_at_two_resolutions():
    """The flow fitted at 128 px and sampled at 512 px warps like the one fitted at 512 px."""
    small = landmark_displacement(_points(128), _points(128, smile=1.2), 128, 128)
    large = landmark_displacement(_points(512), _points(512, smile=1.2), 512, 512)
    assert torch.allclose(small, large, atol=1e-4)  # normalised units: one field for every size
    image = _smooth_image(512)
    warped = warp_image(image, sampling_grid(small, 512, 512))
    assert (warped - warp_image(image, sampling_grid(large, 512, 512))).abs().max() < 1e-3
    assert (warped - image).abs().max() > 0.02  # and it did move something


def _dense_min_jacobian(source: torch.Tensor, target: torch.Tensor, size: int) -> float:
    """Smallest Jacobian determinant of the dense backward map, per output pixel (<= 0: it folds)."""
    grid = sampling_grid(landmark_displacement(source, target, size, size), size, size)[0].double() * size / 2
    dx, dy = grid[:, 1:] - grid[:, :-1], grid[1:] - grid[:-1]
    return float((dx[:-1, :, 0] * dy[:, :-1, 1] - dx[:-1, :, 1] * dy[:, :-1, 0]).min())


@pytest.mark.parametrize(
    "expression", [dict(eye_open=-1.5), dict(mouth_open=1.5), dict(smile=2.0), dict(smile=2.0, mouth_open=1.5)]
)
def test_warp_never_folds_over(expression):
    """Closed eyes put upper-lid points on lower-lid ones; a wide-open mouth stretches the lips: no tearing."""
    for source, target in ((_points(256), _points(256, **expression)), (_points(256, **expression), _points(256))):
        assert _dense_min_jacobian(source, target, 256) > 0


def test_warp_is_computed_in_full_precision_under_autocast():
    image, source, target = _smooth_image(128), _points(128), _points(128, smile=1.0, mouth_open=0.5)
    expected = warp_by_landmarks(image, source, target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        displacement = landmark_displacement(source, target, 128, 128)
        warped = warp_by_landmarks(image, source, target)
    assert displacement.dtype == torch.float32
    assert torch.allclose(displacement, landmark_displacement(source, target, 128, 128))
    assert torch.allclose(warped, expected)


def test_hallucination_mask_ignores_slivers_and_crossed_lips():
    from portraitgan_hub.warp_guidance import landmark_hallucination

    neutral = _points(256)
    assert landmark_hallucination(neutral, _points(256, smile=0.3), 256, 256).sum() == 0  # lips part by a pixel
    assert landmark_hallucination(neutral, _points(256, mouth_open=0.8), 256, 256).sum() > 200
    crossed = neutral.clone()
    crossed[:, [61, 62, 63]] += torch.tensor([0.0, 6.0])  # a detector put the upper inner lip below the lower
    assert landmark_hallucination(neutral, crossed, 256, 256).sum() == 0


# --- the generator -------------------------------------------------------------------------------------
def _warp_guided(**overrides) -> Generator:
    torch.manual_seed(0)
    config = PortraitGANConfig(
        image_size=SIZE, base_channels=8, max_channels=16, num_residual_blocks=1, warp_guided=True, **overrides
    )
    return Generator(config).eval()


def test_warp_guided_generator_with_mask_near_one_reproduces_the_warp():
    generator = _warp_guided()
    for head in (generator.to_rgb[-1], *(branch[-1] for branch in generator.aux_to_rgb)):
        torch.nn.init.constant_(head.bias[3:], 30.0)  # A = sigmoid(30) = 1 - 1e-13
    image, source, target = _smooth_image(SIZE), _points(), _points(smile=1.0)
    with torch.no_grad():
        rendering = generator.infer(image, torch.zeros(1, 1, SIZE, SIZE), torch.tensor([0]), source, target)
    expected = warp_by_landmarks(image, source, target)
    outside = rendering.guidance.hallucination == 0
    assert torch.allclose(rendering.images[0][outside.expand_as(expected)], expected[outside.expand_as(expected)])
    assert (expected - image).abs().max() > 0.05  # the warp moved the picture


def test_blend_mask_is_zero_inside_the_hallucination_mask():
    generator = _warp_guided()
    source, target = _points(), _points(smile=1.0, mouth_open=1.0)  # the mouth opens: teeth to draw
    with torch.no_grad():
        rendering = generator.infer(
            torch.rand(1, 3, SIZE, SIZE), torch.zeros(1, 1, SIZE, SIZE), torch.tensor([1]), source, target
        )
    hallucination = rendering.guidance.hallucination
    assert hallucination.sum() > 10
    assert torch.all(rendering.mask[hallucination > 0] == 0)
    assert rendering.mask[hallucination == 0].min() > 0.5  # copies elsewhere (heads start at A = 0.95)
    # the mask is the open mouth: inside the target inner lips, not around the eyes
    inner_mouth = polygon_mask(target[:, 60:68], SIZE, SIZE)
    assert (hallucination * inner_mouth).sum() == inner_mouth.sum()


def test_without_source_landmarks_the_warp_is_the_identity():
    image = torch.rand(1, 3, SIZE, SIZE)
    guidance = warp_guidance(image, None, None)
    assert torch.equal(guidance.warped, image) and guidance.hallucination.sum() == 0


def test_old_checkpoints_load_and_run_unchanged(tmp_path):
    """A checkpoint written before warp_guided (and achromatic_modalities) existed: its config.json
    lacks those keys. It loads as the masked G it was, and ignores landmark points."""
    torch.manual_seed(0)
    PortraitGAN(PortraitGANConfig.preset("lite", attention_mask=True)).save_pretrained(tmp_path)
    config_file = tmp_path / "config.json"
    stored = json.loads(config_file.read_text())
    for key in ("warp_guided", "achromatic_modalities", "conditional_discriminator", "mouth_discriminator"):
        stored.pop(key)
    config_file.write_text(json.dumps(stored))
    model = PortraitGAN.from_pretrained(tmp_path)
    assert not model.config.warp_guided and model.config.attention_mask
    assert model.generator.stem[1].in_channels == 3 + 1 + model.config.num_modalities
    image = torch.zeros(1, 3, 256, 256)
    out = model.generate(image, torch.zeros(1, 1, 256, 256), "photo")
    # without warp_guided the landmark points are ignored
    points = _points(256)
    assert torch.equal(out, model.generate(image, torch.zeros(1, 1, 256, 256), "photo", points, points + 3))
