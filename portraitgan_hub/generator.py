"""The generator G(I | L, c) of Eq. 1 with the auxiliary RGB branches of Fig. 2.

Input: image (3 ch, [-1, 1]) + landmark map L (1 ch, [0, 1]) + target modality one-hot c replicated
spatially (n ch). Topology from "Implementation Details": a 7x7 stem, 4 stride-2 convolutions,
9 residual blocks, 4 stride-2 transposed convolutions and a 7x7 tanh output. The outputs of the
last ``num_levels - 1`` upsampling stages before the final one also go through a 1x1 convolution
("one-channel convolution for fusion of channels") to RGB, giving the lower-resolution images that
the multi-level discriminators judge.

``config.attention_mask`` (not in the paper; off in its preset) makes every RGB head predict a fourth
channel, a mask A in (0, 1), and output ``A * I + (1 - A) * C`` with C the tanh colour and I the
input resized to that level, as GANimation does for expression editing. The paper's generator has
no skip connections, so without the mask it must rebuild every pixel of the face through the
16x16 bottleneck; with it, what the edit leaves alone is copied, and a small model trained on a CPU
keeps the person's identity.
"""

from __future__ import annotations

import torch
from torch import nn

from portraitgan_hub.config import PortraitGANConfig
from portraitgan_hub.layers import ResidualBlock, norm_layer


def modality_planes(modality: torch.Tensor, num_modalities: int, height: int, width: int) -> torch.Tensor:
    """One-hot attribute vector c of each sample, replicated over the image plane: (B, n, H, W)."""
    one_hot = nn.functional.one_hot(modality.long(), num_modalities)
    return one_hot[:, :, None, None].expand(-1, -1, height, width)


#: The mask heads start at sigmoid(3) = 0.95, so an untrained masked G is close to the identity map
#: (like a zero-initialised residual branch): training starts from the unedited input and learns where
#: to draw, instead of first learning to rebuild the whole face through the bottleneck.
MASK_INITIAL_LOGIT = 3.0


class Generator(nn.Module):
    """Encoder, residual bottleneck, decoder; returns ``[full-res, 1/2, 1/4, ...]`` RGB images."""

    def __init__(self, config: PortraitGANConfig) -> None:
        super().__init__()
        self.config = config
        norm = config.normalization

        def width(level: int) -> int:
            return min(config.base_channels * 2**level, config.max_channels)

        # No normalisation in the stem: the modality planes are constant over the image, so their
        # contribution to the stem convolution is a per-channel constant, which instance norm would
        # subtract again and G would ignore c entirely. Un-normalised, it shifts the ReLU's threshold
        # in a way that depends on the image, and survives the normalised layers after it.
        self.stem = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(config.generator_in_channels, width(0), 7),
            nn.ReLU(inplace=True),
        )
        self.down = nn.Sequential(
            *(
                nn.Sequential(
                    nn.Conv2d(width(i), width(i + 1), 3, stride=2, padding=1),
                    norm_layer(norm, width(i + 1)),
                    nn.ReLU(inplace=True),
                )
                for i in range(config.num_downsamplings)
            )
        )
        bottleneck = width(config.num_downsamplings)
        self.residual = nn.Sequential(*(ResidualBlock(bottleneck, norm) for _ in range(config.num_residual_blocks)))
        self.up = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose2d(width(i + 1), width(i), 3, stride=2, padding=1, output_padding=1),
                norm_layer(norm, width(i)),
                nn.ReLU(inplace=True),
            )
            for i in reversed(range(config.num_downsamplings))
        )
        head_channels = 4 if config.attention_mask else 3  # RGB, and the mask A when enabled
        self.to_rgb = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(width(0), head_channels, 7))
        # aux_to_rgb[k] turns the output of upsampling stage (num_downsamplings - 2 - k), whose
        # resolution is 1 / 2**(k + 1) of the output, into the level-(k + 1) image.
        self.aux_to_rgb = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width(level), head_channels, 1)) for level in range(1, config.num_levels)
        )
        if config.attention_mask:
            for head in (self.to_rgb[-1], *(branch[-1] for branch in self.aux_to_rgb)):
                nn.init.constant_(head.bias[3:], MASK_INITIAL_LOGIT)

    def forward(self, image: torch.Tensor, landmark_map: torch.Tensor, modality: torch.Tensor) -> list[torch.Tensor]:
        """``image`` (B,3,H,W) in [-1,1], ``landmark_map`` (B,1,H,W) in [0,1], ``modality`` (B,) indices.

        Returns the generated images of every level, full resolution first.
        """
        _, _, height, width = image.shape
        planes = modality_planes(modality, self.config.num_modalities, height, width).to(image.dtype)
        x = torch.cat([image, landmark_map.to(image.dtype), planes], dim=1)
        x = self.residual(self.down(self.stem(x)))
        auxiliary: list[torch.Tensor] = []
        last = len(self.up) - 1
        for stage, upsample in enumerate(self.up):
            x = upsample(x)
            level = last - stage  # this stage's resolution is 1 / 2**level of the output
            if 1 <= level < self.config.num_levels:
                auxiliary.append(self._output_image(self.aux_to_rgb[level - 1](x), image))
        return [self._output_image(self.to_rgb(x), image), *reversed(auxiliary)]

    def _output_image(self, head: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """The image of one RGB head: tanh colour, blended with the input by the mask if enabled."""
        colour = torch.tanh(head[:, :3])
        if not self.config.attention_mask:
            return colour
        mask = torch.sigmoid(head[:, 3:])
        source = nn.functional.interpolate(image, size=head.shape[-2:], mode="area")
        return mask * source + (1 - mask) * colour
