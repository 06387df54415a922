"""The model configuration: one flat dataclass, serialised to ``config.json`` beside the weights.

Two presets are named:

* ``paper`` follows "Implementation Details" of the paper: 512x512, 64 base channels doubling over
  4 stride-2 convolutions up to 1024, 9 residual blocks, 2 discriminators.
* ``lite`` keeps the same topology but is narrow and 256x256, so that it trains and edits
  interactively on a 2-core CPU.
* ``lite-u`` (not in the paper) is ``lite`` made warp-guided with a skip-connected decoder, the
  conversion gate and the edit region: about lite's cost, but G's colour keeps the photo's detail.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Normalization = Literal["instance", "batch", "none"]

DEFAULT_MODALITIES: tuple[str, ...] = ("photo", "sketch", "cartoon")


@dataclass
class PortraitGANConfig:
    """Architecture of the generator and discriminators, and the image conventions they assume."""

    image_size: int = 256
    #: Modality names in one-hot order: index ``i`` of the attribute vector c is ``modalities[i]``.
    modalities: list[str] = field(default_factory=lambda: list(DEFAULT_MODALITIES))
    #: Channels after the 7x7 stem; doubled by every downsampling up to ``max_channels``.
    base_channels: int = 32
    max_channels: int = 256
    num_downsamplings: int = 4
    num_residual_blocks: int = 9
    #: Output levels of the generator = number of discriminators (multi-level supervision, Fig. 2).
    num_levels: int = 2
    discriminator_channels: int = 64
    #: Stride-2 convolutions of each PatchGAN; 3 gives the 70x70 receptive field of the paper.
    discriminator_layers: int = 3
    landmark_line_width: int = 2
    normalization: Normalization = "instance"
    #: Off in the paper. On, every output level also predicts a per-pixel mask A and returns
    #: ``A * input + (1 - A) * colour`` (GANimation, Pumarola et al. 2018), so regions the edit does
    #: not touch are copied rather than re-synthesised through the bottleneck. See generator.py.
    attention_mask: bool = False
    #: Off in the paper. On, G also receives the source landmarks, warps its input to the target
    #: landmarks by a thin-plate spline first, sees the warped image plus a hallucination mask, and
    #: blends ``A * warped + (1 - A) * colour`` with A = 0 where the warp has nothing to move (inner
    #: mouth). Implies the mask heads of ``attention_mask``. See warp_guidance.py.
    warp_guided: bool = False
    #: Off in the paper's D (Eq. 6 judges the image alone). On, every PatchGAN level also sees the
    #: target landmark map, as pix2pixHD's conditional D does (the paper's Eq. 2 conditions on L).
    conditional_discriminator: bool = False
    #: Off in the paper. On, an extra PatchGAN judges a crop around the mouth (points 48-67) of the
    #: full-resolution output, where an expression edit has to draw most.
    mouth_discriminator: bool = False
    #: Off in the paper (its Eq. 10 judges the image alone, whatever c asked for). On, every PatchGAN
    #: also sees the target modality vector c, replicated over the plane (n more channels), as a
    #: pix2pix / conditional-GAN discriminator sees its condition: a photo returned when a cartoon was
    #: asked is then judged fake. Without it a masked G can copy the photo for a style whose pixels
    #: are close to the photo's (the previous lite demo's cartoon: A = 0.98, SSIM to the target = the photo's).
    modality_discriminator: bool = False
    #: Off in the paper. On, the decoder is skip-connected (generator.py, layers.SkipDecoderLevel): a
    #: 3x3 stem, nearest x2 + additive encoder skips + guidance planes at every level, conditional
    #: instance norm mixed by c, no transposed convolutions (no checkerboard).
    skip_connections: bool = False
    #: Off in the paper. On (warp-guided G only), the blend mask is gated by how much the modality
    #: changes: A = sigmoid(a) (1 - H) (1 - dc), so a full conversion draws every pixel. See edit_region.py.
    conversion_gate: bool = False
    #: Off in the paper. On (needs ``conversion_gate``), in an expression edit A = 1 outside a
    #: feathered region around the features the edit moves: G's colour cannot re-draw the rest.
    edit_region: bool = False
    #: How far the edit region reaches around what the edit moves, as a multiple of its margins
    #: (edit_region.MOUTH_MARGIN, FEATURE_MARGIN): 1 as trained; above 1 G may draw further out (a
    #: wider grin's creases, a G trained wider). Training uses the same value. Not in the paper.
    edit_region_margin: float = 1.0
    #: Modalities whose training images are grey (a pencil sketch): the editor returns grey pixels for
    #: them (scaled by the modality strength) instead of G's faint colour fringes. Not an architecture
    #: field; ``train/train.py --export`` fills it from the training data. Not in the paper.
    achromatic_modalities: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.modalities = list(self.modalities)
        self.achromatic_modalities = list(self.achromatic_modalities)
        unknown = sorted(set(self.achromatic_modalities) - set(self.modalities))
        if unknown:
            raise ValueError(f"achromatic_modalities {unknown} are not among the modalities {self.modalities}")
        if self.image_size % (2**self.num_downsamplings):
            raise ValueError(
                f"image_size {self.image_size} must be divisible by 2**num_downsamplings ({2**self.num_downsamplings})"
            )
        if not 1 <= self.num_levels <= self.num_downsamplings + 1:
            raise ValueError(f"num_levels must be in 1..{self.num_downsamplings + 1}, got {self.num_levels}")
        if len(set(self.modalities)) != len(self.modalities) or not self.modalities:
            raise ValueError(f"modalities must be unique and non-empty, got {self.modalities}")
        if self.conversion_gate and not self.warp_guided:
            raise ValueError("conversion_gate needs warp_guided (it gates the warp-guided blend mask)")
        if self.edit_region and not self.conversion_gate:
            raise ValueError("edit_region needs conversion_gate (the region grows with the modality change)")
        if not (math.isfinite(self.edit_region_margin) and self.edit_region_margin >= 0):
            raise ValueError(f"edit_region_margin must be a finite number >= 0, got {self.edit_region_margin!r}")
        if self.normalization not in ("instance", "batch", "none"):
            raise ValueError(f"unknown normalization {self.normalization!r}")

    @property
    def num_modalities(self) -> int:
        return len(self.modalities)

    @property
    def generator_in_channels(self) -> int:
        """Image (3) + landmark map (1) + one-hot modality replicated spatially (n), as in Eq. 1;
        plus the hallucination mask (1) when ``warp_guided``."""
        return 3 + 1 + self.num_modalities + (1 if self.warp_guided else 0)

    @property
    def predicts_mask(self) -> bool:
        """Whether each RGB head also predicts the blend mask A (``attention_mask`` or ``warp_guided``)."""
        return self.attention_mask or self.warp_guided

    @property
    def discriminator_in_channels(self) -> int:
        """RGB (3), the landmark map (1) for a ``conditional_discriminator``, then the modality planes
        (``num_modalities``) for a ``modality_discriminator``, in that order."""
        return (
            3
            + (1 if self.conditional_discriminator else 0)
            + (self.num_modalities if self.modality_discriminator else 0)
        )

    @property
    def modality_channels(self) -> slice:
        """Where the modality planes sit among the generator's input channels (the stem's in-channels).

        Code that edits the stem per modality (growing it for new modalities) uses this, not an offset.
        """
        return slice(4, 4 + self.num_modalities)

    def modality_index(self, modality: str | int) -> int:
        """Index of a modality given by name or index; a clear ValueError otherwise."""
        if isinstance(modality, int) and not isinstance(modality, bool):
            if 0 <= modality < self.num_modalities:
                return modality
        elif modality in self.modalities:
            return self.modalities.index(modality)
        raise ValueError(f"unknown modality {modality!r}; this model knows {self.modalities}")

    # --- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PortraitGANConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown PortraitGANConfig fields: {sorted(unknown)}")
        return cls(**data)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            from portraitgan_hub.io_utils import atomic_write_text

            atomic_write_text(Path(path), text)
        return text

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> PortraitGANConfig:
        text = str(path_or_text)
        if not text.lstrip().startswith("{"):
            text = Path(path_or_text).read_text(encoding="utf-8")
        return cls.from_dict(json.loads(text))

    # --- presets -------------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> PortraitGANConfig:
        """A named preset (``paper``, ``lite`` or ``lite-u``), with any field overridden."""
        try:
            base = PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
        return cls(**{**base, **overrides})


_LITE: dict[str, Any] = dict(
    image_size=256,
    base_channels=16,
    max_channels=128,
    num_residual_blocks=6,
    num_levels=2,
    discriminator_channels=32,
)

PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(image_size=512, base_channels=64, max_channels=1024, num_residual_blocks=9, num_levels=2),
    "lite": _LITE,
    "lite-u": dict(_LITE, warp_guided=True, skip_connections=True, conversion_gate=True, edit_region=True),
}
