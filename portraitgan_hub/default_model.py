"""Which model to use when the user names none: ``--model``, then ``$PORTRAITGAN_MODEL``, then the
demo checkpoint embedded in the package (:data:`DEFAULT_MODEL`)."""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import constants, try_to_load_from_cache
from huggingface_hub.errors import HFValidationError

from portraitgan_hub.checkpoint_files import CONFIG_NAME, WEIGHTS_NAME, looks_like_path
from portraitgan_hub.errors import CheckpointError
from portraitgan_hub.model import PortraitGAN

#: Folder of the demo checkpoint shipped inside the package; ``PortraitGAN.from_pretrained(DEFAULT_MODEL)``.
DEFAULT_MODEL: str = str(Path(__file__).resolve().parent / "pretrained" / "london-lite")
MODEL_ENV = "PORTRAITGAN_MODEL"


def resolve_model_source(model: str | os.PathLike | None = None) -> str:
    """The folder or Hub id to load: ``model``, else ``$PORTRAITGAN_MODEL``, else :data:`DEFAULT_MODEL`.

    A leading ``~`` is expanded. Raises :class:`CheckpointError` when the embedded demo checkpoint
    is not installed, and "... no such folder: PATH" when a path (``./x``, ``/x``, ``~/x``, ``a/b/c``,
    any ``Path``) is not a folder; a name of the form ``name`` or ``owner/name`` that is no folder
    here is taken as a Hub id.
    """
    source = str(model or os.environ.get(MODEL_ENV) or DEFAULT_MODEL)
    if source == DEFAULT_MODEL and not (Path(DEFAULT_MODEL) / WEIGHTS_NAME).is_file():
        raise CheckpointError(
            "no model named and the embedded demo checkpoint is not in this installation: "
            f"pass --model HUB_ID_OR_FOLDER or set {MODEL_ENV}"
        )
    source = os.path.expanduser(source)
    if not os.path.isdir(source) and (isinstance(model, Path) or looks_like_path(source)):
        raise CheckpointError(f"could not load a PortraitGAN model: no such folder: {source}")
    return source


def _hub_offline() -> bool:
    """Whether the Hub is in offline mode: ``constants.is_offline_mode()`` from huggingface_hub 1.0 on;
    before, the flag ``constants.HF_HUB_OFFLINE``, read from the environment at import (the WebUI
    hosts run hub 0.26 to 0.36, see docs/webui-extension.md)."""
    is_offline_mode = getattr(constants, "is_offline_mode", None)
    return bool(is_offline_mode()) if is_offline_mode is not None else bool(constants.HF_HUB_OFFLINE)


def check_offline_cache(
    source: str, *, revision: str | None = None, cache_dir: str | os.PathLike | None = None
) -> None:
    """With ``HF_HUB_OFFLINE=1``, a Hub id must be in the local cache: raise :class:`CheckpointError`
    ("HF_HUB_OFFLINE=1 and ID is not in the cache") when it is not, instead of the Hub's "check your
    connection". Folders, and anything when online, pass; an id the Hub would reject passes too, for
    ``from_pretrained`` to name its fault.
    """
    if not _hub_offline() or os.path.isdir(source):
        return
    try:
        cached = try_to_load_from_cache(source, CONFIG_NAME, cache_dir=cache_dir, revision=revision)
    except (HFValidationError, ValueError):
        return
    if not isinstance(cached, str):
        raise CheckpointError(
            f"HF_HUB_OFFLINE=1 and {source} is not in the cache (nor is it a folder here): "
            "download it once online, or give the folder it was saved to"
        )


def load_model(model: str | os.PathLike | None = None, **kwargs) -> PortraitGAN:
    """``PortraitGAN.from_pretrained`` of :func:`resolve_model_source` (``kwargs`` go to it).

    Raises :class:`CheckpointError` for what :func:`resolve_model_source` and
    :func:`check_offline_cache` refuse, and for any checkpoint ``from_pretrained`` cannot load.
    """
    source = resolve_model_source(model)
    check_offline_cache(source, revision=kwargs.get("revision"), cache_dir=kwargs.get("cache_dir"))
    return PortraitGAN.from_pretrained(source, **kwargs)
