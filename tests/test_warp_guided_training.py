"""What trains the warp-guided generator (test_warp_guided.py): the conditional and mouth
discriminators, DiffAugment, the cycle term without the hallucination region, the full objective,
and synthetic pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_warp_guided import SIZE, _points

from portraitgan_hub import PortraitGANConfig
from portraitgan_hub.diffaugment import diff_augment
from portraitgan_hub.discriminator import MultiLevelDiscriminator, mouth_crop
from portraitgan_hub.generator import Generator
from portraitgan_hub.losses import cycle_loss
from portraitgan_hub.objective import ObjectiveConfig, discriminator_objective, generator_objective, run_generator

ASSETS = Path(__file__).resolve().parent / "assets" / "london_subset"


# --- the discriminators, DiffAugment and the cycle ----------------------------------------------------
def _tiny_config(**overrides) -> PortraitGANConfig:
    return PortraitGANConfig(
        image_size=SIZE, base_channels=8, max_channels=16, num_residual_blocks=1, discriminator_channels=8, **overrides
    )


def test_conditional_discriminator_sees_the_landmark_map():
    d = MultiLevelDiscriminator(_tiny_config(conditional_discriminator=True))
    assert all(level.blocks[0][0].in_channels == 4 for level in d.discriminators)
    images = [torch.rand(2, 3, SIZE, SIZE), torch.rand(2, 3, SIZE // 2, SIZE // 2)]
    landmark_map = torch.zeros(2, 1, SIZE, SIZE)
    plain = d(images, landmark_map)
    assert len(plain) == 2 and plain[1][-1].shape[0] == 2
    landmark_map[:, :, 20:40, 20:40] = 1
    assert not torch.allclose(plain[0][-1], d(images, landmark_map)[0][-1])  # the map changes the verdict
    with pytest.raises(ValueError, match="landmark map"):
        d(images)


def test_mouth_discriminator_judges_the_mouth_only():
    d = MultiLevelDiscriminator(_tiny_config(mouth_discriminator=True))
    points = _points(smile=1.0)
    image = torch.rand(1, 3, SIZE, SIZE, requires_grad=True)
    outputs = d([image, torch.rand(1, 3, SIZE // 2, SIZE // 2)], mouth_landmarks=points)
    assert len(outputs) == 3  # two levels and the mouth
    outputs[2][-1].mean().backward()
    gradient = image.grad.abs().sum(dim=(0, 1))
    rows = torch.nonzero(gradient.sum(dim=1)).flatten()
    mouth_rows = points[0, 48:68, 1]
    assert rows.min() >= mouth_rows.min() - 12 and rows.max() <= mouth_rows.max() + 12  # around the lips
    crop = mouth_crop(image.detach(), points, 16)
    assert crop.shape == (1, 3, 16, 16)


def test_diffaugment_keeps_gradients_and_leaves_the_condition_colour_free():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(4, 4, 32, 32, requires_grad=True)
    out = diff_augment(x, generator=generator)
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    colour_only = diff_augment(x.detach(), ("color",), torch.Generator().manual_seed(1))
    assert torch.equal(colour_only[:, 3:], x.detach()[:, 3:]) and not torch.equal(colour_only[:, :3], x[:, :3])
    with pytest.raises(ValueError, match="unknown DiffAugment"):
        diff_augment(x, ("blur",))


def test_cycle_leaves_out_the_hallucination_region():
    original = torch.zeros(1, 3, 8, 8)
    reconstructed = original.clone()
    reconstructed[:, :, 2:4, 2:4] = 1.0  # wrong only inside the region
    excluded = torch.zeros(1, 1, 8, 8)
    excluded[:, :, 2:4, 2:4] = 1
    assert cycle_loss(reconstructed, original) > 0
    assert cycle_loss(reconstructed, original, excluded) == 0


def _batch(size: int = SIZE) -> dict[str, torch.Tensor]:
    neutral, smiling = _points(size), _points(size, smile=1.0, mouth_open=0.8)
    return {
        "image_a": torch.rand(2, 3, size, size) * 2 - 1,
        "image_b": torch.rand(2, 3, size, size) * 2 - 1,
        "landmarks_map_a": torch.zeros(2, 1, size, size),
        "landmarks_map_b": torch.zeros(2, 1, size, size),
        "landmarks_a": neutral.expand(2, -1, -1),
        "landmarks_b": smiling.expand(2, -1, -1),
        "modality_a": torch.tensor([0, 1]),
        "modality_b": torch.tensor([0, 0]),
    }


def test_full_objective_with_every_addition_trains_every_part():
    config = _tiny_config(warp_guided=True, conditional_discriminator=True, mouth_discriminator=True)
    generator, discriminator = Generator(config), MultiLevelDiscriminator(config)
    objective = ObjectiveConfig(texture=0.0, diff_augment=["color", "translation", "cutout"])
    batch = _batch()
    outputs = run_generator(generator, batch, cycle=True, warp_guided=True)
    assert outputs.hallucination_a.sum() == 0 and outputs.hallucination_b.sum() > 0  # the way back to the smile
    discriminator.requires_grad_(False)
    terms = generator_objective(outputs, batch, discriminator, objective)
    assert {"gan_mouth", "cycle", "feature_matching", "identity"} <= set(terms)
    terms["total"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in generator.parameters())
    discriminator.requires_grad_(True)
    d_terms = discriminator_objective(outputs, batch, discriminator, objective)
    assert "d_mouth" in d_terms
    d_terms["total"].backward()
    assert all(p.grad is not None for p in discriminator.parameters())


def test_hallucination_loss_is_the_l1_over_the_region_alone():
    """losses.hallucination_loss: the mean error of the region's pixels only, 0 without a region."""
    from portraitgan_hub.losses import hallucination_loss

    target = torch.zeros(2, 3, 8, 8)
    generated = torch.zeros(2, 3, 8, 8, requires_grad=True)
    region = torch.zeros(2, 1, 8, 8)
    region[0, :, 2:4, 2:4] = 1
    with torch.no_grad():
        generated[0, :, 2:4, 2:4] = 0.5  # the region's error
        generated[1] = 1.0  # outside any region: not counted
    loss = hallucination_loss(generated, target, region)
    assert loss.item() == pytest.approx(0.5)
    loss.backward()
    assert generated.grad[1].abs().sum() == 0 and generated.grad[0, :, 2:4, 2:4].abs().min() > 0
    assert hallucination_loss(generated, target, torch.zeros_like(region)).item() == 0.0


def test_hallucination_l1_trains_what_g_draws_in_the_opened_mouth():
    """objective.hallucination_l1: a term over the translation to the smile's hallucination region, whose
    gradient reaches G's output only there; the translation back to the closed mouth has none."""
    config = _tiny_config(warp_guided=True, conditional_discriminator=True, mouth_discriminator=True)
    generator, discriminator = Generator(config), MultiLevelDiscriminator(config)
    batch = _batch()
    assert run_generator(generator, batch, cycle=False, warp_guided=True).hallucination_b is None  # not asked for
    outputs = run_generator(generator, batch, cycle=False, warp_guided=True, hallucinations=True)
    assert outputs.hallucination_a.sum() == 0 and outputs.hallucination_b.sum() > 0
    discriminator.requires_grad_(False)
    off = generator_objective(outputs, batch, discriminator, ObjectiveConfig(texture=0.0, cycle=0.0))
    assert "hallucination" not in off
    on = generator_objective(
        outputs, batch, discriminator, ObjectiveConfig(texture=0.0, cycle=0.0, hallucination_l1=3.0)
    )
    assert on["hallucination"] > 0
    assert torch.allclose(on["total"] - off["total"], 3.0 * on["hallucination"])
    fake_b = outputs.fake_b[0]
    (gradient,) = torch.autograd.grad(on["hallucination"], fake_b, retain_graph=True)
    outside = (1 - outputs.hallucination_b).expand_as(gradient)
    assert (gradient * outside).abs().sum() == 0 and gradient.abs().sum() > 0


def test_hallucination_l1_leaves_out_a_synthetic_side_a():
    """Side A of a synthetic pair is the warp's picture (train/dataset.py, ``real_a`` False): inside its
    opened mouth are stretched lips, so Eq. 3 over the region must not pull G's output there; a real
    side A (or a batch without ``real_a``) still gets the gradient."""
    config = _tiny_config(warp_guided=True)
    generator, discriminator = Generator(config), MultiLevelDiscriminator(config)
    batch = _batch()
    batch["landmarks_a"], batch["landmarks_b"] = batch["landmarks_b"], batch["landmarks_a"]  # A opens the mouth
    outputs = run_generator(generator, batch, cycle=False, warp_guided=True, hallucinations=True)
    assert (outputs.hallucination_a.flatten(1).sum(1) > 0).all()
    discriminator.requires_grad_(False)
    objective = ObjectiveConfig(texture=0.0, cycle=0.0, hallucination_l1=1.0)
    fake_a = outputs.fake_a[0]
    for real_a, reached in ((None, [True, True]), (torch.tensor([True, False]), [True, False])):
        if real_a is not None:
            batch["real_a"] = real_a
        terms = generator_objective(outputs, batch, discriminator, objective)
        (gradient,) = torch.autograd.grad(terms["hallucination"], fake_a, retain_graph=True)
        assert [bool(gradient[i].abs().sum() > 0) for i in range(2)] == reached


def test_every_addition_runs_under_bf16_autocast():
    """The paper preset trains in bf16: warp, masks, mouth crop and DiffAugment must all run there."""
    config = _tiny_config(warp_guided=True, conditional_discriminator=True, mouth_discriminator=True)
    generator, discriminator = Generator(config), MultiLevelDiscriminator(config)
    objective = ObjectiveConfig(texture=0.0, diff_augment=["color", "translation", "cutout"])
    batch = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = run_generator(generator, batch, cycle=True, warp_guided=True)
        discriminator.requires_grad_(False)
        terms = generator_objective(outputs, batch, discriminator, objective)
    terms["total"].backward()
    assert torch.isfinite(terms["total"]) and all(torch.isfinite(p.grad).all() for p in generator.parameters())
    discriminator.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d_terms = discriminator_objective(outputs, batch, discriminator, objective)
    d_terms["total"].backward()
    assert torch.isfinite(d_terms["total"])


def test_mouth_patchgan_is_trained_even_when_the_generator_ignores_it():
    """Weight 0 for G still trains the mouth D, so every D parameter has a gradient (DDP without search)."""
    config = _tiny_config(mouth_discriminator=True)
    generator, discriminator = Generator(config), MultiLevelDiscriminator(config)
    objective = ObjectiveConfig(texture=0.0, cycle=0.0, mouth_adversarial=0.0)
    batch = _batch()
    outputs = run_generator(generator, batch, cycle=False)
    assert "gan_mouth" not in generator_objective(outputs, batch, discriminator, objective)
    terms = discriminator_objective(outputs, batch, discriminator, objective)
    terms["total"].backward()
    assert all(p.grad is not None for p in discriminator.mouth.parameters())


# --- synthetic pairs --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from train.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("synthetic") / "prepared"
    prepare(PrepareConfig(str(ASSETS), str(out), size=256, val_fraction=0.0, workers=1), progress=False)
    return out


#: dlib's own re-detection noise on these 256 px crops is about 0.015-0.02 of the eye distance.
SYNTHETIC_NME_TOLERANCE = 0.035


@pytest.mark.parametrize("kind", ["expression", "teeth"])
def test_synthetic_pairs_landmarks_match_their_pixels(prepared, kind):
    """dlib, run on side A of a synthetic pair, finds the landmarks the pair claims (NME in eye distances)."""
    from portraitgan_hub.faces.landmarks import default_detector
    from portraitgan_hub.image_tensors import tensor_to_pil
    from train.dataset import PairedPortraitDataset

    dataset = PairedPortraitDataset(
        prepared, ["photo"], split=None, synthetic_ratio=1.0, synthetic_kinds=[kind], flip_probability=0.0
    )
    detector = default_detector()
    checked = 0
    for index in range(len(dataset)):
        sample = dataset[index]
        assert sample["real_a"].item() is False  # side A is the warp's picture (the objective needs this)
        if sample["synthetic"] != kind:
            continue  # a neutral row cannot make a "teeth" pair: it falls back to "expression"
        claimed, original = sample["landmarks_a"].numpy(), sample["landmarks_b"].numpy()
        assert not np.allclose(claimed, original, atol=1.0)  # side A was really moved
        found = detector.detect(tensor_to_pil(sample["image_a"][None])[0])[0].landmarks
        eyes = np.linalg.norm(claimed[36:42].mean(0) - claimed[42:48].mean(0))
        assert np.linalg.norm(found - claimed, axis=1).mean() / eyes < SYNTHETIC_NME_TOLERANCE
        checked += 1
    assert checked >= 2


def test_no_synthetic_ratio_leaves_samples_as_they_were(prepared):
    from train.dataset import PairedPortraitDataset

    plain = PairedPortraitDataset(prepared, ["photo"], split=None, seed=3)
    zero = PairedPortraitDataset(prepared, ["photo"], split=None, seed=3, synthetic_ratio=0.0)
    assert all(plain.plan(i) == zero.plan(i) for i in range(len(plain)))
    assert all(plain[i]["real_a"].item() is True for i in range(len(plain)))
    with pytest.raises(ValueError, match="synthetic"):
        PairedPortraitDataset(prepared, ["photo"], split=None, synthetic_kinds=["morph"], synthetic_ratio=0.5)
