"""Settings > PortraitGAN (the model and the device) and the model they name.

:data:`holder` loads the model on first use and again when a setting changes; its lock keeps the
edits of the REST routes, the Extras script and the tab one at a time.
"""

import threading
from typing import Any

from modules import shared

from . import Refused, library

SECTION = ("portraitgan", "PortraitGAN")
MODEL_SETTING = "portraitgan_model"
DEVICE_SETTING = "portraitgan_device"


def settings() -> tuple[str, str]:
    """``(model, device)`` from the host's settings (their defaults before ``on_ui_settings`` ran)."""
    model = getattr(shared.opts, MODEL_SETTING, "") or ""
    device = getattr(shared.opts, DEVICE_SETTING, "auto") or "auto"
    return str(model).strip(), str(device).strip()


class ModelHolder:
    """The model of the current settings, loaded on first use and again when a setting changes; a
    setting that does not load is remembered (and said in one line) until it changes."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # one edit at a time: the model and its face cache are shared
        self.key: tuple[str, str] | None = None
        self.model: Any = None
        self.error: str | None = None

    def get(self) -> Any:
        """The model; :class:`Refused` (status 503) when the library or the settings do not load."""
        if library.LIBRARY_ERROR is not None:
            raise Refused(library.LIBRARY_ERROR, 503)
        key = settings()
        with self.lock:
            if key != self.key:
                self.key, self.model, self.error = key, None, None
                try:
                    self.model = library.load_model(*key)
                except Exception as error:
                    self.error = library.setting_error(key, error)
            if self.error is not None:
                raise Refused(self.error, 503)
            return self.model


holder = ModelHolder()


def on_ui_settings() -> None:
    """The host's ``on_ui_settings`` callback: add the two settings to Settings > PortraitGAN."""
    shared.opts.add_option(
        MODEL_SETTING,
        shared.OptionInfo(
            "",
            "PortraitGAN model: a Hugging Face Hub id or a folder (empty: the demo model it ships with)",
            section=SECTION,
        ).info("a folder holding config.json and model.safetensors; a Hub id is downloaded once"),
    )
    shared.opts.add_option(
        DEVICE_SETTING,
        shared.OptionInfo("auto", "PortraitGAN device", section=SECTION).info(
            "auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N or mps"
        ),
    )
