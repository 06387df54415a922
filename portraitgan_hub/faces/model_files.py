"""Where dlib's model files are found: one search order for the landmark and face-recognition models.

In order: an explicit path (an error at once if it does not exist, never a silent fall-back to
another file); the file named by an environment variable; the copy inside the
``face_recognition_models`` package (located without importing it: its ``__init__`` needs
``pkg_resources``); and, where a Hub repository is known, a download from the Hugging Face Hub.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from portraitgan_hub.errors import PortraitGANError


def packaged_model(filename: str) -> Path | None:
    """Path of ``filename`` inside the ``face_recognition_models`` package, or None if not installed."""
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models" / filename


def locate_model_file(
    filename: str,
    *,
    path: str | os.PathLike | None,
    env_var: str,
    error: type[PortraitGANError],
    hub_repo: str | None = None,
) -> Path:
    """The first place of the search order that has ``filename``; ``error`` naming every place tried."""
    if path is not None:
        explicit = Path(path).expanduser()
        if explicit.is_file():
            return explicit
        raise error(f"model file {explicit} does not exist")

    tried: list[str] = []
    env_value = os.environ.get(env_var)
    if env_value:
        candidate = Path(env_value).expanduser()
        if candidate.is_file():
            return candidate
        tried.append(f"${env_var}={candidate} (no such file)")
    else:
        tried.append(f"${env_var} (not set)")

    packaged = packaged_model(filename)
    if packaged is not None and packaged.is_file():
        return packaged
    tried.append(f"the face_recognition_models package ({packaged or 'not installed'})")

    if hub_repo is not None:
        try:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(hub_repo, filename))
        except Exception as failure:  # offline, no such repo, hub down: all mean "not here"
            reason = str(failure).splitlines()[0] if str(failure) else type(failure).__name__
            tried.append(f"Hugging Face Hub {hub_repo}/{filename} ({reason})")

    raise error(
        f"cannot find {filename}; tried: "
        + "; ".join(tried)
        + f". Install face_recognition_models or set ${env_var} to the file"
    )
