"""PortraitGAN in the Stable Diffusion WebUI (AUTOMATIC1111 1.10, Forge, reForge): host glue only.

The host executes this file when it starts (``modules/scripts.py``, ``load_scripts``), and every other
``scripts/*.py`` too, so the extension's code is the package ``portraitgan_hub_webui`` at the
extension's root (loaded by :func:`load_helpers`). This file registers its hooks with the host:

- **settings** (Settings > PortraitGAN, ``on_ui_settings``; ``portraitgan_hub_webui/settings.py``):
  the model, a Hub id or a folder (empty: the demo model embedded in the package), and the device
  (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``);
- **REST routes** (``on_app_started``; ``routes.py``): ``POST /portraitgan/v1/edit`` (JSON: a base64
  image and edit options, answers a base64 PNG) and ``POST /portraitgan/v1/landmarks`` (answers each
  face's box and 68 points); an error is JSON ``{"error": "..."}`` with a 4xx status (a 5xx one when
  the fault is the server's: a model setting that does not load, a library that failed to import);
- an **Extras-tab postprocessing script** (:class:`PortraitGANExtras`, ``extras.py``; the host finds
  it among this module's classes): enable, face, modality and its strength, the smile, mouth-open and
  eye-open sliders; it edits ``pp.image`` in place, keeping an alpha channel;
- the **PortraitGAN tab** (``on_ui_tabs``; ``tab.py``): the app's editing panel with the host's "Send
  to img2img / inpaint / extras" buttons on the full-size result; and a "Send to PortraitGAN" button
  beside the txt2img and img2img galleries' own (``on_after_component``).

Every call into the library is one small function in ``portraitgan_hub_webui/library.py``. Nothing
raises into the host: an edit that fails logs one line (``portraitgan`` logger) and leaves the image as
it was; a route answers the error as JSON.
"""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

# The repository is the extension: `portraitgan_hub` is imported from this folder. The hosts put it
# first on sys.path while this file runs; Forge leaves it there, A1111 1.10 restores the path it had
# before (a list this file cannot reach). So add it here for hosts that run us with another path,
# and again once the app has started (on_app_started), for A1111.
EXTENSION_ROOT = str(Path(__file__).resolve().parents[1])
#: The extension's own modules, a folder at its root (not in scripts/: the host would run them).
HELPERS = "portraitgan_hub_webui"


def keep_importable() -> None:
    """Make this extension's folder importable (appended: it never shadows the host's modules)."""
    if EXTENSION_ROOT not in sys.path:
        sys.path.append(EXTENSION_ROOT)


def load_helpers() -> ModuleType:
    """The package ``portraitgan_hub_webui`` from this extension's folder (never one of that name
    elsewhere on ``sys.path``), executed afresh each time the host runs this file, as when it all was
    this one file: a host that loads the scripts again gets new state and its own modules."""
    for name in [n for n in sys.modules if n == HELPERS or n.startswith(f"{HELPERS}.")]:
        del sys.modules[name]
    init = Path(EXTENSION_ROOT) / HELPERS / "__init__.py"
    spec = importlib.util.spec_from_file_location(HELPERS, init, submodule_search_locations=[str(init.parent)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[HELPERS] = package
    try:
        spec.loader.exec_module(package)
    except BaseException:
        del sys.modules[HELPERS]
        raise
    return package


keep_importable()
load_helpers()

# Imported into this module: the Extras script (the host collects it among this module's classes), and
# LIBRARY_ERROR, holder and timings, readable here as before (the tests and tests/webui_host/serve.py).
from modules import script_callbacks  # noqa: E402 (after the path set-up above)

from portraitgan_hub_webui import routes, settings, tab  # noqa: E402
from portraitgan_hub_webui.extras import PortraitGANExtras  # noqa: E402, F401
from portraitgan_hub_webui.library import LIBRARY_ERROR  # noqa: E402, F401
from portraitgan_hub_webui.settings import holder  # noqa: E402, F401
from portraitgan_hub_webui.tab import timings  # noqa: E402, F401


def on_app_started(_demo: Any, app: Any) -> None:
    """The host's ``on_app_started`` callback: the extension's folder back on ``sys.path``, the REST
    routes added to the host's FastAPI ``app``."""
    keep_importable()
    routes.add_routes(app)


script_callbacks.on_ui_settings(settings.on_ui_settings)
script_callbacks.on_app_started(on_app_started)
script_callbacks.on_ui_tabs(tab.on_ui_tabs)
script_callbacks.on_after_component(tab.on_after_component)
