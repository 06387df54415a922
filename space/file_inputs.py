"""What the app's file inputs send, and the one status line a bad file gets.

* :func:`upload_source` and :func:`video_source` turn an upload payload into what ``load_image`` or
  ``portraitgan_hub.animate`` reads, refusing anything that is not an upload to the app
  (``uploads.check_upload``).
* :func:`payload_key` and the ``photo_key`` states say which upload the portrait box holds, so that
  a failed upload keeps the photo being edited (:func:`photo_on_screen`).
* Files the browser refuses to upload (a ``.txt`` picked or dropped on an image box, which gradio
  drops with at most a toast) are caught by :data:`REFUSED_FILES_JS` before gradio sees them and
  reported to the server (:func:`add_refused_file_report`), which answers on the status line as for
  any other bad file (:func:`refused_file_status`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import gradio as gr

from portraitgan_hub.errors import ImageLoadError

if __package__:  # imported as a package: space.file_inputs, or portraitgan_hub_space.file_inputs
    from . import uploads
else:  # imported by app.py run as a script, as a Hugging Face Space does
    import uploads  # type: ignore[no-redef]

#: ``photo_key`` (a gr.State) holds a :func:`payload_key`, or one with one of these prefixes:
#: FAILED_KEY + KEY: upload KEY failed and no photo is being edited (the box was emptied);
#: KEPT_KEY + KEY: the photo KEY (inline, not shown again) is still edited after a failed upload emptied the box.
FAILED_KEY = "failed:"
KEPT_KEY = "kept:"
INLINE_KEY = "inline:"
#: The elem_id of each file box the browser-side check watches, with the kind of file it takes and
#: what the status line asks for instead.
FILE_BOXES: dict[str, tuple[str, str]] = {
    "input-image": ("image", "upload a photo (JPEG, PNG, WebP, ...)"),
    "reference": ("image", "upload a reference photo (JPEG, PNG, WebP, ...)"),
    "driving-video": ("video", "upload a driving video (MP4, MOV, WebM, ...)"),
}
REFUSED_REPORT_ID = "refused-file-report"
REFUSED_BUTTON_ID = "refused-file"

#: Installed on page load. A file picked or dropped on one of FILE_BOXES that gradio's own type
#: check would refuse (no file of the box's MIME kind) is stopped here, in the capture phase, and
#: reported through the hidden button: one message on the status line, no toast, the box unchanged.
REFUSED_FILES_JS = """() => {
  if (window.portraitganRefusedFiles) return;
  window.portraitganRefusedFiles = true;
  const boxes = __BOXES__;
  const selector = Object.keys(boxes).map(id => '#' + id).join(', ');
  const refuse = (event, files) => {
    const box = event.target instanceof Element ? event.target.closest(selector) : null;
    if (!box || !files || !files.length) return false;
    const kind = boxes[box.id] + '/';
    if ([...files].some(file => (file.type || '').startsWith(kind))) return false;  // gradio takes those
    event.preventDefault();
    event.stopImmediatePropagation();
    window.portraitganRefused = JSON.stringify({box: box.id, name: files[0].name});
    const report = document.querySelector('#__BUTTON__');
    if (report) report.click();
    return true;
  };
  document.addEventListener('change', event => {
    const input = event.target;
    if (input instanceof HTMLInputElement && input.type === 'file' && refuse(event, input.files)) input.value = '';
  }, true);
  document.addEventListener('drop', event => {
    if (refuse(event, event.dataTransfer && event.dataTransfer.files)) {
      event.target.dispatchEvent(new DragEvent('dragleave', {bubbles: true}));  // gradio's drop highlight off
    }
  }, true);
}""".replace("__BOXES__", json.dumps({box: kind for box, (kind, _) in FILE_BOXES.items()})).replace(
    "__BUTTON__", REFUSED_BUTTON_ID
)
#: Runs when the hidden button is clicked: the report becomes the event's input.
REFUSED_REPORT_JS = "() => [window.portraitganRefused || '']"


def error_status(message: str) -> str:
    """The status line for a failure: one line, starting with "Error"."""
    return "**Error:** " + " ".join(message.split())


def upload_source(payload: Any) -> str | bytes | None:
    """The file behind an image upload that gradio did not preprocess.

    Events that take an upload run with ``preprocess=False``: gradio's own preprocessing opens the
    file with Pillow before the event function runs, so a text file or a decompression bomb would
    fail outside every handler with a bare "Error". Here ``load_image`` reads it and says what is
    wrong. Raises ``gr.Error`` in a request for a path that is not an upload to the app
    (``uploads.check_upload``) and ``ImageLoadError`` for a payload with no file.
    """
    if payload is None:
        return None
    if isinstance(payload, str) or payload.get("path"):  # an upload: see uploads.check_upload
        return uploads.check_upload(payload if isinstance(payload, str) else str(payload["path"]))
    url = payload.get("url") or ""
    if url.startswith("data:") and "," in url:  # a webcam frame sent inline
        return base64.b64decode(url.split(",", 1)[1])
    raise ImageLoadError("the upload holds no file")


def video_source(payload: Any) -> str | None:
    """The path of a video upload (a ``FileData`` payload or a path; None for an empty box).

    Raises ``gr.Error`` for a path that is not an upload to the app (``uploads.check_upload``) and
    ``ValueError`` for a payload with no file.
    """
    if payload is None:
        return None
    if isinstance(payload, dict) and isinstance(payload.get("video"), dict):  # gradio's older VideoData
        payload = payload["video"]
    path = payload if isinstance(payload, str) else (payload.get("path") if isinstance(payload, dict) else None)
    if not path:
        raise ValueError("the driving video upload holds no file")
    return uploads.check_upload(str(path))


def payload_key(payload: Any) -> str | None:
    """What identifies an upload payload: its file path (gradio names uploads by content), or a hash
    of an inline image; None for an empty box."""
    if payload is None:
        return None
    if isinstance(payload, str):
        return payload
    if payload.get("path"):
        return str(payload["path"])
    url = str(payload.get("url") or "")
    return INLINE_KEY + hashlib.blake2b(url.encode(), digest_size=16).hexdigest()


def photo_on_screen(photo_key: str | None) -> str | None:
    """The :func:`payload_key` of the photo being edited, from the ``photo_key`` state; None when
    none is (nothing uploaded yet, or the last upload failed with no photo before it)."""
    if photo_key is None or photo_key.startswith(FAILED_KEY):
        return None
    return photo_key.removeprefix(KEPT_KEY)


def failed_upload(photo_key: str | None) -> str | None:
    """The key of the upload that failed with no photo being edited, else None."""
    return photo_key.removeprefix(FAILED_KEY) if photo_key and photo_key.startswith(FAILED_KEY) else None


def emptied_by_app(photo_key: str | None) -> bool:
    """Whether the portrait box was emptied by the app after a failed upload (its change event then
    means nothing), rather than by the user."""
    return photo_key is None or photo_key.startswith((FAILED_KEY, KEPT_KEY))


def after_failed_upload(key: str, photo_key: str | None) -> tuple[str | None, str]:
    """(portrait box value, new ``photo_key``) once upload ``key`` has failed.

    With no photo being edited the box is emptied (no broken image). With one, it stays: the box
    shows its upload again (a path gradio handed out, so the upload-only check passes it), or, for an
    inline image that cannot be shown again, is emptied while the photo is still edited.
    """
    editing = photo_on_screen(photo_key)
    if editing is None:
        return None, FAILED_KEY + key
    if editing.startswith(INLINE_KEY):
        return None, KEPT_KEY + editing
    return editing, editing


def _plain(name: str) -> str:
    """A file name from the browser, safe on the status line: its last part, at most 80 characters,
    without control characters, Markdown and HTML marks escaped."""
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if ch.isprintable())[:80] or "the file"
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~&-])", r"\\\1", name)


def refused_file_status(report: str | None) -> str:
    """The status line for a file the browser refused to upload: ``report`` is what
    :data:`REFUSED_FILES_JS` sends, ``{"box": elem_id, "name": file name}`` as JSON.

    Never raises: a report that cannot be read gives a generic message.
    """
    try:
        data = json.loads(report or "")
        box, name = str(data.get("box", "")), str(data.get("name", ""))
    except (ValueError, AttributeError):
        box, name = "", ""
    kind, ask = FILE_BOXES.get(box, ("image", "upload a photo (JPEG, PNG, WebP, ...)"))
    return error_status(f"{_plain(name)} is not {'an' if kind == 'image' else 'a'} {kind} file: {ask}")


def add_refused_file_report(status: gr.components.Component) -> gr.Button:
    """The hidden report of refused files (a button and its text box, in the page but not shown) and
    its event, writing :func:`refused_file_status` to ``status``. Call inside the Blocks; install
    :data:`REFUSED_FILES_JS` on page load."""
    report = gr.Textbox(visible="hidden", elem_id=REFUSED_REPORT_ID, label="refused file")
    button = gr.Button("refused file", visible="hidden", elem_id=REFUSED_BUTTON_ID)
    button.click(
        refused_file_status,
        report,
        status,
        js=REFUSED_REPORT_JS,
        api_visibility="private",
        show_progress="hidden",
        concurrency_id="status",
        concurrency_limit=None,
    )
    return button
