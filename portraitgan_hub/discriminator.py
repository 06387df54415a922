"""The multi-level PatchGAN discriminators D_i of Eq. 6-7.

D_i judges the generator's level-i image (real side: the real image average-pooled to that level).
Each is the 3-layer PatchGAN of CycleGAN/pix2pix: 4x4 convolutions, three with stride 2, whose
output cells each see a 70x70 patch of their input. Every discriminator returns its intermediate
features as well, for the feature-matching loss (Eq. 5).
"""

from __future__ import annotations

import torch
from torch import nn

from portraitgan_hub.config import PortraitGANConfig


class PatchDiscriminator(nn.Module):
    """An n-layer PatchGAN; ``forward`` returns ``[feature_1, ..., feature_n, patch_logits]``."""

    def __init__(self, in_channels: int = 3, channels: int = 64, num_layers: int = 3) -> None:
        super().__init__()
        blocks: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(in_channels, channels, 4, stride=2, padding=2), nn.LeakyReLU(0.2, True))
        ]
        width = channels
        for index in range(1, num_layers + 1):
            previous, width = width, min(channels * 2**index, 512)
            stride = 2 if index < num_layers else 1
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(previous, width, 4, stride=stride, padding=2),
                    nn.InstanceNorm2d(width),
                    nn.LeakyReLU(0.2, True),
                )
            )
        blocks.append(nn.Conv2d(width, 1, 4, stride=1, padding=2))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        x = image
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return outputs


def downsample_to_level(image: torch.Tensor, level: int) -> torch.Tensor:
    """The image at level ``level`` of the pyramid: 1 / 2**level of its resolution."""
    if level == 0:
        return image
    return nn.functional.avg_pool2d(image, kernel_size=2**level)


class MultiLevelDiscriminator(nn.Module):
    """One PatchGAN per generator output level; D_i sees level-i images."""

    def __init__(self, config: PortraitGANConfig) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(3, config.discriminator_channels, config.discriminator_layers)
            for _ in range(config.num_levels)
        )

    def forward(self, images_per_level: list[torch.Tensor]) -> list[list[torch.Tensor]]:
        """``images_per_level[i]`` goes to D_i; returns each D_i's features, logits last."""
        if len(images_per_level) != len(self.discriminators):
            raise ValueError(f"expected {len(self.discriminators)} levels, got {len(images_per_level)}")
        return [d(image) for d, image in zip(self.discriminators, images_per_level)]

    def real_pyramid(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The real side of every level: the real image pooled to each discriminator's resolution."""
        return [downsample_to_level(image, level) for level in range(len(self.discriminators))]
