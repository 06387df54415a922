"""Small building blocks shared by the generator and the discriminators."""

from __future__ import annotations

import torch
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


class ConditionalInstanceNorm(nn.Module):
    """Instance norm whose scale and shift are rows of a table mixed by the condition c.

    Conditional instance normalization (Dumoulin, Shlens and Kudlur 2017, "A Learned Representation
    for Artistic Style"): one (gamma, beta) row per modality; a condition of weights c (B, n) gives
    ``gamma = c @ scale``, ``beta = c @ shift``, so a mixture ``(1 - s) c_a + s c_b`` mixes the rows as
    that paper mixes styles. Not in PortraitGAN, whose c reaches G through the stem alone. A modality
    added by fine-tuning is one more row (:func:`portraitgan_hub.growth.grow_modalities`).
    """

    def __init__(self, channels: int, num_modalities: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.scale = nn.Parameter(torch.ones(num_modalities, channels))
        self.shift = nn.Parameter(torch.zeros(num_modalities, channels))

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """``x`` (B, C, H, W); ``condition`` (B, n) weights (a one-hot row per sample, or a mixture)."""
        weights = condition.to(self.scale.dtype)
        gamma = (weights @ self.scale).to(x.dtype)[:, :, None, None]
        beta = (weights @ self.shift).to(x.dtype)[:, :, None, None]
        return self.norm(x) * gamma + beta


class SkipDecoderLevel(nn.Module):
    """One level of the skip-connected decoder (``PortraitGANConfig.skip_connections``; not in the paper).

    1x1 convolution to this level's width, nearest-neighbour x2, then the encoder's feature map of
    the same size is *added* (additive skips as in a feature pyramid network, Lin et al. 2017,
    cheaper than a U-Net's concatenation, Ronneberger et al. 2015), and a 1x1 convolution of the
    guidance planes (landmark map, hallucination mask) at this size is added too; then
    ``convolutions`` reflection-padded 3x3 convolutions, each with a :class:`ConditionalInstanceNorm`
    and ReLU. Nearest resize then convolution instead of a stride-2 transposed convolution avoids the
    checkerboard (Odena, Dumoulin and Olah 2016, "Deconvolution and Checkerboard Artifacts").
    """

    def __init__(
        self, in_channels: int, out_channels: int, guidance_channels: int, num_modalities: int, convolutions: int
    ) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, out_channels, 1)
        self.guidance = nn.Conv2d(guidance_channels, out_channels, 1)
        self.convs = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, padding=1, padding_mode="reflect") for _ in range(convolutions)
        )
        self.norms = nn.ModuleList(ConditionalInstanceNorm(out_channels, num_modalities) for _ in range(convolutions))

    def forward(
        self, x: torch.Tensor, skip: torch.Tensor, guidance: torch.Tensor, condition: torch.Tensor
    ) -> torch.Tensor:
        """``x`` (B, C_in, h, w) -> (B, C_out, 2h, 2w); ``skip`` (B, C_out, 2h, 2w); ``guidance``
        (B, g, 2h, 2w); ``condition`` (B, n) modality weights."""
        x = nn.functional.interpolate(self.reduce(x), scale_factor=2.0, mode="nearest")
        x = x + skip + self.guidance(guidance)
        for conv, norm in zip(self.convs, self.norms):
            x = nn.functional.relu(norm(conv(x), condition), inplace=True)
        return x
