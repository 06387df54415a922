"""The feed-forward style transfer network of Johnson, Alahi & Fei-Fei (2016), used by the paper to
render pseudo-target modalities, and its use as a stylizer.

Architecture (their supplementary material, with the two common improvements they and later work
adopted): a 9x9 convolution, two stride-2 convolutions, 5 residual blocks, two x2 upsamplings done
as nearest resize + convolution (no checkerboard artefacts, unlike transposed convolutions), and a
final 9x9 convolution; instance normalisation throughout and reflection padding. Images are in
[-1, 1] on both ends (tanh output).

Checkpoints are safetensors only. The architecture travels in the file's metadata (and in a small
``.json`` beside it for people), so a checkpoint loads without any other file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from portraitgan_hub.errors import CheckpointError
from portraitgan_hub.image_tensors import pil_to_tensor, tensor_to_pil
from portraitgan_hub.io_utils import atomic_path, atomic_write_text

METADATA_KEY = "style_network_config"


@dataclass
class StyleNetworkConfig:
    """Architecture, plus free-form notes on how it was trained (style image, weights...)."""

    channels: int = 32
    residual_blocks: int = 5
    training: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StyleNetworkConfig:
        data = json.loads(text)
        return cls(**{k: data[k] for k in ("channels", "residual_blocks", "training") if k in data})


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(in_channels, out_channels, kernel, stride))


def _conv_norm_relu(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        _conv(in_channels, out_channels, kernel, stride),
        nn.InstanceNorm2d(out_channels, affine=True),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_norm_relu(channels, channels, 3),
            _conv(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleConv(nn.Module):
    """Nearest-neighbour x2 resize then a convolution ("resize-convolution")."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = _conv_norm_relu(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


class TransformerNet(nn.Module):
    """Image in [-1, 1] -> stylized image in [-1, 1], same size (any multiple of 4)."""

    def __init__(self, config: StyleNetworkConfig | None = None) -> None:
        super().__init__()
        self.config = config or StyleNetworkConfig()
        c = self.config.channels
        self.body = nn.Sequential(
            _conv_norm_relu(3, c, 9),
            _conv_norm_relu(c, 2 * c, 3, stride=2),
            _conv_norm_relu(2 * c, 4 * c, 3, stride=2),
            *[ResidualBlock(4 * c) for _ in range(self.config.residual_blocks)],
            UpsampleConv(4 * c, 2 * c),
            UpsampleConv(2 * c, c),
            _conv(c, 3, 9),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height % 4 or width % 4:
            raise ValueError(f"image sides must be multiples of 4, got {height}x{width}")
        return self.body(x)


def save_style_network(net: TransformerNet, path: str | Path) -> None:
    """Write ``path`` (.safetensors) and ``path`` with suffix .json, each atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"style networks are saved as .safetensors, got {path.name}")
    config_json = net.config.to_json()
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={METADATA_KEY: config_json})
    atomic_write_text(path.with_suffix(".json"), config_json + "\n")


def load_style_network(path: str | Path) -> TransformerNet:
    """Load a network saved by :func:`save_style_network`; :class:`CheckpointError` if it is not one."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"style networks load from .safetensors files only, got {path.name}")
    if not path.is_file():
        raise CheckpointError(f"style network checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except Exception as error:
        raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from error
    if METADATA_KEY not in metadata:
        raise CheckpointError(f"{path} has no {METADATA_KEY!r} metadata: not a style network checkpoint")
    try:
        config = StyleNetworkConfig.from_json(metadata[METADATA_KEY])
    except (ValueError, TypeError) as error:  # json.JSONDecodeError is a ValueError
        raise CheckpointError(
            f"{path}: its {METADATA_KEY!r} metadata is not a style network config ({error})"
        ) from None
    net = TransformerNet(config)
    try:
        net.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"{path} does not match the style network architecture: {error}") from error
    return net.eval()


class NeuralStylizer:
    """A trained style network as a PIL -> PIL stylizer (a modality for ``train.prepare``).

    The network is loaded on first use, so that an instance pickles cheaply into worker processes.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._net: TransformerNet | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_net": None}

    @torch.no_grad()
    def __call__(self, image: Image.Image) -> Image.Image:
        if self._net is None:
            self._net = load_style_network(self.path)
        width, height = image.size
        rgb = image.convert("RGB")
        if width % 4 or height % 4:  # the network needs sides divisible by 4
            rgb = rgb.resize((width + (-width) % 4, height + (-height) % 4), Image.BICUBIC)
        out = tensor_to_pil(self._net(pil_to_tensor(rgb)))[0]
        return out if out.size == (width, height) else out.resize((width, height), Image.BICUBIC)
