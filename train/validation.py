"""What the training loop shows and measures on the main process: the fixed sample pairs of the
picture grids, and the validation metrics of G on the val split."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from portraitgan_hub.model import PortraitGAN
from train.dataset import PairedPortraitDataset
from train.metrics import LandmarkScorer, MetricTotals
from train.setup import collate
from train.training_config import TrainingConfig


def fixed_samples(source: Dataset, sample_count: int) -> dict[str, torch.Tensor]:
    """A batch of up to ``sample_count`` pairs of ``source`` (a training or val set, at epoch 0), spread
    evenly over the set."""
    source.set_epoch(0)
    count = min(sample_count, len(source))
    # spread over the set (rows are grouped by person), so the grid shows different people
    indices = sorted({round(i * (len(source) - 1) / max(count - 1, 1)) for i in range(count)})
    return collate([source[i] for i in indices])


@torch.no_grad()
def validation_metrics(
    model: PortraitGAN,
    val_set: PairedPortraitDataset,
    config: TrainingConfig,
    accelerator: Any,
    scorer: LandmarkScorer,
) -> dict[str, float]:
    """MSE, SSIM and dlib landmark NME of G(I_A, L_B, c_B) against I_B on the first
    ``config.validation_samples`` pairs of ``val_set`` (all when None), in eval mode; ``model`` is the
    unwrapped G, put back in the mode it was in."""
    was_training = model.training
    model.eval()
    val_set.set_epoch(0)
    count = len(val_set)
    if config.validation_samples is not None:
        count = min(count, config.validation_samples)
    totals = MetricTotals()
    size = config.data.batch_size
    device = accelerator.device
    for start in range(0, count, size):
        batch = collate([val_set[i] for i in range(start, min(start + size, count))])
        with accelerator.autocast():
            output = model(
                batch["image_a"].to(device),
                batch["landmarks_map_b"].to(device),
                batch["modality_b"].to(device),
                batch["landmarks_a"].to(device),
                batch["landmarks_b"].to(device),
            )[0]
        totals.update(output.float(), batch["image_b"].to(device), batch["landmarks_b"], scorer)
    model.train(was_training)
    return totals.summary()
