"""Every call into the ``portraitgan_hub`` library, one small function each, so that moving to another
library API only changes this module.

The library is imported here. If that fails (a module missing, a version it cannot use),
:data:`LIBRARY_ERROR` is the one line that says why (logged once here, and again by each hook that
needs the library) and the other functions must not be called.
"""

from pathlib import Path
from typing import Any

from PIL import Image

from . import log

try:
    import numpy as np

    from portraitgan_hub import DEFAULT_MODEL, PortraitGANConfig
    from portraitgan_hub.default_model import load_model as load_library_model
    from portraitgan_hub.default_model import resolve_model_source
    from portraitgan_hub.devices import check_device
    from portraitgan_hub.errors import (
        CheckpointError,
        DeviceError,
        FaceIndexError,
        FaceRecognitionModelNotFoundError,
        ImageLoadError,
        LandmarkModelNotFoundError,
        NoFaceError,
    )
    from portraitgan_hub.faces.expressions import CONTROL_RANGES
    from portraitgan_hub.faces.image_io import load_image

    LIBRARY_ERROR: str | None = None
except Exception as error:  # said once here, and again by each hook that needs the library
    if isinstance(error, ModuleNotFoundError) and error.name:
        LIBRARY_ERROR = (
            f"PortraitGAN: cannot run: the module {error.name} is missing; restart the WebUI so that the "
            "extension's install.py installs it (it says in one line what failed)"
        )
    else:
        LIBRARY_ERROR = (
            f"PortraitGAN: cannot run: importing it failed ({type(error).__name__}: {error}); "
            "see docs/webui-extension.md for the versions it runs with"
        )
    log.warning(LIBRARY_ERROR)


def load_model(source: str, device: str) -> Any:
    """The model named by the settings (``""``: the embedded demo), on the device they name."""
    target = check_device(auto_device() if device in ("", "auto") else device, fallback="set it to cpu")
    return load_library_model(source or None).to(target)


def auto_device() -> str:
    """The device ``auto`` stands for: CUDA, else MPS, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def edit(model: Any, photo: Any, options: dict) -> Image.Image:
    """``photo`` (PIL image or encoded bytes) edited with ``options`` (``PortraitGAN.edit``'s keywords)."""
    return model.edit(photo, **options)


def find_faces(model: Any, photo: bytes) -> tuple[tuple[int, int], list[tuple[tuple[int, int, int, int], list]]]:
    """``((width, height), [(box, 68 points), ...])`` of ``photo`` (encoded bytes), largest face first,
    in the pixels of the upright picture that :func:`edit` works on."""
    picture = load_image(photo)
    faces = model.face_editor.faces(picture)
    return picture.size, [(tuple(int(v) for v in face.box), np.asarray(face.landmarks).tolist()) for face in faces]


def modalities(source: str) -> list[str]:
    """The modalities of the model named by the settings, read from its ``config.json`` without loading
    it when it is a folder; else those of the embedded demo."""
    for folder in (source, DEFAULT_MODEL):
        try:
            config = Path(resolve_model_source(folder or None)) / "config.json"
            return list(PortraitGANConfig.from_json(config).modalities)
        except Exception:
            continue
    return ["photo"]


def control_range(name: str) -> tuple[float, float]:
    """The range of the expression control ``name``."""
    row = CONTROL_RANGES[name]
    return float(row.minimum), float(row.maximum)


def control_names() -> tuple[str, ...]:
    """All the expression controls :func:`edit` takes by name."""
    return tuple(CONTROL_RANGES)


def as_landmarks(value: Any) -> Any:
    """JSON target points (``[[x, y], ...]``, or one such list per face) as the array :func:`edit`
    takes; ``TypeError`` or ``ValueError`` when they are not numbers of one shape."""
    return np.asarray(value, dtype=np.float32)


def setting_error(key: tuple[str, str], error: Exception) -> str:
    """The one line that says the settings ``key`` (model, device) do not load, and why."""
    model, device = key
    detail = str(error) if isinstance(error, (CheckpointError, DeviceError)) else f"{type(error).__name__}: {error}"
    if isinstance(error, DeviceError):
        what = f"the device setting {device!r} cannot be used ({detail})"
    else:
        what = f"the model setting {model or '(empty: the embedded demo)'!r} does not load ({detail})"
    return f"PortraitGAN: {what}; change it in Settings > PortraitGAN"


def error_status(error: Exception) -> int:
    """The HTTP status of an error the library raised: 400 a bad image, 503 the server cannot edit,
    422 a value the library refuses, 500 anything else."""
    if isinstance(error, ImageLoadError):
        return 400
    if isinstance(error, (CheckpointError, DeviceError, LandmarkModelNotFoundError, FaceRecognitionModelNotFoundError)):
        return 503
    if isinstance(error, (NoFaceError, FaceIndexError, TypeError, ValueError, IndexError)):
        return 422
    return 500
