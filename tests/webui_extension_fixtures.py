"""Shared fixtures of the WebUI extension's tests (tests/test_webui_extension.py,
tests/test_webui_extras_routes.py, tests/test_webui_tab.py): the fake host with the extension loaded,
the settings, the Extras runner, the REST client and the 1350 px RGBA photo.

The fake host (tests/webui_host, see its ``modules/__init__.py``) loads the script the way A1111 and
Forge do: executed from ``scripts/`` as a module named after the file, with the extension's folder on
``sys.path`` while it runs (A1111) or for good (Forge). A test module imports the fixtures it uses
from here; each module-scoped fixture is then set up once per test module.
"""

import base64
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
HOST = Path(__file__).resolve().parent / "webui_host"
SCRIPT = str(ROOT / "scripts" / "portraitgan_webui.py")


def _forget_host_modules() -> None:
    """Drop the fake host's modules from ``sys.modules`` (the next test module imports them afresh)."""
    for name in [n for n in sys.modules if n == "modules" or n.startswith("modules.") or n == "launch"]:
        del sys.modules[name]


class Host:
    """The fake host's modules, and the script as it loaded it."""

    def __init__(self) -> None:
        from modules import script_callbacks, scripts, scripts_postprocessing, shared

        self.scripts, self.callbacks, self.postprocessing, self.shared = (
            scripts,
            script_callbacks,
            scripts_postprocessing,
            shared,
        )

    @property
    def module(self) -> Any:
        """The script's module as the host loaded it."""
        return self.scripts.loaded_scripts[SCRIPT]  # read each time: a test may load the scripts again

    def load(self, **options: Any) -> None:
        """Load the extension's scripts as the host does at start, from a ``sys.path`` without the
        extension's folder (pytest put this checkout on it)."""
        sys.path[:] = [entry for entry in sys.path if entry != str(ROOT)]
        self.scripts.load_scripts([str(ROOT)], **options)
        assert self.scripts.reported == [], self.scripts.reported
        self.callbacks.ui_settings_callback()


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    """The fake host with the extension loaded (A1111 style: its folder on sys.path while it loads)."""
    _forget_host_modules()
    saved = list(sys.path)
    sys.path.insert(0, str(HOST))
    try:
        fake = Host()
        fake.shared.reset()
        fake.load()
        yield fake
    finally:
        sys.path[:] = saved
        _forget_host_modules()


@pytest.fixture
def settings(host: Host) -> Iterator[Any]:
    """The extension's settings, restored after the test."""
    opts = host.shared.opts
    saved = {key: opts.data[key] for key in ("portraitgan_model", "portraitgan_device")}
    yield opts
    opts.data.update(saved)


@pytest.fixture(scope="module")
def rgba_photo(full_size_photo: Path) -> Image.Image:
    """The 1350 px London photo, opaque but for a soft left edge (alpha 0 to 255 over 300 px), as a cut-out."""
    with Image.open(full_size_photo) as photo:
        picture = photo.convert("RGB")
    alpha = np.full((picture.height, picture.width), 255, np.uint8)
    alpha[:, :300] = np.linspace(0, 255, 300, dtype=np.uint8)
    picture.putalpha(Image.fromarray(alpha))
    return picture


def colour_change(a: Image.Image, b: Image.Image) -> np.ndarray:
    """Per pixel, the largest change of R, G or B."""
    return np.abs(np.asarray(a, np.int16)[..., :3] - np.asarray(b, np.int16)[..., :3]).max(axis=2)


@pytest.fixture(scope="module")
def extras(host: Host) -> Any:
    """The Extras tab's postprocessing scripts, their UI built as the host builds it."""
    import gradio as gr

    runner = host.postprocessing.ScriptPostprocessingRunner()
    with gr.Blocks():
        runner.setup_ui()
    return runner


def extras_args(runner: Any, **values: Any) -> list:
    """The runner's argument list with PortraitGAN's controls set to ``values`` (others: defaults)."""
    script = next(s for s in runner.scripts if s.name == "PortraitGAN")
    defaults = {"enable": False, "face": 0, "modality": "photo", "modality_strength": 1.0}
    args = [None] * max(s.args_to for s in runner.scripts)
    for i, name in enumerate(script.controls):
        args[script.args_from + i] = values.get(name, defaults.get(name, 0.0))
    return args


def b64(data: bytes | Image.Image) -> str:
    """``data`` (bytes, or an image saved as PNG) in base64, as the REST routes take it."""
    if isinstance(data, Image.Image):
        buffer = io.BytesIO()
        data.save(buffer, format="PNG")
        data = buffer.getvalue()
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def client(host: Host) -> Any:
    """FastAPI's TestClient on a bare app with the REST routes, added by the app-started callback."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()
    host.callbacks.app_started_callback(None, app)
    assert host.callbacks.reported == []
    return TestClient(app)
