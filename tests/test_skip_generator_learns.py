"""A short lite-u run learns the cartoon, which the paper-decoder lite never did (slow-marked: a
300-step training run on the 4-identity London subset with the model at 32 px, a few minutes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_train_config import prepare_london, tiny_config

from portraitgan_hub import PortraitGAN
from portraitgan_hub.faces.landmark_map import draw_landmark_map
from portraitgan_hub.image_tensors import pil_to_tensor
from train.setup import reset_accelerate_state
from train.train import train

SMALL_LITE_U = [
    "model.preset=lite-u",
    "model.image_size=32",
    "model.base_channels=8",
    "model.max_channels=32",
    "model.num_residual_blocks=2",
    "model.discriminator_channels=8",
    "model.modality_discriminator=true",
    "objective.texture_image_size=32",
    "objective.outline_l1=5",
    "objective.gradient_l1=10",
    "optim.steps=300",
    "optim.decay_start=200",
    "optim.lr=5e-4",
    "checkpoint_every=300",
    "sample_every=300",
    "validate_every=300",
    "tensorboard=false",
]


def _cartoon_pairs(data: Path, size: int) -> list[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
    """(photo, cartoon, photo landmarks) of every training cartoon, resized to ``size`` px."""
    rows = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines()]
    photos = {(r["identity"], r["expression"]): r for r in rows if r["modality"] == "photo"}
    pairs = []
    for row in rows:
        if row["modality"] == "cartoon" and row["split"] == "train":
            photo = photos[(row["identity"], row["expression"])]
            pairs.append(
                (
                    pil_to_tensor(Image.open(data / photo["path"]).convert("RGB").resize((size, size), Image.LANCZOS)),
                    pil_to_tensor(Image.open(data / row["path"]).convert("RGB").resize((size, size), Image.LANCZOS)),
                    (np.asarray(photo["landmarks"], np.float32) + 0.5) * size / 64 - 0.5,
                )
            )
    return pairs


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason=(
        "not met yet: after 300 steps at 32 px the cartoon L1 is 0.073 against copying's 0.054 (rule: cartoon "
        "< 0.050, clear of the run-to-run noise around copying, sketch within +10 %). Learning the sketch "
        "disturbs the cartoon (0.134 at step 100), which recovers only to 0.073-0.075 and stays there through "
        "600 steps; with the L1 terms alone it gets back to copying (0.056), never below, as it does with the "
        "whole objective on photo and cartoon data alone (0.054). Over 30 variants "
        "tried, none kept; their figures are in docs/model.md (The 300-step probe)"
    ),
)
def test_300_steps_bring_the_cartoon_below_the_copy_baseline(tmp_path_factory, tmp_path: Path) -> None:
    data = prepare_london(tmp_path_factory)
    reset_accelerate_state()
    torch.set_num_threads(1)
    result = train(tiny_config(data, tmp_path, *SMALL_LITE_U))
    reset_accelerate_state()
    model = PortraitGAN.from_pretrained(str(result.export_dir)).eval()

    copy_l1, model_l1 = [], []
    for photo, cartoon, points in _cartoon_pairs(data, 32):
        landmark_map = torch.from_numpy(draw_landmark_map(points, 32, model.config.landmark_line_width))
        output = model.generate(photo, landmark_map, "cartoon", points, points, source_modality="photo")
        copy_l1.append(float((photo - cartoon).abs().mean()))
        model_l1.append(float((output - cartoon).abs().mean()))
    assert np.mean(model_l1) < np.mean(copy_l1), (np.mean(model_l1), np.mean(copy_l1))
