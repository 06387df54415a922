"""The modality-conditional discriminator (``model.modality_discriminator``, not in the paper) with the
growth of trained discriminator weights to new inputs (``growth.grow_discriminator_state``), and
``losses.modality_change``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from portraitgan_hub import PortraitGANConfig
from portraitgan_hub.condition import modality_change
from portraitgan_hub.discriminator import MultiLevelDiscriminator
from portraitgan_hub.faces.alignment import template_in_crop
from portraitgan_hub.faces.expressions import apply_expression
from portraitgan_hub.generator import Generator
from portraitgan_hub.growth import discriminator_input_names, grow_discriminator_state
from portraitgan_hub.losses import mask_penalty
from portraitgan_hub.objective import (
    ObjectiveConfig,
    _split_pooled,
    discriminator_objective,
    generator_objective,
    pooled_real,
    run_generator,
)

SIZE = 64


def _config(**overrides) -> PortraitGANConfig:
    return PortraitGANConfig(
        image_size=SIZE, base_channels=8, max_channels=16, num_residual_blocks=1, discriminator_channels=8, **overrides
    )


def _images(batch: int = 2) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.rand(batch, 3, SIZE, SIZE, generator=generator), torch.rand(batch, 3, SIZE // 2, SIZE // 2)]


def _points(**expression: float) -> torch.Tensor:
    points = template_in_crop(SIZE)
    if expression:
        points = apply_expression(points, **expression)
    return torch.tensor(np.asarray(points), dtype=torch.float32)[None]


def _batch(modality_b: list[int], warp: bool = True) -> dict[str, torch.Tensor]:
    """Two random pairs from photo (A) to ``modality_b``; with ``warp``, B's landmarks smile."""
    batch = {
        "image_a": torch.rand(2, 3, SIZE, SIZE) * 2 - 1,
        "image_b": torch.rand(2, 3, SIZE, SIZE) * 2 - 1,
        "landmarks_map_a": torch.zeros(2, 1, SIZE, SIZE),
        "landmarks_map_b": torch.zeros(2, 1, SIZE, SIZE),
        "modality_a": torch.tensor([0, 0]),
        "modality_b": torch.tensor(modality_b),
    }
    if warp:
        batch["landmarks_a"] = _points().expand(2, -1, -1)
        batch["landmarks_b"] = _points(smile=1.0).expand(2, -1, -1)
    return batch


def test_modality_discriminator_judges_the_same_image_differently_per_asked_modality():
    config = _config(conditional_discriminator=True, modality_discriminator=True, mouth_discriminator=True)
    d = MultiLevelDiscriminator(config)
    assert config.discriminator_in_channels == 3 + 1 + config.num_modalities
    assert all(level.blocks[0][0].in_channels == 3 + 1 + 3 for level in d.discriminators)
    assert d.mouth.blocks[0][0].in_channels == 3 + 1 + 3
    images, landmark_map, points = _images(), torch.zeros(2, 1, SIZE, SIZE), _points().expand(2, -1, -1)
    as_photo = d(images, landmark_map, None, points, torch.tensor([0, 0]))
    as_sketch = d(images, landmark_map, None, points, torch.tensor([1, 1]))
    for level in range(3):  # both levels and the mouth
        assert not torch.allclose(as_photo[level][-1], as_sketch[level][-1])
    weights = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # (B, n) weights: the same as index 0
    assert torch.allclose(d(images, landmark_map, None, points, weights)[0][-1], as_photo[0][-1])
    with pytest.raises(ValueError, match="target modality"):
        d(images, landmark_map)
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        d(images, landmark_map, modality=torch.ones(2, 4))


def test_pooled_reals_keep_their_condition():
    d = MultiLevelDiscriminator(_config(conditional_discriminator=True, modality_discriminator=True))
    image, landmark_map = torch.rand(2, 3, SIZE, SIZE), torch.rand(2, 1, SIZE, SIZE)
    condition = torch.tensor([[0.25, 0.75, 0.0], [0.0, 0.0, 1.0]])
    pooled = pooled_real(d, image, landmark_map, condition)
    assert pooled.shape == (2, 3 + 1 + 3, SIZE, SIZE)
    back_image, back_map, back_condition = _split_pooled(d, pooled)
    assert torch.equal(back_image, image) and torch.equal(back_map, landmark_map)
    assert torch.allclose(back_condition, condition)
    plain = MultiLevelDiscriminator(_config())
    assert pooled_real(plain, image, landmark_map, condition) is image
    assert _split_pooled(plain, image)[1:] == (None, None)


def test_objective_with_a_modality_discriminator_and_mixtures_trains_every_part():
    config = _config(
        warp_guided=True, conditional_discriminator=True, mouth_discriminator=True, modality_discriminator=True
    )
    generator, discriminator = Generator(config), MultiLevelDiscriminator(config)
    objective = ObjectiveConfig(texture=0.0, diff_augment=["color", "translation", "cutout"], mask_penalty=0.05)
    batch = {
        **_batch([2, 1]),
        "condition_a": torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]),
        "condition_b": torch.tensor([[0.0, 0.0, 1.0], [0.6, 0.4, 0.0]]),  # a cartoon and a 40% sketch
    }
    outputs = run_generator(generator, batch, cycle=True, warp_guided=True, masks=True)
    discriminator.requires_grad_(False)
    terms = generator_objective(outputs, batch, discriminator, objective)
    assert {"gan_mouth", "feature_matching", "mask"} <= set(terms)
    terms["total"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in generator.parameters())
    discriminator.requires_grad_(True)
    d_terms = discriminator_objective(outputs, batch, discriminator, objective)
    d_terms["total"].backward()
    first = [level.blocks[0][0].weight.grad for level in discriminator.discriminators]
    assert all(g[:, 4:].abs().sum() > 0 for g in first), "the modality planes' weights must train"


def test_grown_discriminators_judge_as_before_until_they_learn_the_new_inputs():
    old_config = _config(conditional_discriminator=True, mouth_discriminator=True)
    torch.manual_seed(0)
    old = MultiLevelDiscriminator(old_config)
    for parameter in old.parameters():  # trained weights are not the initial ones
        parameter.data.add_(torch.randn_like(parameter) * 0.05)
    new_config = dataclasses.replace(
        old_config, modality_discriminator=True, modalities=[*old_config.modalities, "watercolour"]
    )
    assert discriminator_input_names(new_config)[3:] == [
        "landmark_map",
        "modality:photo",
        "modality:sketch",
        "modality:cartoon",
        "modality:watercolour",
    ]
    grown = MultiLevelDiscriminator(new_config)
    grown.load_state_dict(grow_discriminator_state(old.state_dict(), old_config, new_config), strict=True)
    images, landmark_map, points = _images(), torch.rand(2, 1, SIZE, SIZE), _points().expand(2, -1, -1)
    before = old(images, landmark_map, None, points)
    for modality in range(4):
        after = grown(images, landmark_map, None, points, torch.tensor([modality, modality]))
        for old_level, new_level in zip(before, after):
            assert torch.allclose(old_level[-1], new_level[-1], atol=1e-6)
    # a newly enabled mouth PatchGAN starts fresh; a different width is refused, naming the tensor
    no_mouth = dataclasses.replace(old_config, mouth_discriminator=False)
    state = MultiLevelDiscriminator(no_mouth).state_dict()
    assert set(grow_discriminator_state(state, no_mouth, new_config)) == set(grown.state_dict())
    with pytest.raises(ValueError, match="discriminator_channels"):
        grow_discriminator_state(
            old.state_dict(), old_config, dataclasses.replace(new_config, discriminator_channels=16)
        )


def test_modality_change_and_the_mask_penalty():
    source = torch.tensor([0, 0, 1])
    target = torch.tensor([[1.0, 0.0, 0.0], [0.7, 0.0, 0.3], [0.0, 0.0, 1.0]])
    assert torch.allclose(modality_change(source, target, 3), torch.tensor([0.0, 0.3, 1.0]))
    assert torch.allclose(modality_change(torch.tensor([2]), torch.tensor([2]), 3), torch.tensor([0.0]))
    mask = torch.stack([torch.full((1, 4, 4), v) for v in (0.9, 0.5, 0.2)])
    assert torch.isclose(mask_penalty(mask), mask.mean())
