"""What differs between the gradio majors the editor runs under: 6 (the app), 4.40 and 3.41 (the
Stable Diffusion WebUI hosts: Forge, and A1111 1.10 / reForge / Forge Classic).

``layout.build_editor`` makes the editing panel with the component factories here and ``app.wire_editor``
wires it with :func:`listen`, so that the same code builds the app's page under gradio 6 and the
WebUI tab under 4.40 and 3.41. What differs:

- **components**: :func:`image_input` (``sources=`` from 4, ``source=`` in 3), :func:`image_view`
  (``format=`` from 4), :func:`before_after` (``gr.ImageSlider`` in 6, the ``gradio_imageslider``
  package in 4, two images side by side in a ``gr.Gallery`` otherwise), :func:`choice_dropdown`
  (``(label, value)`` choices from 4; labels only in 3), :func:`state` (``time_to_live=`` from 4);
- **event options** (:func:`event_options`): ``api_visibility=`` (6) is ``api_name=False`` /
  ``show_api=False`` before; ``show_progress_on=`` is 6 only; ``concurrency_id=``,
  ``concurrency_limit=`` and ``trigger_mode=`` are 4 and 6 (3 has the queue's ``concurrency_count``);
  ``js=`` is ``_js=`` in 3; ``preprocess=False`` gives the event ``None`` for every ``gr.State`` in
  3, so there the event is preprocessed and the image boxes made here pass their payload on;
- **a slider's drag** (:func:`slider_renders`): gradio 6 renders it once, on release, its input
  events during the drag skipped (a page script says when a pointer is down: :data:`POINTER_JS`);
  4.40 and 3.41 render on its input events (the WebUI tab's page script holds a drag's back until
  the release: ``javascript/portraitgan.js``), one job waiting at most in 4.40; 3.41 drops an event
  while its last job is on, so there the same function follows each job, reading the slider again;
- **what the browser sends and what an event returns** (:func:`listen`): a component made here may
  carry converters, which :func:`listen` puts around the event function. An image box sends a
  ``FileData`` dict from 4 and a base64 data URL in 3 (with ``preprocess=False``); the hosts' copies
  are handed to the event functions inline (see :func:`image_input`). A ``gr.Gallery`` takes a list,
  a gradio-3 dropdown a label. In gradio 6 no component made here has a converter, so the app's
  event functions are called as they are.

``gr.skip()``, ``gr.update()``, ``gr.SelectData``, ``.then``/``.success`` and ``gr.Error(message)``
are the same in the three. ``gr.Error``'s ``print_exception=`` is 6 only: use :func:`error`.
"""

from __future__ import annotations

import base64
import functools
import mimetypes
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

GRADIO_MAJOR = int(gr.__version__.split(".")[0])
#: A slider renders when it is released, not while it is dragged (:func:`slider_renders`): gradio 6.
RENDER_ON_RELEASE = GRADIO_MAJOR >= 5
#: Run once in the page (on load, and by :data:`DRAGGING_JS` if it was not): keeps in
#: ``window.portraitganPointer.down`` whether a mouse button or a finger is down on a range slider.
POINTER_JS = """() => {
  if (window.portraitganPointer) return;
  const pointer = window.portraitganPointer = {down: false};
  addEventListener('pointerdown', e => {
    if (e.target instanceof HTMLInputElement && e.target.type === 'range') pointer.down = true;
  }, true);
  for (const kind of ['pointerup', 'pointercancel']) addEventListener(kind, () => { pointer.down = false; }, true);
}"""
#: The ``js`` of a slider's input event: its inputs as they are, the last (the hidden "dragging"
#: checkbox) set to whether a pointer is down on a slider.
DRAGGING_JS = f"""(...args) => {{
  ({POINTER_JS})();
  return [...args.slice(0, -1), window.portraitganPointer.down];
}}"""
#: Event options that gradio 3 does not take (it has one queue with ``concurrency_count``).
_NOT_IN_3 = ("concurrency_id", "concurrency_limit", "trigger_mode", "show_api")


def error(message: str) -> gr.Error:
    """A ``gr.Error`` with ``message``, without a traceback in the server's log where gradio can say so (6)."""
    if GRADIO_MAJOR >= 5:
        return gr.Error(message, print_exception=False)
    return gr.Error(message)


def is_update(value: Any) -> bool:
    """Whether an event output is ``gr.update(...)`` / ``gr.skip()``: a dict, ``__type__`` "update"
    (4 and 6) or "generic_update" (3)."""
    return isinstance(value, dict) and value.get("__type__") in ("update", "generic_update")


# --- converters -------------------------------------------------------------------------------------
#: ``id(component)`` -> (what the event function gets from its payload, what the component gets from
#: the event function's value); ``None``: as it is.
_CONVERTERS: dict[int, tuple[Callable[[Any], Any] | None, Callable[[Any], Any] | None]] = {}


def _convert(component: Any, inward: Callable[[Any], Any] | None, outward: Callable[[Any], Any] | None) -> Any:
    if inward is not None or outward is not None:
        _CONVERTERS[id(component)] = (inward, outward)
    return component


def _values(outward: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``outward`` applied to a plain value and to the ``value`` of an update; other updates pass."""

    def convert(value: Any) -> Any:
        if is_update(value):
            if "value" not in value:
                return value
            return {**value, "value": convert(value["value"])}
        return outward(value)

    return convert


# --- components -------------------------------------------------------------------------------------
def state(value: Any = None, *, time_to_live: float | None = None) -> gr.State:
    """A ``gr.State``; dropped ``time_to_live`` seconds after its last use where gradio can (4+)."""
    if GRADIO_MAJOR >= 4 and time_to_live is not None:
        return gr.State(value, time_to_live=time_to_live)
    return gr.State(value)


def image_input(*, sources: Sequence[str], inline: bool = False, **kwargs: Any) -> gr.Image:
    """An image box that takes ``sources`` (``upload``, ``webcam``, ``clipboard``); events read it
    with ``preprocess=False`` and get the payload ``file_inputs.upload_source`` reads.

    gradio 3 takes one source (the first); its box sends a base64 data URL, handed on as the inline
    payload ``{"path": None, "url": DATA_URL}``. With ``inline`` (the WebUI tab under gradio 4, where
    the box is also filled by the host's "Send to" buttons with files the host wrote), a file in
    gradio's own folder is read and handed on inline too, since the app's upload check accepts only
    files uploaded to the app; a path anywhere else becomes an empty payload (refused, "holds no file").
    """
    if GRADIO_MAJOR >= 4:
        box = gr.Image(sources=list(sources), **kwargs)
        return _convert(box, _inline_file if inline else None, None)
    if kwargs.get("image_mode", "RGB") is None:  # events read the payload, never gradio 3's conversion
        del kwargs["image_mode"]
    box = gr.Image(source=list(sources)[0], **kwargs)
    # gradio 3 hands an event with preprocess=False what the browser sent for every input, None for
    # each gr.State: such events run preprocessed (event_options), and this box passes its payload on.
    box.preprocess = lambda payload: payload
    return _convert(box, _inline_data_url, None)


def _inline_data_url(payload: Any) -> Any:
    """gradio 3's image payload (a base64 data URL) as the inline payload of gradio 4+."""
    if isinstance(payload, str):
        return {"path": None, "url": payload if payload.startswith("data:") else ""}
    return payload


def _inline_file(payload: Any) -> Any:
    """A ``FileData`` payload of a file in gradio's folder as an inline payload (see :func:`image_input`)."""
    if not isinstance(payload, dict) or not payload.get("path"):
        return payload
    from gradio.utils import get_upload_folder

    path = os.path.realpath(str(payload["path"]))
    folder = os.path.realpath(get_upload_folder())
    if os.path.commonpath([path, folder]) != folder or not os.path.isfile(path):
        return {"path": None, "url": ""}
    kind = mimetypes.guess_type(path)[0] or "image/png"
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return {"path": None, "url": f"data:{kind};base64,{data}"}


def image_view(
    *, format: str | None = None, no_upload: bool = False, no_buttons: bool = False, **kwargs: Any
) -> gr.Image:
    """An image shown by the page (``interactive=False`` unless said): ``format`` where gradio takes
    it (4+; gradio 3 sends PNG). With ``no_upload``, an update never makes it an upload box (the
    ``interactive`` of an update is dropped); with ``no_buttons``, no download, share or full-screen
    button over its corner (``buttons=[]`` in 6, ``show_download_button`` / ``show_share_button``
    before)."""
    if GRADIO_MAJOR >= 4 and format is not None:
        kwargs["format"] = format
    if no_buttons and GRADIO_MAJOR >= 5:
        kwargs["buttons"] = []
    elif no_buttons:
        kwargs.update(show_download_button=False, show_share_button=False)
    view = gr.Image(**kwargs)
    if no_upload:
        return _convert(view, None, _drop_interactive)
    return view


def _drop_interactive(value: Any) -> Any:
    if is_update(value) and "interactive" in value:
        return {key: item for key, item in value.items() if key != "interactive"}
    return value


def before_after(*, label: str, elem_id: str, max_height: int | None = None, **kwargs: Any) -> Any:
    """The before/after view; events give it ``(before, after)`` PIL images.

    gradio 6: ``gr.ImageSlider`` (JPEG); gradio 4: ``gradio_imageslider.ImageSlider`` when that package
    is installed (Forge has it); else a two-column ``gr.Gallery`` captioned "before" and "after". The
    pictures go to the browser as JPEG in all three: the ImageSlider of 4 would write WebP (0.24 s for
    two 1024 px pictures on the 2-core test machine), the Gallery of 3 PNG, encoded twice to name the
    file by its hash (1.3 s), against 0.01-0.02 s as JPEG (the WebUI tab's slider release -> image
    times are in docs/webui-extension.md).
    """
    if GRADIO_MAJOR >= 5 and hasattr(gr, "ImageSlider"):
        return gr.ImageSlider(
            label=label,
            type="pil",
            format="jpeg",
            interactive=False,
            elem_id=elem_id,
            max_height=max_height,
            **kwargs,
        )
    if GRADIO_MAJOR == 4:
        try:
            from gradio_imageslider import ImageSlider
        except ImportError:
            pass
        else:
            slider = ImageSlider(
                label=label, type="pil", interactive=False, elem_id=elem_id, height=max_height, **kwargs
            )
            return _convert(slider, None, _values(functools.partial(_jpeg_files, slider.GRADIO_CACHE)))
    gallery = gr.Gallery(label=label, columns=2, elem_id=elem_id, object_fit="contain", **kwargs)  # its own height
    # gradio 3.41's Gallery writes a PIL image with its pil_to_temp_file, PNG unless told.
    gallery.pil_to_temp_file = functools.partial(_pil_to_jpeg_file, gallery.pil_to_temp_file)
    return _convert(gallery, None, _values(_captioned))


def _captioned(pair: Any) -> Any:
    if isinstance(pair, (tuple, list)) and len(pair) == 2:
        return [(pair[0], "before"), (pair[1], "after")]
    return pair


def _rgb(image: Any) -> Any:
    """A PIL image in a mode JPEG stores (RGB or L; an alpha channel is dropped)."""
    return image if getattr(image, "mode", "RGB") in ("RGB", "L") else image.convert("RGB")


def _jpeg_files(cache: str, pair: Any) -> Any:
    """gradio 4: the before/after pair of PIL images as JPEG files in gradio's ``cache`` folder (paths,
    which gradio_imageslider's ImageSlider sends as they are)."""
    from gradio.processing_utils import save_pil_to_cache

    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        return pair
    return tuple(save_pil_to_cache(_rgb(p), cache, format="jpeg") if hasattr(p, "save") else p for p in pair)


def _pil_to_jpeg_file(save: Callable[..., str], image: Any, *args: Any, **options: Any) -> str:
    """gradio 3's ``Component.pil_to_temp_file`` (``save``: ``(image, dir, format="png")``), writing JPEG.

    ``dir`` comes by position or by name: gradio 3.41's ``img_array_to_temp_file`` (a numpy image)
    calls ``self.pil_to_temp_file(pil_image, dir, format="png")``. A ``format`` given by position (the
    third argument) is replaced too.
    """
    return save(_rgb(image), *args[:1], **{**options, "format": "jpeg"})


def choice_dropdown(**kwargs: Any) -> gr.Dropdown:
    """A dropdown whose events give and take ``(label, value)`` choices and a value.

    gradio 3 knows labels only: the page shows the labels, an event function gets the value of the
    label picked (from the choices last given to any session: labels must name one value each) and
    its updates are turned into labels.
    """
    dropdown = gr.Dropdown(**kwargs)
    if GRADIO_MAJOR >= 4:
        return dropdown
    values: dict[str, Any] = {}

    def inward(label: Any) -> Any:
        return values.get(label, label)

    def outward(update: Any) -> Any:
        if not is_update(update):
            return update
        update = dict(update)
        if update.get("choices") is not None:
            pairs = [tuple(c) if isinstance(c, (tuple, list)) else (c, c) for c in update["choices"]]
            values.update((str(label), value) for label, value in pairs)
            update["choices"] = [str(label) for label, _ in pairs]
        if update.get("value") is not None:
            labels = {value: label for label, value in values.items()}
            update["value"] = labels.get(update["value"], update["value"])
        return update

    return _convert(dropdown, inward, outward)


# --- events -----------------------------------------------------------------------------------------
def event_options(**options: Any) -> dict[str, Any]:
    """``options`` of an event listener as gradio 6 spells them, in this gradio's spelling (see the
    module's docstring); those it does not have are dropped."""
    options = dict(options)
    if GRADIO_MAJOR >= 5:
        return options
    options.pop("show_progress_on", None)
    visibility = options.pop("api_visibility", None)
    if visibility == "private":
        options["api_name"] = False
    if visibility in ("private", "undocumented"):
        options["show_api"] = False
    if GRADIO_MAJOR <= 3:
        for name in _NOT_IN_3:
            options.pop(name, None)
        if options.get("preprocess") is False:  # gr.State inputs would be None: see image_input
            options["preprocess"] = True
        if "js" in options:
            options["_js"] = options.pop("js")
    return options


def listen(
    trigger: Callable[..., Any], fn: Callable[..., Any] | None, inputs: Any = None, outputs: Any = None, **options: Any
) -> Any:
    """``trigger(fn, inputs, outputs, **options)`` (``trigger``: an event listener such as
    ``button.click`` or a dependency's ``.then``) in this gradio's spelling, with ``fn`` put between
    the converters of the components made here (none in gradio 6 for the app's)."""
    if fn is not None:
        fn = _converting(fn, _as_list(inputs), _as_list(outputs))
    return trigger(fn, inputs, outputs, **event_options(**options))


def slider_renders(
    slider: Any, fn: Callable[..., Any], inputs: Any, outputs: Any, *, dragging: Any, **options: Any
) -> list[Any]:
    """Wire ``fn`` to run when ``slider`` is moved; returns the events (for ``.success``).

    gradio 6 (:data:`RENDER_ON_RELEASE`): on ``.release`` (the mouse button or the finger lifted,
    the number box left), and on ``.input`` (arrow keys, a typed value) except during a drag: that
    event also reads ``dragging`` (a hidden checkbox that :data:`DRAGGING_JS` sets in the browser)
    and gives ``(gr.skip(), ...)`` while it is set, so one drag is one render and one new picture.
    4.40 and 3.41: on ``.input`` (a drag's steps are input events too: the WebUI tab's
    ``javascript/portraitgan.js`` holds them back until the release). gradio 3.41 drops a trigger
    while the same event's last job is pending (its Blocks.svelte), so a value set during a render,
    a second drag's, would stay unrendered: there ``fn`` runs again after each job, on the slider's
    value then (a repeat of what is on the screen renders nothing), and only that second event is
    returned, so that what follows it (the download) follows the last render.
    """
    if not RENDER_ON_RELEASE:
        event = listen(slider.input, fn, inputs, outputs, **options)
        return [event] if GRADIO_MAJOR >= 4 else [listen(event.then, fn, inputs, outputs, **options)]
    skipped = tuple(gr.skip() for _ in _as_list(outputs))

    def unless_dragging(*args: Any) -> Any:
        *args, dragged = args
        return skipped if dragged else fn(*args)

    # fn's name (the callers' timings name events by it); its signature and hints stay the wrapper's,
    # which take the extra input.
    unless_dragging.__name__ = unless_dragging.__qualname__ = getattr(fn, "__name__", "slider_moved")

    return [
        listen(slider.input, unless_dragging, [*_as_list(inputs), dragging], outputs, js=DRAGGING_JS, **options),
        listen(slider.release, fn, inputs, outputs, **options),
    ]


def _as_list(components: Any) -> list[Any]:
    if components is None:
        return []
    return list(components) if isinstance(components, (list, tuple, set)) else [components]


def _converting(fn: Callable[..., Any], inputs: list[Any], outputs: list[Any]) -> Callable[..., Any]:
    """``fn`` with its inputs and outputs converted (the components' converters); ``fn`` itself when
    none of them has one. Input converters need an ``fn`` without event data (``gr.SelectData``)."""
    inward = [_CONVERTERS.get(id(c), (None, None))[0] for c in inputs]
    outward = [_CONVERTERS.get(id(c), (None, None))[1] for c in outputs]
    if not any(inward) and not any(outward):
        return fn
    single = len(outputs) == 1

    @functools.wraps(fn)
    def converted(*args: Any) -> Any:
        args = tuple(convert(a) if convert else a for convert, a in zip(inward, args)) + args[len(inward) :]
        result = fn(*args)
        if single:
            return outward[0](result) if outward[0] else result
        return tuple(convert(r) if convert else r for convert, r in zip(outward, result))

    return converted
