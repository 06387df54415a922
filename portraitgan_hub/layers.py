"""Small building blocks shared by the generator and the discriminators."""

from __future__ import annotations

from torch import nn

from portraitgan_hub.config import Normalization


def norm_layer(kind: Normalization, channels: int) -> nn.Module:
    """Instance norm (pix2pixHD's and CycleGAN's default for image translation), batch norm or none."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


class ResidualBlock(nn.Module):
    """Two reflection-padded 3x3 convolutions with a skip connection (Johnson et al. 2016)."""

    def __init__(self, channels: int, normalization: Normalization) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            norm_layer(normalization, channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            norm_layer(normalization, channels),
        )

    def forward(self, x):
        return x + self.body(x)
