import pytest
import torch

from portraitgan_hub import PortraitGANConfig
from portraitgan_hub.discriminator import MultiLevelDiscriminator
from portraitgan_hub.generator import Generator
from portraitgan_hub.losses import (
    cycle_loss,
    feature_matching_loss,
    gram_matrix,
    identity_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    texture_loss,
)
from portraitgan_hub.objective import (
    ObjectiveConfig,
    RealSamplePool,
    discriminator_objective,
    generator_objective,
    run_generator,
)
from portraitgan_hub.vgg import load_vgg19

TINY = PortraitGANConfig(image_size=32, base_channels=4, max_channels=16, num_residual_blocks=2)


@pytest.fixture(scope="module")
def random_vgg():
    with pytest.warns(UserWarning, match="RANDOM VGG19"):
        return load_vgg19(allow_random=True)


def _batch(size: int = 32, batch: int = 2) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "image_a": torch.rand(batch, 3, size, size) * 2 - 1,
        "image_b": torch.rand(batch, 3, size, size) * 2 - 1,
        "landmarks_map_a": (torch.rand(batch, 1, size, size) > 0.9).float(),
        "landmarks_map_b": (torch.rand(batch, 1, size, size) > 0.9).float(),
        "modality_a": torch.zeros(batch, dtype=torch.long),
        "modality_b": torch.ones(batch, dtype=torch.long),
    }


def test_lsgan_zero_at_optimum_positive_elsewhere():
    ones, zeros = [[torch.ones(2, 1, 4, 4)]], [[torch.zeros(2, 1, 4, 4)]]
    assert lsgan_discriminator_loss(real=ones, fake=zeros) == 0
    assert lsgan_discriminator_loss(real=zeros, fake=ones) > 0
    assert lsgan_generator_loss(ones) == 0
    assert lsgan_generator_loss(zeros) > 0


def test_feature_matching_zero_for_identical_features():
    features = [[torch.rand(2, 4, 8, 8), torch.rand(2, 8, 4, 4), torch.rand(2, 1, 3, 3)]]
    assert feature_matching_loss(features, features) == 0
    other = [[f + 0.1 for f in features[0]]]
    assert feature_matching_loss(features, other) == pytest.approx(0.1, rel=1e-4)


def test_l1_terms_zero_iff_equal():
    x = torch.rand(2, 3, 8, 8)
    assert identity_loss(x, x) == 0 and cycle_loss(x, x) == 0
    assert identity_loss(x, x + 0.5) == pytest.approx(0.5) and cycle_loss(x, 1 - x) > 0


def test_gram_matrix_is_eq8_and_size_independent():
    features = torch.rand(1, 3, 4, 4)
    flat = features.reshape(3, 16)
    assert torch.allclose(gram_matrix(features)[0], flat @ flat.T / 48)
    tiled = features.repeat(1, 1, 2, 2)  # same statistics, 4x the pixels
    assert torch.allclose(gram_matrix(tiled), gram_matrix(features), atol=1e-6)


def test_texture_loss_zero_for_same_texture(random_vgg):
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    assert texture_loss(random_vgg, image, image.clone()) == pytest.approx(0, abs=1e-10)
    assert texture_loss(random_vgg, image, -image) > 0


def test_eq12_total_reaches_every_generator_parameter(random_vgg):
    generator = Generator(TINY)
    discriminator = MultiLevelDiscriminator(TINY).requires_grad_(False)
    batch = _batch()
    outputs = run_generator(generator, batch, cycle=True)
    pool = RealSamplePool(4)
    real_b, real_a = pool.push_and_sample(batch["image_b"]), pool.push_and_sample(batch["image_a"])
    terms = generator_objective(outputs, batch, discriminator, ObjectiveConfig(), random_vgg, (real_b, real_a))
    assert set(terms) == {"gan_a_to_b", "gan_b_to_a", "feature_matching", "identity", "cycle", "texture", "total"}
    assert all(torch.isfinite(v) and v > 0 for v in terms.values())
    terms["total"].backward()
    without_grad = [n for n, p in generator.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert without_grad == []
    assert all(p.grad is None for p in discriminator.parameters())


def test_eq12_weights_and_ablations():
    generator, discriminator = Generator(TINY), MultiLevelDiscriminator(TINY)
    batch = _batch()
    outputs = run_generator(generator, batch, cycle=False)
    ablated = ObjectiveConfig(cycle=0, texture=0, feature_matching=0)
    terms = generator_objective(outputs, batch, discriminator, ablated)
    assert set(terms) == {"gan_a_to_b", "gan_b_to_a", "identity", "total"}
    expected = terms["gan_a_to_b"] + terms["gan_b_to_a"] + 5.0 * terms["identity"]
    assert torch.allclose(terms["total"], expected)
    with pytest.raises(ValueError, match="VGG19"):
        generator_objective(outputs, batch, discriminator, ObjectiveConfig(cycle=0))


def test_discriminator_step_sees_detached_fakes_only():
    generator, discriminator = Generator(TINY), MultiLevelDiscriminator(TINY)
    batch = _batch()
    outputs = run_generator(generator, batch, cycle=False)
    terms = discriminator_objective(outputs, batch, discriminator)
    terms["total"].backward()
    assert all(p.grad is None for p in generator.parameters())
    assert all(p.grad is not None for p in discriminator.parameters())


def test_real_pool_round_trips_through_state_dict():
    pool = RealSamplePool(3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        pool.push_and_sample(torch.rand(2, 3, 4, 4), generator)
    assert len(pool.images) == 3
    restored = RealSamplePool(3)
    restored.load_state_dict(pool.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(pool.images, restored.images))


def test_texture_loss_stays_float32_under_autocast(random_vgg):
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    other = torch.rand(1, 3, 32, 32) * 2 - 1
    reference = texture_loss(random_vgg, image, other)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = texture_loss(random_vgg, image, other)
    assert mixed.dtype == torch.float32 and torch.allclose(mixed, reference)
