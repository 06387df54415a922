"""The files of a PortraitGAN checkpoint folder: ``config.json`` and ``model.safetensors``.

Reading the config names every problem (the file, the field, the expected type); a folder or Hub
repository that offers only a pickle checkpoint is refused with a message saying why (unpickling a
download can run arbitrary code) and how to convert a trusted one.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from portraitgan_hub.config import PortraitGANConfig
from portraitgan_hub.errors import CheckpointError
from portraitgan_hub.io_utils import read_json

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
PICKLE_NAMES = ("pytorch_model.bin", "model.pt", "model.pth", "model.ckpt", "generator.pth")

CONFIG_EXPECTED = "a JSON object of PortraitGANConfig fields, as save_pretrained writes it"


def read_config_file(path: Path) -> PortraitGANConfig:
    """The :class:`PortraitGANConfig` in ``path``; any problem is a :class:`CheckpointError` naming the file."""
    try:
        data = read_json(path, CONFIG_EXPECTED)
    except (ValueError, OSError) as error:
        raise CheckpointError(str(error)) from None
    return config_from_data(data, str(path))


def config_from_data(data: object, label: str) -> PortraitGANConfig:
    """``data`` (parsed ``config.json``) as a config; wrong structure or field types name ``label``."""
    if not isinstance(data, dict):
        raise CheckpointError(f"{label}: expected {CONFIG_EXPECTED}, got a JSON {type(data).__name__}")
    defaults = PortraitGANConfig()
    for name, value in data.items():
        if not hasattr(defaults, name):
            continue  # from_dict names unknown fields
        expected = type(getattr(defaults, name))
        if expected is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif expected is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, expected)
        if not ok:
            raise CheckpointError(f"{label}: field {name} must be of type {expected.__name__}, got {value!r}")
    try:
        return PortraitGANConfig.from_dict(data)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{label}: {error}") from None


def looks_like_path(source: str) -> bool:
    """A Hub id is ``name`` or ``owner/name``; anything else (``./x``, ``/abs``, ``~/x``, ``a/b/c``) is a path."""
    return source.startswith((".", "/", "~")) or os.sep in source.strip("/").replace("/", "", 1) or "\\" in source


def pickle_refusal(source: str, names: list[str]) -> str:
    """The refusal of a checkpoint that is only a pickle (``names``), and how to convert a trusted one."""
    return (
        f"{source!r} offers only a pickle checkpoint ({', '.join(names)}); PortraitGAN loads "
        f"{WEIGHTS_NAME} only and never unpickles a download, because unpickling can run code. "
        "If you trust the file, convert it once with safetensors.torch.save_file."
    )


def refuse_folder_without(folder: str, wanted: str) -> None:
    """``CheckpointError`` for a folder without ``wanted``: a pickle refusal when it holds a pickle."""
    pickles = sorted(p.name for p in Path(folder).iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(pickle_refusal(folder, pickles))
    raise CheckpointError(f"{folder} has no {wanted}: it is not a PortraitGAN checkpoint folder")


def read_weights(path: str | Path, expected: dict[str, torch.Tensor], strict: bool = True) -> dict[str, torch.Tensor]:
    """The tensors of the safetensors file ``path``, checked against the ``expected`` state dict.

    Raises :class:`CheckpointError` for an unreadable file, any tensor of the wrong shape, and (with
    ``strict``) missing or unexpected tensors, naming a few of each.
    """
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from error
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mis_shaped = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if mis_shaped or (strict and (missing or unexpected)):
        problems = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mis_shaped)):
            if keys:
                problems.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})")
        raise CheckpointError(
            f"{path} does not match this PortraitGAN config: "
            + "; ".join(problems)
            + ". Is config.json the one the weights were trained with?"
        )
    return state
