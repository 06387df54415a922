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

``config.warp_guided`` (not in the paper; off in its preset) goes one step further: G also receives
the source landmarks, warps the input to the target landmarks by a thin-plate spline first, and sees
the warped image, the target landmark map, the modality planes and a hallucination mask (where the
warp has nothing to move, such as an opening mouth). Every level is then ``A * warped + (1 - A) * C``,
with A forced to 0 inside the hallucination mask. See :mod:`portraitgan_hub.warp_guidance`.

``config.skip_connections`` (not in the paper; the ``lite-u`` preset) replaces the 7x7 stem and the
transposed-convolution decoder by a 3x3 stem and a decoder of :class:`~portraitgan_hub.layers.SkipDecoderLevel`
(nearest x2, additive encoder skips, guidance planes at every size, conditional instance norm), so
C keeps the photo's detail instead of passing it all through the 16x16 bottleneck.
``config.conversion_gate`` and ``config.edit_region`` limit where a warp-guided G may draw
(:mod:`portraitgan_hub.edit_region`); they need the source modality (``source_modality``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from portraitgan_hub.composition import blend
from portraitgan_hub.condition import condition_vector, modality_change
from portraitgan_hub.config import PortraitGANConfig
from portraitgan_hub.edit_region import edit_region, gate_mask
from portraitgan_hub.layers import ResidualBlock, SkipDecoderLevel, norm_layer
from portraitgan_hub.warp_guidance import WarpGuidance, warp_guidance


def modality_planes(modality: torch.Tensor, num_modalities: int, height: int, width: int) -> torch.Tensor:
    """The attribute vector c of each sample (:func:`condition_vector`) replicated over the plane: (B, n, H, W)."""
    return condition_vector(modality, num_modalities)[:, :, None, None].expand(-1, -1, height, width)


#: The mask heads start at sigmoid(3) = 0.95, so an untrained masked G is close to the identity map
#: (like a zero-initialised residual branch): training starts from the unedited input and learns where
#: to draw, instead of first learning to rebuild the whole face through the bottleneck.
MASK_INITIAL_LOGIT = 3.0
#: The skip-connected G's mask heads start at sigmoid(0) = 0.5: its colour C can already carry the
#: photo through the skips, and a mask that starts at "copy" leaves C about 2 % of the gradient.
SKIP_MASK_INITIAL_LOGIT = 0.0
#: The skip-connected G's colour is ``tanh(atanh(input) + head)``; the input is clamped to this
#: (atanh(0.999) = 3.8) so that pure black and white stay finite.
RESIDUAL_LIMIT = 0.999


@dataclass
class GeneratorOutput:
    """Everything one pass of G makes, for training (``images``) and full-resolution composition.

    ``images``: the output of every level, full resolution first, (B, 3, H / 2**k, W / 2**k) in [-1, 1].
    ``colour``: the level-0 tanh colour C. ``mask``: the level-0 blend mask A in [0, 1] (None for the
    paper's head, which draws every pixel). ``base``: what A blends, the (warped) input.
    ``guidance``: the warp (None unless ``warp_guided``).
    """

    images: list[torch.Tensor]
    colour: torch.Tensor
    mask: torch.Tensor | None
    base: torch.Tensor
    guidance: WarpGuidance | None


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
        stem_kernel = 3 if config.skip_connections else 7
        self.stem = nn.Sequential(
            nn.ReflectionPad2d(stem_kernel // 2),
            nn.Conv2d(config.generator_in_channels, width(0), stem_kernel),
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
        if config.skip_connections:
            # Two 3x3 convolutions at the coarse levels (<= 1/4 of the output side), one above: the
            # fine levels are wide in pixels and narrow in channels, where a second one costs most.
            self.up = nn.ModuleList(
                SkipDecoderLevel(width(i + 1), width(i), 2, config.num_modalities, 2 if i >= 2 else 1)
                for i in reversed(range(config.num_downsamplings))
            )
        else:
            self.up = nn.ModuleList(
                nn.Sequential(
                    nn.ConvTranspose2d(width(i + 1), width(i), 3, stride=2, padding=1, output_padding=1),
                    norm_layer(norm, width(i)),
                    nn.ReLU(inplace=True),
                )
                for i in reversed(range(config.num_downsamplings))
            )
        head_channels = 4 if config.predicts_mask else 3  # RGB, and the mask A when enabled
        self.to_rgb = nn.Sequential(
            nn.ReflectionPad2d(stem_kernel // 2), nn.Conv2d(width(0), head_channels, stem_kernel)
        )
        # aux_to_rgb[k] turns the output of upsampling stage (num_downsamplings - 2 - k), whose
        # resolution is 1 / 2**(k + 1) of the output, into the level-(k + 1) image.
        self.aux_to_rgb = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width(level), head_channels, 1)) for level in range(1, config.num_levels)
        )
        if config.predicts_mask:
            for head in (self.to_rgb[-1], *(branch[-1] for branch in self.aux_to_rgb)):
                initial = SKIP_MASK_INITIAL_LOGIT if config.skip_connections else MASK_INITIAL_LOGIT
                nn.init.constant_(head.bias[3:], initial)
        if config.skip_connections:  # the colour is a change of the input, starting at none
            for head in (self.to_rgb[-1], *(branch[-1] for branch in self.aux_to_rgb)):
                nn.init.zeros_(head.weight[:3])
                nn.init.zeros_(head.bias[:3])

    def forward(
        self,
        image: torch.Tensor,
        landmark_map: torch.Tensor,
        modality: torch.Tensor,
        source_landmarks: torch.Tensor | None = None,
        target_landmarks: torch.Tensor | None = None,
        return_mask: bool = False,
        *,
        source_modality: torch.Tensor | None = None,
    ) -> list[torch.Tensor] | tuple[list[torch.Tensor], torch.Tensor | None]:
        """``image`` (B,3,H,W) in [-1,1], ``landmark_map`` (B,1,H,W) in [0,1], ``modality`` (B,) indices
        or (B, n) condition weights.

        ``source_landmarks``/``target_landmarks`` (B, 68, 2), pixel-index points of ``image``'s
        size, are used by a ``warp_guided`` G only (without them its warp is the identity).
        ``source_modality``: the input's modality, (B,) indices or (B, n) weights, for the conversion
        gate and edit region (None: the model's first modality, usually ``photo``).
        Returns the generated images of every level, full resolution first; with ``return_mask``
        also the level-0 mask A (None without mask heads), for the training's mask penalty. (The
        training step calls ``forward`` rather than :meth:`infer` so that DDP sees the pass.)
        """
        rendering = self.infer(
            image, landmark_map, modality, source_landmarks, target_landmarks, source_modality=source_modality
        )
        return (rendering.images, rendering.mask) if return_mask else rendering.images

    def infer(
        self,
        image: torch.Tensor,
        landmark_map: torch.Tensor,
        modality: torch.Tensor,
        source_landmarks: torch.Tensor | None = None,
        target_landmarks: torch.Tensor | None = None,
        *,
        source_modality: torch.Tensor | None = None,
    ) -> GeneratorOutput:
        """Like :meth:`forward`, but returns colour, mask and warp as well (:class:`GeneratorOutput`)."""
        batch, _, height, width = image.shape
        config = self.config
        condition = condition_vector(modality, config.num_modalities).to(image.device)
        planes = condition[:, :, None, None].expand(-1, -1, height, width).to(image.dtype)
        guidance = warp_guidance(image, source_landmarks, target_landmarks) if config.warp_guided else None
        base = guidance.warped if guidance is not None else image  # what the mask A blends
        inputs = [base, landmark_map.to(image.dtype), planes]
        if guidance is not None:
            inputs.append(guidance.hallucination.to(image.dtype))
        x = self.stem(torch.cat(inputs, dim=1))
        heads: list[torch.Tensor] = []
        last = len(self.up) - 1
        if config.skip_connections:
            skips = [x]
            for down in self.down:
                skips.append(x := down(x))
            x = self.residual(x)
            hole = inputs[-1] if guidance is not None else torch.zeros_like(inputs[1])
            guide = torch.cat([inputs[1], hole], 1)  # the guidance planes of every decoder level
        else:
            x = self.residual(self.down(x))
        for stage, upsample in enumerate(self.up):
            level = last - stage  # this stage's resolution is 1 / 2**level of the output
            if config.skip_connections:
                scaled = guide if level == 0 else nn.functional.max_pool2d(guide, 2**level)
                x = upsample(x, skips[level], scaled, condition)
            else:
                x = upsample(x)
            if 1 <= level < config.num_levels:
                heads.append(self.aux_to_rgb[level - 1](x))
        heads = [self.to_rgb(x), *reversed(heads)]
        hallucination = guidance.hallucination if guidance is not None else None
        change, region = self._limits(
            batch, height, width, condition, source_modality, source_landmarks, target_landmarks, hallucination
        )
        images, colour, mask = [], None, None
        for head in heads:
            source = (
                base
                if head.shape[-2:] == base.shape[-2:]
                else nn.functional.interpolate(base, size=head.shape[-2:], mode="area")
            )
            level_colour, level_mask = self._colour_and_mask(
                head, hallucination, change, region, source if config.skip_connections else None
            )
            if level_mask is None:
                images.append(level_colour)
            else:
                images.append(blend(level_mask, source, level_colour))
            if colour is None:
                colour, mask = level_colour, level_mask
        return GeneratorOutput(images, colour, mask, base, guidance)

    def _limits(
        self,
        batch: int,
        height: int,
        width: int,
        condition: torch.Tensor,
        source_modality: torch.Tensor | None,
        source_landmarks: torch.Tensor | None,
        target_landmarks: torch.Tensor | None,
        hallucination: torch.Tensor | None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The conversion gate's dc (B,) and the edit region R (B, 1, H, W), each None when off."""
        config = self.config
        if not config.conversion_gate:
            return None, None
        if source_modality is None:
            source_modality = torch.zeros(batch, dtype=torch.long, device=condition.device)
        source = condition_vector(source_modality.to(condition.device), config.num_modalities)
        change = modality_change(source, condition, config.num_modalities)
        if not config.edit_region:
            return change, None
        if source_landmarks is None or target_landmarks is None:  # no warp: nothing moves
            return change, condition.new_zeros(batch, 1, height, width)
        region = edit_region(
            source_landmarks.to(condition.device),
            target_landmarks.to(condition.device),
            height,
            width,
            hallucination,
            margin=config.edit_region_margin,
        )
        return change, region

    def _colour_and_mask(
        self,
        head: torch.Tensor,
        hallucination: torch.Tensor | None,
        change: torch.Tensor | None = None,
        region: torch.Tensor | None = None,
        residual_of: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The tanh colour C of one RGB head, and its mask A (None without mask heads).

        A is forced to 0 wherever the hallucination mask (max-pooled to the head's size) is set, then
        limited by the conversion gate ``change`` and the edit ``region`` (:func:`gate_mask`).
        ``residual_of`` (the skip-connected G: its warped input at the head's size): C is a change of
        it, ``tanh(atanh(input) + head)``, and the head starts at zero, so C starts as the input.
        Residual learning of the image, as VDSR (Kim, Lee and Lee 2016) predicts a high-resolution
        image as a change of the interpolated one: the conversion gate gives a conversion A = 0, and
        G then starts from copying instead of from a blank picture.
        """
        if residual_of is None:
            colour = torch.tanh(head[:, :3])
        else:
            # float32 whatever the autocast: bf16 rounds RESIDUAL_LIMIT to 1, where atanh is infinite
            # and its gradient NaN, so a white or black pixel would poison the whole backward pass.
            # C takes the input's dtype: float32 under autocast, bf16 for a G cast to bf16.
            wide = torch.promote_types(residual_of.dtype, torch.float32)
            start = torch.atanh(residual_of.to(wide).clamp(-RESIDUAL_LIMIT, RESIDUAL_LIMIT))
            colour = torch.tanh(start + head[:, :3].to(wide)).to(residual_of.dtype)
        if not self.config.predicts_mask:
            return colour, None
        mask = torch.sigmoid(head[:, 3:])
        if hallucination is not None:
            factor = hallucination.shape[-1] // head.shape[-1]
            hole = hallucination if factor == 1 else nn.functional.max_pool2d(hallucination, factor)
            mask = mask * (1 - hole.to(mask.dtype))
        if change is not None:
            mask = gate_mask(mask, change, region)
        return colour, mask
