"""The app opens only what it was given: its file inputs take uploads, never a path or a URL.

A caller of the app's API writes a gradio ``FileData`` payload itself, and its ``path`` can name any
file on the server. Gradio checks the path only in an app started with ``Blocks.launch`` (in one
served with ``gr.mount_gradio_app`` it reads whatever is named, and its errors tell whether the
file exists), accepts anything inside its upload folder (``$GRADIO_TEMP_DIR``), and downloads a URL
by itself. :func:`guard_uploads` makes each input check the path first, before gradio reads, copies or
downloads anything (see :func:`check_upload`).

The app's other gradio modules are listed in ``__init__.py``.
"""

from __future__ import annotations

import os
from typing import Any

import gradio as gr

try:
    from gradio.context import LocalContext
    from gradio.utils import get_upload_folder
except ImportError:  # gradio 3 (the WebUI's 3.41): its image boxes send no paths, see compat.image_input
    LocalContext = get_upload_folder = None

from portraitgan_hub.faces.image_io import is_url

#: The one answer to a path that is not an upload to this app, whether or not the file exists.
NOT_UPLOADED = "only files uploaded to this app are accepted: upload the file"
URL_REFUSED = "URLs are not accepted: upload the file"


def is_accepted(blocks: Any, names: tuple[str, ...]) -> bool:
    """Whether the running app ``blocks`` handed out a file under one of ``names``: from its
    ``/upload`` route, or as gradio's cached copy of one of its examples (``keep_in_cache``).

    For Blocks rendered inside another app, ``blocks`` is that host app, which serves the uploads.
    """
    uploads = getattr(blocks, "upload_file_set", None) or ()
    if any(name in uploads for name in names):
        return True
    kept = (getattr(block, "keep_in_cache", None) or () for block in getattr(blocks, "blocks", {}).values())
    return any(name in files for files in kept for name in names)


def check_upload(path: str | os.PathLike[str]) -> str:
    """``path`` if the app serving this request handed it out (:func:`is_accepted`), else ``gr.Error``.

    An accepted path must also still be a regular file inside gradio's upload folder once symbolic
    links are resolved. The path is looked up by name first, so any other is refused without
    touching the disk. Outside a request (a direct Python call: no app is serving) nothing is checked.

    Raises ``gr.Error(URL_REFUSED)`` for a URL and ``gr.Error(NOT_UPLOADED)`` for any other path
    that is not accepted, the same message whether or not the file exists.
    """
    text = os.fspath(path)
    blocks = LocalContext.blocks.get(None) if LocalContext is not None else None
    if blocks is None:
        return text
    if is_url(text):
        raise gr.Error(URL_REFUSED, print_exception=False)
    absolute = os.path.abspath(text) if text else ""
    if not (is_accepted(blocks, (text, absolute)) and _is_file_inside(absolute, get_upload_folder())):
        raise gr.Error(NOT_UPLOADED, print_exception=False)
    return text


def _is_file_inside(path: str, folder: str) -> bool:
    real, root = os.path.realpath(path), os.path.realpath(folder)
    try:
        inside = os.path.commonpath([real, root]) == root
    except ValueError:  # another drive (Windows)
        return False
    return inside and os.path.isfile(real)


def guard_uploads(demo: gr.Blocks) -> None:
    """Make every input of ``demo``'s events accept only uploads (:func:`check_upload`), whoever calls.

    Gradio hands each file path it finds in an input payload, of any component (a slider's too),
    to that component's ``move_resource_to_block_cache`` (``async_`` in a request) before it reads,
    copies or downloads the file: the check goes there, ahead of gradio's own. Call this once every
    event is built. No input of the app returns a file but its examples (accepted), so outputs are
    not affected. The copy gradio makes of a component for a session whose event updated it is not
    wrapped: the event functions check the path they get again (``file_inputs.upload_source``).
    """
    guarded: set[int] = set()
    for block_fn in demo.fns.values():
        for component in block_fn.inputs:
            if id(component) not in guarded and not getattr(component, "stateful", False):
                guarded.add(id(component))
                _guard(component)


def _guard(component: Any) -> None:
    sync_move = component.move_resource_to_block_cache
    async_move = component.async_move_resource_to_block_cache

    def move_resource_to_block_cache(url_or_file_path: Any) -> str | None:
        if url_or_file_path is not None:
            check_upload(url_or_file_path)
        return sync_move(url_or_file_path)

    async def async_move_resource_to_block_cache(url_or_file_path: Any) -> str | None:
        if url_or_file_path is not None:
            check_upload(url_or_file_path)
        return await async_move(url_or_file_path)

    component.move_resource_to_block_cache = move_resource_to_block_cache
    component.async_move_resource_to_block_cache = async_move_resource_to_block_cache
