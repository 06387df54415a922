"""PIL images <-> the generator's tensors: (B, 3, H, W) float in [-1, 1], RGB."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def pil_to_tensor(images: Image.Image | list[Image.Image]) -> torch.Tensor:
    """PIL image(s) of one size -> (B, 3, H, W) float32 tensor in [-1, 1] (converted to RGB first)."""
    images = [images] if isinstance(images, Image.Image) else list(images)
    arrays = [np.asarray(image.convert("RGB"), dtype=np.float32) for image in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 127.5 - 1.0


def tensor_to_pil(batch: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) tensor in [-1, 1] -> B RGB PIL images (values clipped to [-1, 1], then rounded)."""
    array = ((batch.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [Image.fromarray(a) for a in array.permute(0, 2, 3, 1).numpy()]
