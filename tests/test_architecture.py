import re
from pathlib import Path

import pytest
import torch

from portraitgan_hub import PortraitGAN, PortraitGANConfig
from portraitgan_hub.discriminator import MultiLevelDiscriminator, PatchDiscriminator

README = Path(__file__).resolve().parents[1] / "README.md"


def _inputs(config: PortraitGANConfig, batch: int = 1):
    size = config.image_size
    return (
        torch.rand(batch, 3, size, size) * 2 - 1,
        (torch.rand(batch, 1, size, size) > 0.9).float(),
        torch.arange(batch) % config.num_modalities,
    )


@pytest.mark.parametrize("preset", ["paper", "lite"])
def test_generator_outputs_every_level(preset):
    config = PortraitGANConfig.preset(preset)
    model = PortraitGAN(config).eval()
    with torch.inference_mode():
        levels = model(*_inputs(config))
    size = config.image_size
    assert [tuple(level.shape) for level in levels] == [
        (1, 3, size // 2**i, size // 2**i) for i in range(config.num_levels)
    ]
    assert all(level.abs().max() <= 1 for level in levels)  # tanh images


@pytest.mark.parametrize("preset", ["paper", "lite"])
def test_discriminators_judge_every_level(preset):
    config = PortraitGANConfig.preset(preset, image_size=128)
    discriminator = MultiLevelDiscriminator(config)
    image = torch.rand(2, 3, 128, 128)
    judged = discriminator(discriminator.real_pyramid(image))
    assert len(judged) == config.num_levels == len(discriminator.discriminators)
    for outputs in judged:
        assert outputs[-1].shape[:2] == (2, 1)  # patch logits last, features before
        assert len(outputs) == config.discriminator_layers + 2


def test_patchgan_receptive_field_is_70():
    convolutions = [m for m in PatchDiscriminator(3, 8, 3).modules() if isinstance(m, torch.nn.Conv2d)]
    field = 1
    for conv in reversed(convolutions):
        field = (field - 1) * conv.stride[0] + conv.kernel_size[0]
    assert field == 70


def _readme_parameter_count(preset: str) -> float:
    match = re.search(rf"^\|\s*`{preset}`\s*\|[^|]*\|\s*([\d.]+)\s*M\s*\|", README.read_text(), re.MULTILINE)
    assert match, f"README has no parameter row for {preset}"
    return float(match.group(1)) * 1e6


@pytest.mark.parametrize("preset", ["paper", "lite"])
def test_parameter_count_matches_readme(preset):
    model = PortraitGAN(PortraitGANConfig.preset(preset))
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - _readme_parameter_count(preset)) / count < 0.02


@pytest.mark.parametrize("normalization", ["instance", "batch"])
def test_output_depends_on_image_landmarks_and_modality(normalization):
    """Every input of Eq. 1 must reach the output. A spatially constant one-hot is easy to lose: instance
    norm (and batch norm over a batch of one modality) subtracts per-channel constants."""
    torch.manual_seed(0)
    config = PortraitGANConfig(
        image_size=32, base_channels=8, max_channels=16, num_residual_blocks=1, normalization=normalization
    )
    generator = PortraitGAN(config).generator.train(normalization == "batch")
    image, landmarks, _ = _inputs(config, batch=2)
    photo, sketch = torch.zeros(2, dtype=torch.long), torch.ones(2, dtype=torch.long)
    with torch.no_grad():
        base = generator(image, landmarks, photo)[0]
        by_image = (base - generator(image.flip(-1), landmarks, photo)[0]).abs().mean()
        by_landmarks = (base - generator(image, landmarks.flip(-1), photo)[0]).abs().mean()
        by_modality = (base - generator(image, landmarks, sketch)[0]).abs().mean()
    assert by_image > 1e-3 and by_landmarks > 0.05 * by_image and by_modality > 0.05 * by_image


def test_modality_weights_condition_g_continuously():
    """Issue #12: c may be a convex combination of one-hots; a one-hot weight vector is exactly the index."""
    torch.manual_seed(0)
    config = PortraitGANConfig(image_size=32, base_channels=8, max_channels=16, num_residual_blocks=1)
    generator = PortraitGAN(config).generator.eval()
    image, landmarks, _ = _inputs(config, batch=1)
    with torch.no_grad():
        photo = generator(image, landmarks, torch.zeros(1, dtype=torch.long))[0]
        sketch = generator(image, landmarks, torch.ones(1, dtype=torch.long))[0]
        assert torch.allclose(generator(image, landmarks, torch.tensor([[0.0, 1.0, 0.0]]))[0], sketch, atol=1e-6)
        halves = [generator(image, landmarks, torch.tensor([[1 - s, s, 0.0]]))[0] for s in (0.25, 0.5, 0.75)]
    # Untrained, so no monotonic path is promised (the trained model's is tested in test_default_model.py);
    # the in-between conditions are new inputs, not a copy of either end.
    for half in halves:
        assert float((half - sketch).abs().mean()) > 1e-4 and float((half - photo).abs().mean()) > 1e-4
    with pytest.raises(ValueError, match="modality weights"):
        generator(image, landmarks, torch.tensor([[0.5, 0.5]]))


def test_attention_mask_blends_input_and_colour_at_every_level():
    """With config.attention_mask, each level is A * input + (1 - A) * colour: a mask saturated at 1
    returns the (area-resized) input exactly, one at 0 the plain tanh colour of the paper's head."""
    torch.manual_seed(0)
    config = PortraitGANConfig(
        image_size=32, base_channels=8, max_channels=16, num_residual_blocks=1, attention_mask=True
    )
    generator = PortraitGAN(config).generator.eval()
    image, landmarks, modality = _inputs(config)
    heads = [generator.to_rgb[-1], *(branch[-1] for branch in generator.aux_to_rgb)]
    with torch.no_grad():
        for head in heads:
            head.bias[3] = 50.0  # A = 1: copy the input
        copied = generator(image, landmarks, modality)
        for head in heads:
            head.bias[3] = -50.0  # A = 0: colour only
        coloured = generator(image, landmarks, modality)
    for level, (out, colour) in enumerate(zip(copied, coloured)):
        source = torch.nn.functional.interpolate(image, scale_factor=0.5**level, mode="area")
        torch.testing.assert_close(out, source)
        assert not torch.allclose(colour, source, atol=0.1)
        assert colour.abs().max() < 1


def test_attention_mask_changes_only_the_head_shapes():
    """Checkpoints of the paper's head keep their tensor names; the mask adds one output channel."""
    plain = PortraitGAN(PortraitGANConfig.preset("lite")).state_dict()
    masked = PortraitGAN(PortraitGANConfig.preset("lite", attention_mask=True)).state_dict()
    assert plain.keys() == masked.keys()
    differing = {name for name in plain if plain[name].shape != masked[name].shape}
    assert differing and all("to_rgb" in name for name in differing)


def test_untrained_masked_generator_starts_near_the_identity_map():
    """The mask heads start at A = sigmoid(MASK_INITIAL_LOGIT) = 0.95: training begins from the input."""
    torch.manual_seed(0)
    config = PortraitGANConfig(
        image_size=32, base_channels=8, max_channels=16, num_residual_blocks=1, attention_mask=True
    )
    generator = PortraitGAN(config).generator.eval()
    image, landmarks, modality = _inputs(config)
    with torch.no_grad():
        output = generator(image, landmarks, modality)[0]
    assert ((output - image) ** 2).mean() < 0.01 * (image**2).mean()
