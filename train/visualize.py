"""Sample grids: one row per fixed pair, columns input I_A | target landmarks L_B | G(I_A, L_B, c_B) | I_B."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from portraitgan_hub.image_tensors import tensor_to_pil
from portraitgan_hub.io_utils import atomic_save_image

COLUMNS = ("input", "target landmarks", "output", "target")


def sample_grid(
    inputs: torch.Tensor,
    landmark_maps: torch.Tensor,
    outputs: torch.Tensor,
    targets: torch.Tensor,
    padding: int = 2,
) -> Image.Image:
    """A grid image of ``B`` rows and 4 columns; images ``(B, 3, H, W)`` in [-1, 1], maps ``(B, 1, H, W)`` in [0, 1]."""
    maps = (landmark_maps.detach().float().cpu() * 2 - 1).expand(-1, 3, -1, -1)
    columns = [inputs, maps, outputs, targets]
    rows, _, height, width = inputs.shape
    grid = Image.new("RGB", (4 * width + 5 * padding, rows * height + (rows + 1) * padding), (255, 255, 255))
    for col, images in enumerate(columns):
        for row, picture in enumerate(tensor_to_pil(images.detach().float().cpu())):
            grid.paste(picture, (padding + col * (width + padding), padding + row * (height + padding)))
    return grid


@torch.no_grad()
def render_samples(generator: torch.nn.Module, batch: dict[str, torch.Tensor], path: str | Path) -> Image.Image:
    """Run ``generator`` on the fixed batch and write the grid to ``path`` (PNG, atomically)."""
    was_training = generator.training
    generator.eval()
    try:
        device = next(generator.parameters()).device
        points = [batch[key].to(device) if key in batch else None for key in ("landmarks_a", "landmarks_b")]
        condition = batch.get("condition_b", batch["modality_b"]).to(device)
        source = batch.get("condition_a", batch.get("modality_a"))  # None: the model's first modality
        extra = {} if source is None else {"source_modality": source.to(device)}
        outputs = generator(
            batch["image_a"].to(device), batch["landmarks_map_b"].to(device), condition, *points, **extra
        )[0]
    finally:
        generator.train(was_training)
    grid = sample_grid(batch["image_a"], batch["landmarks_map_b"], outputs, batch["image_b"])
    atomic_save_image(grid, path)
    return grid
