"""VGG19 (Simonyan & Zisserman 2014) feature extractor for the texture loss (Eq. 8-9).

Defined here so that we do not depend on torchvision. Pretrained ImageNet weights load from a local
file or a Hugging Face Hub id, in the torchvision key layout (``features.0.weight`` ...) or the timm
layout (``features.0.weight`` too, plus ``pre_logits``/``head`` keys that are ignored). Safetensors
are preferred; a torchvision ``.pth`` is read only with ``torch.load(weights_only=True)``, which
cannot execute code. With no weights the loader raises :class:`PretrainedWeightsMissingError`; a
randomly initialised network is available only through ``allow_random=True`` and warns loudly.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

from portraitgan_hub.errors import CheckpointError, PretrainedWeightsMissingError

#: Output channels of VGG19's 16 convolutions, "M" for a 2x2 max-pool (configuration "E").
VGG19_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip

#: The layers whose Gram matrices the texture loss compares ("conv1_1-conv5_1").
TEXTURE_LAYERS: tuple[str, ...] = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Environment variable naming a VGG19 weights file or Hub id, used when none is passed.
VGG19_WEIGHTS_ENV = "PORTRAITGAN_VGG19_WEIGHTS"


def _layer_names() -> list[tuple[int, str]]:
    """(index in ``features``, name) of every conv and relu: conv1_1, relu1_1, conv1_2, ..."""
    names, block, conv = [], 1, 0
    index = 0
    for item in VGG19_LAYOUT:
        if item == "M":
            block, conv = block + 1, 0
            index += 1
            continue
        conv += 1
        names += [(index, f"conv{block}_{conv}"), (index + 1, f"relu{block}_{conv}")]
        index += 2
    return names


LAYER_INDEX: dict[str, int] = {name: index for index, name in _layer_names()}


class VGG19Features(nn.Module):
    """The convolutional part of VGG19 (``features`` in torchvision's key layout), frozen.

    ``forward(x, layers)`` takes images in [-1, 1], applies ImageNet normalisation, and returns the
    requested activations by name (``conv3_1``, ``relu2_2``, ...), stopping after the deepest one.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in VGG19_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:
        return super().train(False)  # frozen: never leaves eval mode

    def forward(self, x: torch.Tensor, layers: tuple[str, ...] = TEXTURE_LAYERS) -> dict[str, torch.Tensor]:
        unknown = [name for name in layers if name not in LAYER_INDEX]
        if unknown:
            raise ValueError(f"unknown VGG19 layers {unknown}")
        wanted = {LAYER_INDEX[name]: name for name in layers}
        x = ((x + 1) / 2 - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        for index, module in enumerate(self.features[: max(wanted) + 1]):
            x = module(x)
            if index in wanted:
                out[wanted[index]] = x
        return out


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if path.suffix in (".pth", ".pt", ".bin"):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # weights_only refuses anything that is not plain tensors
            raise CheckpointError(f"{path} is not a plain tensor state dict: {error}") from error
    raise CheckpointError(f"{path}: VGG19 weights must be a .safetensors (or torchvision .pth) file")


def _features_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ``features.N.*`` tensors, with any wrapper prefix (``module.``, ``model.``) dropped."""
    out = {}
    for key, value in state.items():
        start = key.find("features.")
        if start == 0 or (start > 0 and key[start - 1] == "."):
            out[key[start:]] = value
    return out


def _resolve(weights: str | Path) -> Path:
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        for name in ("model.safetensors", "vgg19.safetensors"):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"no model.safetensors or vgg19.safetensors in {path}")
    # Not a local path: a Hub id, ``owner/name`` or ``owner/name:filename``.
    from huggingface_hub import hf_hub_download

    repo_id, _, filename = str(weights).partition(":")
    try:
        return Path(hf_hub_download(repo_id, filename or "model.safetensors"))
    except Exception as error:
        raise PretrainedWeightsMissingError(
            f"could not get VGG19 weights from {weights!r} (no such file, and the Hub said: {error})"
        ) from error


def load_vgg19(weights: str | Path | None = None, *, allow_random: bool = False) -> VGG19Features:
    """A frozen VGG19 with ImageNet weights from ``weights`` (file, folder or Hub id).

    ``weights=None`` falls back to the ``PORTRAITGAN_VGG19_WEIGHTS`` environment variable. Only the
    ``features.*`` tensors are used, so torchvision's and timm's full classifiers both load.
    """
    model = VGG19Features()
    weights = weights or os.environ.get(VGG19_WEIGHTS_ENV)
    if not weights:
        if not allow_random:
            raise PretrainedWeightsMissingError(
                "the texture loss needs ImageNet VGG19 weights. Give a file or Hub id "
                f"(safetensors with torchvision/timm keys 'features.N.weight'), or set {VGG19_WEIGHTS_ENV}. "
                "Example: convert torchvision's vgg19-dcbb9e9d.pth with "
                "`python -m portraitgan_hub.vgg vgg19-dcbb9e9d.pth vgg19.safetensors`. "
                "For offline smoke tests only, opt into random features explicitly."
            )
        warnings.warn(
            "RANDOM VGG19 FEATURES: the texture loss (Eq. 8-9) uses an untrained network. "
            "Use this only for smoke tests; results will not match the paper.",
            UserWarning,
            stacklevel=2,
        )
        return model
    state = _read_state_dict(_resolve(weights))
    missing, _ = model.load_state_dict(_features_only(state), strict=False)
    if missing:
        raise CheckpointError(f"VGG19 weights in {weights} lack {len(missing)} tensors, e.g. {missing[:3]}")
    return model


def _convert_cli() -> None:
    """``python -m portraitgan_hub.vgg IN.pth OUT.safetensors``: keep ``features.*``, write safetensors."""
    import sys

    from safetensors.torch import save_file

    from portraitgan_hub.io_utils import atomic_path

    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m portraitgan_hub.vgg IN.(pth|safetensors) OUT.safetensors")
    state = _read_state_dict(Path(sys.argv[1]))
    features = {k: v.contiguous() for k, v in _features_only(state).items()}
    with atomic_path(sys.argv[2]) as tmp:
        save_file(features, str(tmp))
    print(f"wrote {len(features)} tensors to {sys.argv[2]}")


if __name__ == "__main__":
    _convert_cli()
