"""Which model to use when the user names none: ``--model``, then ``$PORTRAITGAN_MODEL``, then the
demo checkpoint embedded in the package (:data:`DEFAULT_MODEL`)."""

from __future__ import annotations

import os
from pathlib import Path

from portraitgan_hub.errors import CheckpointError
from portraitgan_hub.model import WEIGHTS_NAME, PortraitGAN

#: Folder of the demo checkpoint shipped inside the package; ``PortraitGAN.from_pretrained(DEFAULT_MODEL)``.
DEFAULT_MODEL: str = str(Path(__file__).resolve().parent / "pretrained" / "london-lite")
MODEL_ENV = "PORTRAITGAN_MODEL"


def resolve_model_source(model: str | os.PathLike | None = None) -> str:
    """The folder or Hub id to load: ``model``, else ``$PORTRAITGAN_MODEL``, else :data:`DEFAULT_MODEL`."""
    source = str(model or os.environ.get(MODEL_ENV) or DEFAULT_MODEL)
    if source == DEFAULT_MODEL and not (Path(DEFAULT_MODEL) / WEIGHTS_NAME).is_file():
        raise CheckpointError(
            "no model named and the embedded demo checkpoint is not in this installation: "
            f"pass --model HUB_ID_OR_FOLDER or set {MODEL_ENV}"
        )
    return source


def load_model(model: str | os.PathLike | None = None, **kwargs) -> PortraitGAN:
    """``PortraitGAN.from_pretrained`` of :func:`resolve_model_source`."""
    return PortraitGAN.from_pretrained(resolve_model_source(model), **kwargs)
