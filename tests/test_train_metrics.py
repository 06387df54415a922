"""Validation metrics (MSE, SSIM, dlib landmark NME with no-face counting) and the sample grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
from test_train_config import prepare_london

from portraitgan_hub.image_tensors import pil_to_tensor
from train.metrics import (
    LandmarkScorer,
    MetricTotals,
    gaussian_window,
    grid_artifact_score,
    landmark_nme,
    mse,
    ssim,
)
from train.visualize import render_samples, sample_grid


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_london(tmp_path_factory)


def _reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. (2004) for one channel, written independently with numpy windows."""
    window = gaussian_window(11, 1.5).numpy().astype(np.float64)
    xs, ys = sliding_window_view(x, (11, 11)), sliding_window_view(y, (11, 11))

    def local(a: np.ndarray) -> np.ndarray:
        return (a * window).sum(axis=(-1, -2))

    mx, my = local(xs), local(ys)
    vx, vy = local(xs * xs) - mx**2, local(ys * ys) - my**2
    cov = local(xs * ys) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return float((((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean())


def test_ssim_matches_an_independent_implementation() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 24, 24, generator=generator) * 2 - 1
    y = (x + 0.3 * torch.randn(x.shape, generator=generator)).clamp(-1, 1)
    ours = ssim(x, y)
    for i in range(2):
        unit_x, unit_y = ((x[i] + 1) / 2).double().numpy(), ((y[i] + 1) / 2).double().numpy()
        channels = [_reference_ssim(unit_x[c], unit_y[c]) for c in range(3)]
        assert ours[i].item() == pytest.approx(np.mean(channels), abs=1e-5)


def test_ssim_and_mse_basic_properties() -> None:
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(-1, 1)
    noisier = (x + 0.6 * torch.randn_like(x)).clamp(-1, 1)
    assert ssim(x, x).item() == pytest.approx(1.0)
    assert ssim(x, noisy).item() == pytest.approx(ssim(noisy, x).item())
    assert 1 > ssim(x, noisy).item() > ssim(x, noisier).item()
    assert mse(torch.full((1, 3, 4, 4), -1.0), torch.full((1, 3, 4, 4), 1.0)).item() == 1.0  # [0, 1] scale
    assert ssim(torch.zeros(1, 3, 6, 6), torch.zeros(1, 3, 6, 6)).item() == pytest.approx(1.0)  # < window


def test_nme_is_normalised_by_the_inter_ocular_distance() -> None:
    target = np.zeros((68, 2))
    target[36], target[45] = (10, 50), (50, 50)  # outer eye corners 40 px apart
    assert landmark_nme(target + [3, 4], target) == pytest.approx(5 / 40)
    with pytest.raises(ValueError):
        landmark_nme(np.zeros((68, 2)), np.zeros((68, 2)))


def test_dlib_rescoring_finds_real_faces_and_counts_missing_ones(data_dir: Path) -> None:
    rows = [json.loads(line) for line in (data_dir / "manifest.jsonl").read_text().splitlines()]
    photos = [r for r in rows if r["modality"] == "photo"][:2]
    images = torch.cat([pil_to_tensor(Image.open(data_dir / r["path"])) for r in photos])
    landmarks = torch.tensor([r["landmarks"] for r in photos])
    scorer = LandmarkScorer()
    totals = MetricTotals()
    totals.update(images, images, landmarks, scorer)  # real faces: dlib finds them where they were
    flat = torch.zeros(2, 3, 64, 64)
    totals.update(flat, images, landmarks, scorer)  # no face at all: counted, not an error
    summary = totals.summary()
    assert summary["samples"] == 4 and summary["no_face"] == 2 and summary["no_face_fraction"] == 0.5
    assert summary["nme"] < 0.1
    assert MetricTotals().summary() == {}


def test_sample_grid_layout_and_atomic_png(tmp_path: Path) -> None:
    batch = {
        "image_a": -torch.ones(2, 3, 16, 16),
        "landmarks_map_b": torch.ones(2, 1, 16, 16),
        "modality_b": torch.tensor([0, 1]),
        "image_b": torch.ones(2, 3, 16, 16),
    }
    grid = sample_grid(batch["image_a"], batch["landmarks_map_b"], batch["image_b"], batch["image_b"], padding=2)
    assert grid.size == (4 * 16 + 10, 2 * 16 + 6)
    assert grid.getpixel((2, 2)) == (0, 0, 0) and grid.getpixel((2 + 18, 2)) == (255, 255, 255)

    class Echo(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def forward(self, image, landmark_map, modality, source_landmarks=None, target_landmarks=None):
            return [image * 0 + self.weight]

    render_samples(Echo(), batch, tmp_path / "samples" / "step-0000001.png")
    assert [p.name for p in (tmp_path / "samples").iterdir()] == ["step-0000001.png"]
    with Image.open(tmp_path / "samples" / "step-0000001.png") as image:
        assert image.getpixel((2 + 2 * 18, 2)) == (128, 128, 128)  # output column: zeros -> mid grey


def test_crop_border_step_sees_a_pasted_box_and_not_a_smooth_picture() -> None:
    """Issue #12's border measure: a bright square pasted in a darker picture steps by its contrast;
    the same picture without the square does not step."""
    from PIL import Image

    from portraitgan_hub.faces.alignment import Alignment
    from train.metrics import crop_border_step

    alignment = Alignment(np.array([[0.5, 0.0, -50.0], [0.0, 0.5, -40.0]]), 128)  # crop = photo box (100..356, 80..336)
    base = np.full((480, 520, 3), 120, np.uint8)
    inside, outside = crop_border_step(Image.fromarray(base), alignment)
    assert abs(inside - outside) < 0.01 and abs(inside - 120) < 0.01
    pasted = base.copy()
    pasted[80:336, 100:356] = 200
    inside, outside = crop_border_step(Image.fromarray(pasted), alignment)
    assert inside > 195 and outside < 125


def test_grid_artifact_score_finds_a_checkerboard_and_not_a_photo():
    photo = np.asarray(
        Image.open(Path(__file__).parent / "assets" / "london" / "005_neutral.jpg").convert("L").resize((256, 256)),
        np.float64,
    )
    y, x = np.mgrid[:256, :256]
    clean = grid_artifact_score(photo)
    assert clean < 1.0
    assert grid_artifact_score(photo + ((x + y) % 2) * 8.0) > clean + 3  # stride-2 checkerboard
    assert grid_artifact_score(photo + ((x % 4 == 0) | (y % 4 == 0)) * 10.0) > clean + 2  # a 4 px grid
    with pytest.raises(ValueError, match="at least 32 px"):
        grid_artifact_score(photo[:20, :20])
