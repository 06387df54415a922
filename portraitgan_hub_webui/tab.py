"""The PortraitGAN tab (``on_ui_tabs``) and the "Send to" buttons (``on_after_component``).

The tab is the app's editing panel (``space/layout.py``'s ``build_editor``, wired by ``space/app.py``'s
``wire_editor``; the same code as the app, under the host's gradio 3.41 or 4.40 through
``space/compat.py``) with the host's "Send to img2img / inpaint / extras" buttons on the full-size
result; beside the txt2img and img2img galleries' own buttons goes a "Send to PortraitGAN" one. Both
go through the host's paste-params module (``modules/infotext_utils.py``);
``javascript/portraitgan.js`` switches to the tab.
"""

import functools
import importlib
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import gradio as gr

from . import EXTENSION_ROOT, Refused, library, log, reason
from .settings import holder, settings

TAB_ID = "portraitgan"
TAB_TITLE = "PortraitGAN"
#: The host tabs our result is sent to, and those whose galleries get a "Send to PortraitGAN" button.
SEND_TO = ("img2img", "inpaint", "extras")
SEND_FROM = ("txt2img", "img2img")
#: The tab's status line before the first photo.
TAB_READY = (
    "Send an image here with the \U0001f642 PortraitGAN button beside the txt2img or img2img gallery, "
    "or drop, paste or pick a photo above."
)
#: Every elem_id of the tab starts with this, so as not to meet the host's.
ELEM_PREFIX = "portraitgan-"


def preview_side_js(cap: int) -> str:
    """The page-load script (a JS function) giving the tab's before/after view size in device pixels,
    for the preview (the app's own is ``space/style.py``'s PREVIEW_SIDE_JS): at least 480 CSS px, at
    most ``cap`` device px whatever the devicePixelRatio (build_tab passes build_editor's default,
    ``space/session.py``'s DEFAULT_PREVIEW_SIDE, so a HiDPI screen or a phone renders no more pixels
    than the default). The tab is not the one shown then, so its view may have no width yet: then the
    result column's (the view's own column), and if that has none either, the window's where the
    columns stack (style.css, max-width: 720px) or half of it beside the controls. Not in the paper:
    a latency matter."""
    return f"""() => {{
  const width = selector => {{
    const element = document.querySelector(selector);
    return element ? element.clientWidth : 0;
  }};
  const stacked = window.matchMedia('(max-width: 720px)').matches;
  const css = width('#{ELEM_PREFIX}before-after') || width('#{ELEM_PREFIX}result-col')
    || (stacked ? innerWidth : Math.min(innerWidth, 2048) / 2);
  return Math.min(Math.round(Math.max(css, 480) * (window.devicePixelRatio || 1)), {int(cap)});
}}"""


#: ``elem_id -> component`` of the host's galleries seen by ``on_after_component``.
_galleries: dict = {}
#: ``(event, seconds)`` of the tab's last edits (read by the tests and the docs' timing).
timings: list = []


def load_space() -> ModuleType:
    """The app's modules (``space/`` of this extension), imported as the package ``portraitgan_hub_space``
    (its name once pip-installed) from this folder, so that a top-level ``space`` of another extension
    never stands in for it. Returns the package; its modules ``app``, ``compat``, ``handlers``,
    ``layout`` and ``session`` are imported."""
    name = "portraitgan_hub_space"
    if name not in sys.modules:
        init = Path(EXTENSION_ROOT) / "space" / "__init__.py"
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(init.parent)])
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        try:
            spec.loader.exec_module(package)
        except BaseException:
            del sys.modules[name]
            raise
    for module in ("app", "compat", "handlers", "layout", "session"):
        importlib.import_module(f"{name}.{module}")
    return sys.modules[name]


def tab_handlers(space: ModuleType) -> Any:
    """The app's event functions (``space.handlers.Handlers``) on the model of the settings
    (``holder``), one edit at a time with the REST routes and the Extras script."""

    class TabHandlers(space.handlers.Handlers):
        def __init__(self) -> None:
            super().__init__(None, "no model loaded yet")
            self.modalities = library.modalities(settings()[0])

        def _model(self) -> Any:
            try:
                return holder.get()
            except Refused as error:
                raise space.compat.error(reason(error)) from None

    return TabHandlers()


def guarded(space: ModuleType, fn: Callable) -> Callable:
    """``fn`` under the model lock; an unexpected exception is one line in the log and one gradio
    error message in the tab (the handlers already turn a user's mistakes into the status line)."""

    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            with holder.lock:
                return fn(*args)
        except space.compat.gr.Error:
            raise
        except Exception as error:
            log.warning("PortraitGAN: the edit failed: %s", reason(error))
            raise space.compat.error(f"PortraitGAN: the edit failed: {reason(error)}") from None
        finally:
            timings.append((getattr(fn, "__name__", "event"), time.perf_counter() - started))
            del timings[:-100]

    return call


def build_tab(space: ModuleType, infotext_utils: ModuleType) -> tuple[Any, Any, Any, dict]:
    """The tab's Blocks (made here, rendered by the host in its tab), its result's Send-to buttons
    registered with the host. Returns ``(blocks, editor, result image, {tab: button})``."""
    gr_ = space.compat.gr
    handlers = tab_handlers(space)
    made: dict = {}

    def below_result() -> None:
        made["result"] = space.compat.image_view(
            label="Result (full size): what Send to gives",
            type="pil",
            interactive=False,
            no_upload=True,
            elem_id=f"{ELEM_PREFIX}result",
            height=240,
        )
        with gr_.Row(elem_id=f"{ELEM_PREFIX}send"):
            made["send"] = infotext_utils.create_buttons(list(SEND_TO))

    with gr_.Blocks(analytics_enabled=False) as blocks:
        editor = space.layout.build_editor(
            handlers.modalities,
            elem_prefix=ELEM_PREFIX,
            below_result=below_result,
            landmarks_open=True,
            inline_photo=True,
            ready=TAB_READY,
        )
        reference = [gr_.State(1.0), gr_.State("all")]  # the app's reference strength and parts: not in the tab
        options = [editor.source, editor.target, editor.style, editor.overlay, editor.view, *reference, editor.side]
        space.app.wire_editor(
            editor,
            handlers,
            download=made["result"],
            options=options,
            reset_extras=[gr_.State(None) for _ in range(5)],
            wrap=functools.partial(guarded, space),
        )
        # The preview at the view's size, at most build_editor's default (1024 px): fewer pixels to render and send.
        side_js = preview_side_js(space.session.DEFAULT_PREVIEW_SIDE)
        space.compat.listen(blocks.load, None, None, editor.side, js=side_js)
    infotext_utils.add_paste_fields(TAB_ID, editor.image, None)
    for tabname, button in made["send"].items():
        infotext_utils.register_paste_params_button(
            infotext_utils.ParamBinding(paste_button=button, tabname=tabname, source_image_component=made["result"])
        )
    return blocks, editor, made["result"], made["send"]


def host_infotext_utils() -> ModuleType:
    """The host's paste-params module (``modules/infotext_utils.py``; its older name before A1111 1.8)."""
    try:
        from modules import infotext_utils
    except ImportError:  # hosts before A1111 1.8
        from modules import generation_parameters_copypaste as infotext_utils
    return infotext_utils


def on_ui_tabs() -> list:
    """The PortraitGAN tab; if the library or the app's modules do not import, a tab that says why."""
    try:
        if library.LIBRARY_ERROR is not None:
            raise Refused(library.LIBRARY_ERROR)
        blocks, *_ = build_tab(load_space(), host_infotext_utils())
    except Exception as error:
        message = reason(error)
        log.warning("PortraitGAN: the tab cannot be built: %s", message)
        with gr.Blocks(analytics_enabled=False) as blocks:
            gr.Markdown(f"**PortraitGAN cannot run:** {message}", elem_id=f"{ELEM_PREFIX}unavailable")
    return [(blocks, TAB_TITLE, TAB_ID)]


def on_after_component(component: Any, **kwargs: Any) -> None:
    """Beside the txt2img and img2img galleries' "Send to extras" button, a "Send to PortraitGAN"
    button (the host's paste-params binding from that gallery to the tab)."""
    elem_id = kwargs.get("elem_id") or ""
    try:
        if elem_id in {f"{tab}_gallery" for tab in SEND_FROM}:
            _galleries[elem_id] = component
        elif elem_id in {f"{tab}_send_to_extras" for tab in SEND_FROM}:
            tab = elem_id.removesuffix("_send_to_extras")
            gallery = _galleries.get(f"{tab}_gallery")
            if gallery is None:
                return
            button = gr.Button(
                "\U0001f642 PortraitGAN",  # the host's tool buttons are icons; ours says where it sends
                elem_id=f"{tab}_send_to_{TAB_ID}",
                elem_classes=["tool"],
                size="sm",
                scale=0,
                min_width=40,
            )
            infotext = host_infotext_utils()
            infotext.register_paste_params_button(
                infotext.ParamBinding(paste_button=button, tabname=TAB_ID, source_image_component=gallery)
            )
    except Exception as error:  # never into the host's UI building
        log.warning("PortraitGAN: no Send to PortraitGAN button in %s: %s", elem_id, reason(error))
