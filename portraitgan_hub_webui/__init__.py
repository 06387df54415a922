"""The Stable Diffusion WebUI extension's code, behind the host glue of ``scripts/portraitgan_webui.py``.

Not a ``scripts/`` file: the host executes every ``scripts/*.py`` as a script, so the helpers live here,
at the extension's root. Not in the pip wheel either: the extension runs from its git checkout. The
script loads this package from its file (as the module ``portraitgan_hub_webui``, afresh each time
the host loads the scripts, so a "Reload UI" starts from new state) and imports its modules:

- :mod:`.library`: every call into ``portraitgan_hub`` (imported there; a failure is
  ``LIBRARY_ERROR``, one line);
- :mod:`.settings`: Settings > PortraitGAN and the model they name (``holder``);
- :mod:`.routes`: ``POST /portraitgan/v1/edit`` and ``/portraitgan/v1/landmarks``;
- :mod:`.extras`: the Extras tab's postprocessing script;
- :mod:`.tab`: the PortraitGAN tab and the "Send to" buttons.

Nothing raises into the host: an edit that fails logs one line (``portraitgan`` logger) and leaves the
image as it was; a route answers the error as JSON.
"""

import logging
from pathlib import Path

#: The extension's folder (the repository root).
EXTENSION_ROOT = str(Path(__file__).resolve().parents[1])

log = logging.getLogger("portraitgan")


class Refused(Exception):
    """A request or setting PortraitGAN cannot act on; ``str()`` is the one line to show, ``status``
    the HTTP status a route answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def reason(error: object) -> str:
    """An error's one line, without a leading ``PortraitGAN:``."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text.removeprefix("PortraitGAN: ")
