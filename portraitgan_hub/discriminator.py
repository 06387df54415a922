"""The multi-level PatchGAN discriminators D_i of Eq. 6-7.

D_i judges the generator's level-i image (real side: the real image average-pooled to that level).
Each is the 3-layer PatchGAN of CycleGAN/pix2pix: 4x4 convolutions, three with stride 2, whose
output cells each see a 70x70 patch of their input. Every discriminator returns its intermediate
features as well, for the feature-matching loss (Eq. 5).

Two options are not in the paper (both off in its preset):

* ``config.conditional_discriminator``: every level also sees the target landmark map (pooled to
  its resolution) as a fourth channel, as pix2pixHD's conditional D does; the paper's Eq. 2
  conditions the adversarial loss on the landmarks, its Eq. 6 judges the image alone.
* ``config.mouth_discriminator``: one more PatchGAN judges a crop around the mouth (points 48-67)
  of the full-resolution image (:func:`mouth_crop`), where an expression edit has to draw most; a
  local discriminator as in Iizuka et al. 2017 and GANimation-style expression editors.
* ``config.modality_discriminator``: every PatchGAN (the mouth one too) also sees the target
  modality vector c as planes, after the landmark map: the conditional discriminator of pix2pix
  (Isola et al. 2017) and conditional GANs (Mirza and Osindero 2014) applied to c, so a fake must
  look like *the asked* modality, not like any of them. The paper's Eq. 10 has D judge the image alone.

Every input may go through an augmentation first (DiffAugment, see :mod:`portraitgan_hub.diffaugment`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from portraitgan_hub.config import PortraitGANConfig
from portraitgan_hub.faces.landmarks import INNER_LIPS, OUTER_LIPS
from portraitgan_hub.generator import modality_planes

#: The mouth crop's side is this multiple of the larger extent of points 48-67.
MOUTH_CROP_SCALE = 1.6


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


def mouth_crop(image: torch.Tensor, landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """A ``size x size`` crop (B, C, size, size) of ``image`` (B, C, H, W) centred on the mouth.

    ``landmarks`` (B, 68, 2) pixel-index points of ``image``; the square's side is
    :data:`MOUTH_CROP_SCALE` times the larger extent of points 48-67. Bilinear, differentiable in
    ``image``; the crop box itself is not (the landmarks are data).
    """
    _, _, height, width = image.shape
    mouth = landmarks.detach()[:, [*OUTER_LIPS, *INNER_LIPS]].float()
    low, high = mouth.min(dim=1).values, mouth.max(dim=1).values
    centre = (low + high) / 2
    side = (high - low).max(dim=1).values.clamp_min(4.0) * MOUTH_CROP_SCALE  # (B,) pixels
    theta = torch.zeros(image.shape[0], 2, 3, device=image.device)
    theta[:, 0, 0] = side / width
    theta[:, 1, 1] = side / height
    theta[:, 0, 2] = (centre[:, 0] + 0.5) * 2 / width - 1
    theta[:, 1, 2] = (centre[:, 1] + 0.5) * 2 / height - 1
    with torch.autocast(device_type=image.device.type, enabled=False):  # a bf16 grid is off by a pixel
        grid = F.affine_grid(theta, [image.shape[0], image.shape[1], size, size], align_corners=False).float()
        crop = F.grid_sample(image.float(), grid, "bilinear", "zeros", align_corners=False)
    return crop.to(image.dtype)


Augment = Callable[[torch.Tensor], torch.Tensor]


class MultiLevelDiscriminator(nn.Module):
    """One PatchGAN per generator output level (D_i sees level-i images), and the optional mouth D."""

    def __init__(self, config: PortraitGANConfig) -> None:
        super().__init__()
        self.conditional = config.conditional_discriminator
        self.sees_modality = config.modality_discriminator
        self.num_modalities = config.num_modalities
        self.discriminators = nn.ModuleList(
            PatchDiscriminator(
                config.discriminator_in_channels, config.discriminator_channels, config.discriminator_layers
            )
            for _ in range(config.num_levels)
        )
        self.mouth_size = config.image_size // 4
        self.mouth: PatchDiscriminator | None = None
        if config.mouth_discriminator:
            layers = max(1, config.discriminator_layers - 1)  # a 64 px crop at 256: one layer less
            self.mouth = PatchDiscriminator(config.discriminator_in_channels, config.discriminator_channels, layers)

    def _condition(
        self, image: torch.Tensor, landmark_map: torch.Tensor | None, modality: torch.Tensor | None
    ) -> torch.Tensor:
        """``image`` with the channels this D is conditioned on: the landmark map (pooled to the
        image's size) and the modality planes, in the order of ``config.discriminator_in_channels``."""
        parts = [image]
        if self.conditional:
            if landmark_map is None:
                raise ValueError("a conditional discriminator needs the target landmark map")
            factor = landmark_map.shape[-1] // image.shape[-1]
            pooled = landmark_map if factor == 1 else F.avg_pool2d(landmark_map, factor)
            parts.append(pooled.to(image.dtype))
        if self.sees_modality:
            if modality is None:
                raise ValueError("a modality_discriminator needs the target modality (indices or weights)")
            parts.append(modality_planes(modality, self.num_modalities, *image.shape[-2:]).to(image.dtype))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def forward(
        self,
        images_per_level: list[torch.Tensor],
        landmark_map: torch.Tensor | None = None,
        augment: Augment | None = None,
        mouth_landmarks: torch.Tensor | None = None,
        modality: torch.Tensor | None = None,
    ) -> list[list[torch.Tensor]]:
        """``images_per_level[i]`` goes to D_i; returns each D_i's features, logits last.

        ``landmark_map`` (B, 1, H, W), the target map at full resolution, is required when the
        discriminator is conditional; ``modality``, the target c as (B,) indices or (B, n) weights,
        when it is a ``modality_discriminator`` (``ValueError`` otherwise). ``augment`` (e.g.
        DiffAugment) is applied to every input. With ``mouth_landmarks`` (B, 68, 2, pixels of level 0)
        and a mouth PatchGAN, its output on :func:`mouth_crop` of level 0 is appended as one more entry.
        """
        if len(images_per_level) != len(self.discriminators):
            raise ValueError(f"expected {len(self.discriminators)} levels, got {len(images_per_level)}")
        outputs = []
        for d, image in zip(self.discriminators, images_per_level):
            x = self._condition(image, landmark_map, modality)
            outputs.append(d(augment(x) if augment is not None else x))
        if mouth_landmarks is not None and self.mouth is not None:
            x = mouth_crop(
                self._condition(images_per_level[0], landmark_map, modality), mouth_landmarks, self.mouth_size
            )
            outputs.append(self.mouth(augment(x) if augment is not None else x))
        return outputs

    def real_pyramid(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The real side of every level: the real image pooled to each discriminator's resolution."""
        return [downsample_to_level(image, level) for level in range(len(self.discriminators))]
