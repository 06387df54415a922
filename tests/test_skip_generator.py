"""The skip-connected warp-guided generator (``lite-u``), its conversion gate and edit region, and the
losses that see outlines (none of them in the paper; see generator.py, layers.py, edit_region.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_warp_guided import _points

from portraitgan_hub import PortraitGANConfig
from portraitgan_hub.edit_region import edit_region, gate_mask
from portraitgan_hub.generator import Generator
from portraitgan_hub.layers import ConditionalInstanceNorm
from portraitgan_hub.losses import gradient_loss, outline_loss, outline_pixels
from portraitgan_hub.thin_plate_spline import warp_by_landmarks

SIZE = 64


def _config(**overrides) -> PortraitGANConfig:
    small = dict(image_size=SIZE, base_channels=8, max_channels=16, num_residual_blocks=1, discriminator_channels=8)
    return PortraitGANConfig.preset("lite-u", **{**small, **overrides})


def _randomised(generator: Generator, seed: int) -> Generator:
    """G with every weight random (also the norm tables and mask biases): 'whatever G's weights'."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in generator.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.5)
    return generator.eval()


def _photo_edit(generator: Generator, image: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """G's full-size output for a photo -> photo expression edit from ``source`` to ``target`` points."""
    with torch.no_grad():
        return generator(
            image, torch.zeros(1, 1, SIZE, SIZE), torch.tensor([0]), source, target, source_modality=torch.tensor([0])
        )[0]


def test_lite_u_preset_shapes_and_cost():
    config = PortraitGANConfig.preset("lite-u")
    assert config.skip_connections and config.warp_guided and config.conversion_gate and config.edit_region
    generator = Generator(config)
    parameters = sum(p.numel() for p in generator.parameters())
    lite = sum(p.numel() for p in Generator(PortraitGANConfig.preset("lite", warp_guided=True)).parameters())
    assert 2.2e6 < parameters < 2.6e6 and parameters < 1.1 * lite
    assert generator.stem[1].kernel_size == (3, 3) and generator.stem[1].out_channels == 16
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in generator.modules())
    image, points = torch.rand(2, 3, 256, 256) * 2 - 1, _points(256).expand(2, -1, -1)
    images = generator(image, torch.zeros(2, 1, 256, 256), torch.tensor([0, 2]), points, points)
    assert [tuple(i.shape) for i in images] == [(2, 3, 256, 256), (2, 3, 128, 128)]
    assert all(bool(i.abs().max() <= 1) for i in images)


def test_mask_starts_at_one_half_and_the_gate_decides_copying():
    torch.manual_seed(0)
    generator = Generator(_config()).eval()
    image, source, target = torch.rand(3, 3, SIZE, SIZE) * 2 - 1, _points(), _points(smile=1.0, mouth_open=1.0)
    source, target = source.expand(3, -1, -1), target.expand(3, -1, -1)
    condition = torch.tensor([[1.0, 0, 0], [0, 0, 1.0], [0.5, 0, 0.5]])  # same, cartoon, half way
    with torch.no_grad():
        rendering = generator.infer(
            image, torch.zeros(3, 1, SIZE, SIZE), condition, source, target, source_modality=torch.tensor([0, 0, 0])
        )
    hole = rendering.guidance.hallucination
    assert hole.sum() > 0
    mask = rendering.mask
    assert torch.all(mask[hole.expand_as(mask) > 0] == 0)  # the opened mouth is drawn
    assert torch.all(mask[1] == 0)  # a full conversion: G draws every pixel
    inside = edit_region(source, target, SIZE, SIZE, hole)[0, 0] == 1
    free = inside & (hole[0, 0] == 0)
    # the mask bias starts at 0: A about 1/2 (random head weights spread it), so G can copy there
    assert mask[0, 0][free].min() > 0.1 and 0.3 < float(mask[0, 0][free].mean()) < 0.7
    # half way to a cartoon: inside the region A = sigmoid(a) / 2 <= 1/2; outside 1 - (1 - sigmoid(a) / 2) / 2 <= 3/4
    assert torch.all(mask[2, 0][inside] <= 0.5 + 1e-6) and torch.all(mask[2] <= 0.75 + 1e-6) and mask[2].min() >= 0


def test_region_limit_keeps_the_warped_photo_outside_the_edit_whatever_the_weights():
    image = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    source, target = _points(), _points(smile=1.0)
    region = edit_region(source, target, SIZE, SIZE)
    outside = (region == 0).expand(1, 3, SIZE, SIZE)
    assert 0.02 < float((region > 0).float().mean()) < 0.6  # around the mouth, not the whole crop
    warped = warp_by_landmarks(image, source, target)
    for seed in range(3):
        generator = _randomised(Generator(_config()), seed)
        output = _photo_edit(generator, image, source, target)
        assert torch.equal(output[outside], warped[outside])
        assert (output - warped).abs()[~outside].max() > 0.05  # inside, G's colour does show
    # a pure head roll and a no-op are the warp alone: empty region
    rolled = _points(roll=10.0)
    assert edit_region(source, rolled, SIZE, SIZE).max() < 1e-6
    assert edit_region(source, source, SIZE, SIZE).max() == 0


def test_a_wider_edit_region_margin_lets_g_draw_further_out():
    source, target = _points(), _points(smile=1.0)
    default = edit_region(source, target, SIZE, SIZE)
    assert torch.equal(edit_region(source, target, SIZE, SIZE, margin=1.0), default)
    wide = edit_region(source, target, SIZE, SIZE, margin=2.0)
    assert torch.all(wide >= default) and float((wide > 0).sum()) > 1.3 * float((default > 0).sum())
    # G reads the margin from its config: more of the output may leave the warped photo
    image = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    warped = warp_by_landmarks(image, source, target)
    changed = []
    for margin in (1.0, 2.0):
        generator = _randomised(Generator(_config(edit_region_margin=margin)), 0)
        output = _photo_edit(generator, image, source, target)
        changed.append(int(((output - warped).abs() > 0).any(dim=1).sum()))
    assert changed[1] > 1.3 * changed[0]
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="edit_region_margin"):
            _config(edit_region_margin=bad)
        with pytest.raises(ValueError, match="edit_region_margin"):  # also when a loaded config is reassigned
            edit_region(source, target, SIZE, SIZE, margin=bad)


def test_edit_region_covers_the_moved_eye_and_is_feathered():
    source = _points(128)
    closed = _points(128, left_eye_open=-1.0)
    region = edit_region(source, closed, 128, 128)[0, 0]
    eye = closed[0, 42:48].mean(dim=0).round().long()
    assert region[eye[1], eye[0]] == 1
    mouth = closed[0, 48:60].mean(dim=0).round().long()
    assert region[mouth[1], mouth[0]] == 0  # the mouth did not move
    values = torch.unique(region)
    assert ((values > 0) & (values < 1)).sum() > 3  # a ramp, not a hard edge


def test_gate_mask_formula():
    mask = torch.full((3, 1, 4, 4), 0.8)
    change = torch.tensor([0.0, 1.0, 0.25])
    region = torch.zeros(3, 1, 4, 4)
    region[:, :, :2] = 1.0
    gated = gate_mask(mask, change, region)
    assert torch.all(gated[0, :, 2:] == 1) and torch.allclose(gated[0, :, :2], torch.tensor(0.8))
    assert torch.all(gated[1] == 0)
    expected_outside = 1 - 0.25 * (1 - 0.8 * 0.75)
    assert torch.allclose(gated[2, :, 2:], torch.tensor(expected_outside))
    assert torch.allclose(gated[2, :, :2], torch.tensor(0.8 * 0.75))


def test_conditional_instance_norm_mixes_rows():
    norm = ConditionalInstanceNorm(4, 3)
    with torch.no_grad():
        norm.scale.copy_(torch.randn(3, 4))
        norm.shift.copy_(torch.randn(3, 4))
    x = torch.randn(2, 4, 5, 5)
    a = norm(x, torch.tensor([[1.0, 0, 0], [1.0, 0, 0]]))
    b = norm(x, torch.tensor([[0, 1.0, 0], [0, 1.0, 0]]))
    mixed = norm(x, torch.tensor([[0.5, 0.5, 0], [0.5, 0.5, 0]]))
    assert torch.allclose(mixed, (a + b) / 2, atol=1e-5)


def test_gate_and_region_need_a_warp_guided_g():
    with pytest.raises(ValueError, match="conversion_gate needs warp_guided"):
        PortraitGANConfig(conversion_gate=True)
    with pytest.raises(ValueError, match="edit_region needs conversion_gate"):
        PortraitGANConfig(warp_guided=True, edit_region=True)


def test_outline_loss_gradient_reaches_only_outline_pixels():
    target = torch.ones(2, 3, 32, 32)
    target[:, :, 10:12, 4:28] = -1.0  # a dark two-pixel line on white
    edges = outline_pixels(target)
    assert edges[0, 0, 10, 10] == 1 and edges[0, 0, 25, 10] == 0 and edges[0, 0, 2, 2] == 0
    generated = torch.zeros(2, 3, 32, 32, requires_grad=True)
    loss = outline_loss(generated, target, torch.tensor([1.0, 0.0]))
    loss.backward()
    reached = generated.grad[0].abs().sum(dim=0) > 0
    assert torch.equal(reached, edges[0, 0] > 0)
    assert generated.grad[1].abs().sum() == 0  # an expression edit (weight 0) gets nothing
    assert torch.isclose(loss, torch.tensor(0.5))  # |0 - (+-1)| = 1 on sample 0's edges, weight 0 for sample 1


def test_gradient_loss_is_zero_for_equal_images_and_sees_blur():
    target = torch.zeros(1, 3, 32, 32)
    target[:, :, :, 16:] = 1.0
    assert gradient_loss(target.clone(), target) == 0
    blurred = torch.nn.functional.avg_pool2d(target, 5, stride=1, padding=2, count_include_pad=False)
    assert gradient_loss(blurred, target) > 0.01


def test_an_old_lite_config_builds_the_paper_decoder():
    config = PortraitGANConfig.preset("lite", warp_guided=True)
    generator = Generator(config)
    assert isinstance(generator.up[0][0], torch.nn.ConvTranspose2d)
    assert not config.conversion_gate and not config.edit_region
    assert dataclasses.asdict(config)["skip_connections"] is False


def _model_and_inputs():
    from portraitgan_hub import PortraitGAN

    torch.manual_seed(0)
    model = PortraitGAN(_config()).eval()
    _randomised(model.generator, 1)
    image = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    return model, image, torch.zeros(1, 1, SIZE, SIZE), _points(), _points(smile=0.8)


def test_a_new_modality_is_a_new_norm_row_and_old_outputs_stay_unchanged():
    from portraitgan_hub.growth import grow_modalities

    model, image, landmark_map, source, target = _model_and_inputs()
    for initial in (None, "sketch"):
        grown = grow_modalities(model, ["watercolour"], initial=initial).eval()
        norms = [m for m in grown.generator.modules() if isinstance(m, ConditionalInstanceNorm)]
        assert norms and all(n.scale.shape[0] == 4 for n in norms)
        with torch.no_grad():
            for index in range(3):
                old = model.generate(image, landmark_map, index, source, target)
                new = grown.generate(image, landmark_map, index, source, target)
                assert torch.allclose(old, new, rtol=0, atol=1e-5)  # float rounding of the wider stem
            added = grown.generate(image, landmark_map, "watercolour", source, target)
            if initial == "sketch":
                assert torch.allclose(added, model.generate(image, landmark_map, "sketch", source, target), atol=1e-6)
            else:
                assert all(torch.equal(n.scale[3], torch.ones_like(n.scale[3])) for n in norms)


def test_frozen_decoder_keeps_the_new_modality_rows_trainable():
    from portraitgan_hub.growth import grow_modalities
    from train.finetune import freeze_generator_parts

    model, image, landmark_map, source, target = _model_and_inputs()
    grown = grow_modalities(model, ["watercolour"]).train()
    freeze_generator_parts(grown, ["encoder", "residual", "decoder"], ["watercolour"])
    output = grown(image, landmark_map, torch.tensor([3]), source, target)[0]
    output.mean().backward()
    norm = next(m for m in grown.generator.up.modules() if isinstance(m, ConditionalInstanceNorm))
    assert norm.scale.grad[3].abs().sum() > 0 and norm.scale.grad[:3].abs().sum() == 0
    assert grown.generator.residual[0].body[1].weight.grad is None


def test_freeze_discriminator_layers_holds_the_lower_blocks():
    from portraitgan_hub.discriminator import MultiLevelDiscriminator
    from train.finetune import freeze_discriminator_layers

    discriminator = MultiLevelDiscriminator(_config(mouth_discriminator=True))
    frozen = freeze_discriminator_layers(discriminator, 2)
    assert frozen and all(".blocks.0." in name or ".blocks.1." in name for name in frozen)
    trainable = [n for n, p in discriminator.named_parameters() if p.requires_grad]
    assert trainable and not any(".blocks.0." in n or ".blocks.1." in n for n in trainable)
    with pytest.raises(ValueError, match="freeze_discriminator_layers"):
        freeze_discriminator_layers(discriminator, 99)


def test_an_untrained_skip_g_starts_from_its_input_also_in_a_conversion():
    """C = tanh(atanh(input) + head) with the head at zero: a full conversion (A = 0) starts as a copy."""
    generator = Generator(_config()).eval()
    image = (torch.rand(1, 3, SIZE, SIZE) * 2 - 1).clamp(-0.99, 0.99)
    points = _points()
    with torch.no_grad():
        rendering = generator.infer(image, torch.zeros(1, 1, SIZE, SIZE), torch.tensor([2]), points, points)
    assert torch.all(rendering.mask == 0)
    assert torch.allclose(rendering.images[0], image, atol=1e-5)
    assert torch.allclose(rendering.images[1], torch.nn.functional.avg_pool2d(image, 2), atol=1e-5)


def test_white_and_black_pixels_give_finite_gradients_under_bf16_autocast():
    """bf16 rounds the residual's clamp to 1, where atanh is infinite: the residual must stay float32.

    The cycle (Eq. 11) feeds G's output back to G, so a NaN at the second pass's input reaches every
    weight of the first."""
    torch.manual_seed(0)
    generator = Generator(_config()).train()
    image = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    image[..., : SIZE // 4, :] = 1.0  # a studio's white background
    image[..., -SIZE // 4 :, :] = -1.0  # and a black jumper
    source, target, landmark_map = _points(), _points(smile=0.8), torch.zeros(1, 1, SIZE, SIZE)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        photo, sketch = torch.tensor([0]), torch.tensor([1])
        edited = generator(image, landmark_map, sketch, source, target, source_modality=photo)
        cycled = generator(edited[0], landmark_map, photo, target, source, source_modality=sketch)
    (cycled[0].float() - image).abs().mean().backward()
    bad = [n for n, p in generator.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad
    assert all(p.grad is not None for p in generator.stem.parameters())
    assert edited[0].dtype == torch.float32  # C keeps the float32 input's precision under autocast
    half = Generator(_config()).to(torch.bfloat16).eval()
    with torch.no_grad():
        drawn = half(image.bfloat16(), landmark_map.bfloat16(), sketch, source, target, source_modality=photo)
    assert drawn[0].dtype == torch.bfloat16 and bool(torch.isfinite(drawn[0]).all())
