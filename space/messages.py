"""What the app says to its user: the page's fixed messages, the status line after an edit
(:func:`status_line`), and a failure a user can cause as one message.

A failure a user can cause (a bad file, no face, an option out of range) is never a traceback:
:func:`status_errors` makes it the status line of a UI event, :func:`user_errors` a ``gr.Error`` of
an API endpoint.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gradio as gr

from portraitgan_hub.default_model import MODEL_ENV
from portraitgan_hub.errors import PortraitGANError

if __package__:  # imported as a package: space.messages, or portraitgan_hub_space.messages
    from .file_inputs import error_status
else:  # imported by app.py run as a script, as a Hugging Face Space does
    from file_inputs import error_status  # type: ignore[no-redef]

READY = "Upload a portrait, use the webcam, or pick an example above."


def status_line(session: Any, source: str, target: str, strength: float, portrait: bool, note: str = "") -> str:
    """The status line after an edit of ``session`` (a ``session.Session``) from ``source`` to
    ``target`` at a style ``strength``, shown whole or as the ``portrait`` only; then ``note``."""
    faces = len(session.faces)
    parts = [f"Face {session.face + 1} of {faces}" if faces > 1 else "1 face"]
    if source == target:
        parts.append(f"{target}, expression only")
    elif strength <= 0:
        parts.append(f"{source}, expression only (style strength 0)")
    else:
        style = "" if strength >= 1 else f" at {strength:.0%} style"
        parts.append(f"{source} \u2192 {target}{style}, whole picture converted")
    if session.edits.moves:
        parts.append(f"{len(session.edits.moves)} point(s) moved")
    if session.reference is not None:
        parts.append("expression from the reference")
    if portrait:
        parts.append(f"portrait only ({2 * session.aligned.alignment.crop_size} px)")
    return " \u00b7 ".join(parts) + (f"  \n{note}" if note else "")


#: Beside the reference photo, and on the status line when it is taken with sliders away from 0.
REFERENCE_ADDS = (
    "The reference's expression and the expression sliders **add up**: a smiling reference with Smile "
    "at 1 gives a doubled grin. Zero the sliders to take the reference's expression alone."
)


def no_model_message(reason: str) -> str:
    """What the page says when no model could be loaded, and how to give one."""
    return (
        f"**No model is loaded**: {reason}\n\n"
        "Give one with `portraitgan app --model HUB_ID_OR_FOLDER` or the environment variable "
        f"`{MODEL_ENV}` (on a Hugging Face Space: *Settings > Variables*). A model is a Hub repository "
        "or a folder with `config.json` and `model.safetensors`, as written by "
        "`PortraitGAN.save_pretrained`. Face detection and the `landmarks` API work without one."
    )


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """API endpoints: every failure a user can cause (bad file, no face, ...) is a gr.Error message."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (PortraitGANError, ValueError, OSError) as error:
            raise gr.Error(str(error), print_exception=False) from None

    return wrapper


def status_errors(outputs: Callable[[Any, str], tuple]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """UI events: a failure a user can cause becomes ``outputs(handlers, status)``, one message in the
    status line; no component shows an error badge and the server keeps serving."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except gr.Error as error:
                message = str(error.message)
            except (PortraitGANError, ValueError, OSError) as error:
                message = str(error)
            return outputs(self, error_status(message))

        return wrapper

    return decorate
