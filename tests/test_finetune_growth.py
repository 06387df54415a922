"""Growing a model for fine-tuning (issue #16), beyond the demo checkpoint's 3 -> 4 modalities
(test_finetune.py): the new modality's learning-rate scale, a warp-guided model's hallucination
channel, a masked model made warp-guided (``train.make_warp_guided``), and the mask penalty.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_train_loop import _fresh_accelerate, _one_thread  # noqa: F401  (autouse fixtures, shared)

from portraitgan_hub import DEFAULT_MODEL, PortraitGAN
from portraitgan_hub.growth import grow_modalities, stem_convolution
from train.finetune import scale_new_modality_updates


def test_new_modality_lr_scale_multiplies_only_the_new_stem_channels() -> None:
    torch.manual_seed(0)
    images, maps = torch.rand(1, 3, 64, 64) * 2 - 1, torch.zeros(1, 1, 64, 64)
    deltas = {}
    for factor in (1.0, 10.0):
        model = grow_modalities(PortraitGAN.from_pretrained(DEFAULT_MODEL), ["watercolour"]).train()
        _, stem = stem_convolution(model)
        start = stem.weight.detach().clone()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        scale_new_modality_updates(optimizer, model, ["watercolour"], factor)
        model(images, maps, torch.tensor([3]))[0].mean().backward()
        optimizer.step()  # one step: a second one would see different weights
        deltas[factor] = stem.weight.detach() - start
    new = model.config.modality_channels.start + 3
    old = [c for c in range(deltas[1.0].shape[1]) if c != new]
    assert torch.count_nonzero(deltas[1.0][:, new]) > 0
    assert torch.allclose(deltas[10.0][:, new], 10 * deltas[1.0][:, new], atol=1e-7)
    assert torch.equal(deltas[10.0][:, old], deltas[1.0][:, old])
    with pytest.raises(ValueError, match="new_modality_lr_scale"):
        scale_new_modality_updates(optimizer, model, ["watercolour"], 0)


def test_growing_a_warp_guided_model_keeps_its_hallucination_channel() -> None:
    """The hallucination-mask channel sits after the modality planes: growth inserts before it."""
    import torch

    from portraitgan_hub import PortraitGAN, PortraitGANConfig
    from portraitgan_hub.faces.alignment import template_in_crop
    from portraitgan_hub.faces.expressions import apply_expression
    from portraitgan_hub.growth import grow_modalities

    torch.manual_seed(0)
    config = PortraitGANConfig(image_size=64, base_channels=8, max_channels=16, num_residual_blocks=1, warp_guided=True)
    model = PortraitGAN(config).eval()
    grown = grow_modalities(model, ["watercolour"]).eval()
    assert grown.generator.stem[1].in_channels == model.generator.stem[1].in_channels + 1
    image, landmark_map = torch.rand(1, 3, 64, 64) * 2 - 1, torch.zeros(1, 1, 64, 64)
    source = torch.tensor(template_in_crop(64), dtype=torch.float32)[None]
    target = torch.tensor(apply_expression(template_in_crop(64), mouth_open=1.0), dtype=torch.float32)[None]
    for name in config.modalities:  # a real hallucination mask, so its channel's weights matter
        before = model.generate(image, landmark_map, name, source, target)
        # Equal up to float rounding: with one more (zero) input channel oneDNN may sum the stem's
        # products in another order (2e-6 on a Zen3 CPU; bit-identical on others).
        assert torch.allclose(before, grown.generate(image, landmark_map, name, source, target), rtol=0, atol=1e-5)


def test_grow_warp_guidance_keeps_every_output_of_a_masked_model(tmp_path: Path) -> None:
    """The previous demo checkpoint's start: a masked G made warp-guided does what it did where nothing moves,
    and draws from the warped face where landmarks move; the command writes a loadable folder."""
    from portraitgan_hub import PortraitGANConfig
    from portraitgan_hub.faces.alignment import template_in_crop
    from portraitgan_hub.faces.expressions import apply_expression
    from portraitgan_hub.growth import grow_warp_guidance
    from portraitgan_hub.thin_plate_spline import warp_by_landmarks
    from train.make_warp_guided import main as make_warp_guided

    torch.manual_seed(0)
    config = PortraitGANConfig(
        image_size=64, base_channels=8, max_channels=16, num_residual_blocks=1, attention_mask=True
    )
    model = PortraitGAN(config).eval()
    grown = grow_warp_guidance(model, mouth_discriminator=True).eval()
    assert grown.config.warp_guided and grown.config.mouth_discriminator and not model.config.warp_guided
    image, landmark_map = torch.rand(1, 3, 64, 64) * 2 - 1, torch.zeros(1, 1, 64, 64)
    points = torch.tensor(template_in_crop(64), dtype=torch.float32)[None]
    for name in config.modalities:
        assert torch.equal(
            model.generate(image, landmark_map, name), grown.generate(image, landmark_map, name, points, points)
        )
    smiling = torch.tensor(apply_expression(template_in_crop(64), smile=1.0), dtype=torch.float32)[None]
    warped = warp_by_landmarks(image, points, smiling)
    expected = model.generate(warped, landmark_map, "photo")  # no inner-mouth change: no hallucination
    assert torch.allclose(grown.generate(image, landmark_map, "photo", points, smiling), expected, atol=1e-5)
    with pytest.raises(ValueError, match="masked generator"):
        grow_warp_guidance(grown)
    with pytest.raises(ValueError, match="discriminator fields"):
        grow_warp_guidance(model, num_levels=1)
    model.save_pretrained(tmp_path / "masked")
    make_warp_guided([str(tmp_path / "masked"), str(tmp_path / "warp"), "--conditional-discriminator"])
    loaded = PortraitGAN.from_pretrained(tmp_path / "warp")
    assert loaded.config.warp_guided and loaded.config.conditional_discriminator


def test_mask_penalty_is_the_mean_mask_of_both_translations() -> None:
    """GANimation's mask term enters Eq. 12 with its weight, and only when asked for."""
    from portraitgan_hub import PortraitGANConfig
    from portraitgan_hub.discriminator import MultiLevelDiscriminator
    from portraitgan_hub.objective import ObjectiveConfig, generator_objective, run_generator

    torch.manual_seed(0)
    config = PortraitGANConfig(
        image_size=32, base_channels=8, max_channels=16, num_residual_blocks=1, attention_mask=True
    )
    model = PortraitGAN(config)
    batch = {
        "image_a": torch.rand(2, 3, 32, 32) * 2 - 1,
        "image_b": torch.rand(2, 3, 32, 32) * 2 - 1,
        "landmarks_map_a": torch.zeros(2, 1, 32, 32),
        "landmarks_map_b": torch.zeros(2, 1, 32, 32),
        "modality_a": torch.tensor([0, 1]),
        "modality_b": torch.tensor([1, 0]),
    }
    objective = ObjectiveConfig(texture=0.0, feature_matching=0.0, mask_penalty=0.5)
    outputs = run_generator(model, batch, cycle=True, masks=True)
    _, mask_b = model(batch["image_a"], batch["landmarks_map_b"], batch["modality_b"], return_mask=True)
    assert torch.allclose(outputs.mask_b, mask_b)
    discriminator = MultiLevelDiscriminator(config)
    terms = generator_objective(outputs, batch, discriminator, objective)
    assert torch.allclose(terms["mask"], outputs.mask_b.mean() + outputs.mask_a.mean())
    without = generator_objective(outputs, batch, discriminator, ObjectiveConfig(texture=0.0, feature_matching=0.0))
    assert "mask" not in without
    assert torch.allclose(terms["total"] - without["total"], 0.5 * terms["mask"], atol=1e-5)
    terms["mask"].backward()
    assert model.generator.to_rgb[-1].bias.grad[3:].abs().sum() > 0  # it reaches the mask head
