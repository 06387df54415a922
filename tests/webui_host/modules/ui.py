"""Fake of the WebUI's ``modules/ui.py`` (``create_ui``) and ``modules/ui_gradio_extensions.py``
(``reload_javascript``): the page an extension's tab lives in.

Written by us from the hosts' behaviour, not copied. As in the hosts (A1111 1.10 and Forge):

- the txt2img and img2img tabs end with an output gallery (``elem_id="<tab>_gallery"``) and a row
  of tool buttons ``<tab>_send_to_img2img``, ``_inpaint`` and ``_extras`` (``ui_common.py``'s
  ``create_output_panel``), each bound to its target tab with the paste-params module; img2img has
  the sub-tabs ``#mode_img2img`` (img2img, Inpaint), the extras tab its ``extras_image``; each tab is
  built in a ``gr.Blocks`` of its own, and each component made is announced to the extensions
  (``after_component_callback`` with its arguments; the hosts patch gradio's ``Component.__init__``
  for that), so an extension can put a button beside the gallery's buttons;
- then the extensions' tabs (``ui_tabs_callback``), then the page: one ``gr.Blocks`` in which
  ``connect_paste_params_buttons()`` wires every "Send to" button, and ``gr.Tabs(elem_id="tabs")``
  with one ``gr.TabItem(label, id=ifid, elem_id="tab_<ifid>")`` per tab rendering its Blocks;
- the host's JavaScript (``script.js``, ``javascript/ui.js``: ``gradioApp``, ``switch_to_*``,
  ``extract_image_from_gallery``) and every extension's ``javascript/*.js`` go into the page's
  ``<head>``, and every extension's ``style.css`` before ``</body>``, by wrapping gradio's
  ``TemplateResponse`` (``reload_javascript``, ``css_html``); of the host's own ``style.css``, the one
  rule that an extension's layout depends on: ``div.gradio-container`` not clipping its overflow
  (:data:`HOST_CSS`).

Dropped: the prompts, the generation, settings and extensions tabs, the theme and the rest of the CSS.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import gradio as gr

from modules import infotext_utils, script_callbacks

HOST_JS = Path(__file__).resolve().parents[1] / "script.js"
#: The host's CSS that the fake keeps (A1111 1.10's and Forge's style.css, "general gradio fixes": gradio
#: 3.39+ sets overflow: hidden on the container; without this, position: sticky inside it would stick
#: to the container rather than the page).
HOST_CSS = "div.gradio-container { overflow: visible !important; }"
GRADIO_MAJOR = int(gr.__version__.split(".")[0])


def _made(component: Any, **kwargs: Any) -> Any:
    """``component``, announced to the extensions as the host does after making it."""
    script_callbacks.after_component_callback(component, **kwargs)
    return component


def _gallery(tabname: str, sample: str | None) -> Any:
    kwargs: dict[str, Any] = dict(label="Output", show_label=False, elem_id=f"{tabname}_gallery", columns=4)
    if GRADIO_MAJOR >= 4:
        kwargs["type"] = "pil"
    return _made(gr.Gallery(value=[sample] if sample else None, preview=True, **kwargs), **kwargs)


def _output_panel(tabname: str, sample: str | None) -> None:
    """The gallery and its "Send to" tool buttons, bound as ``create_output_panel`` binds them."""
    with gr.Column(elem_id=f"{tabname}_results"):
        gallery = _gallery(tabname, sample)
        with gr.Row(elem_id=f"image_buttons_{tabname}"):
            icons = {"img2img": "\U0001f5bc\ufe0f", "inpaint": "\U0001f3a8\ufe0f", "extras": "\U0001f4d0"}
            for target, icon in icons.items():
                kwargs = dict(elem_id=f"{tabname}_send_to_{target}", elem_classes=["tool"])
                button = _made(gr.Button(icon, **kwargs), **kwargs)
                infotext_utils.register_paste_params_button(
                    infotext_utils.ParamBinding(
                        paste_button=button,
                        tabname=target,
                        source_tabname="txt2img" if tabname == "txt2img" else None,
                        source_image_component=gallery,
                    )
                )


def _image(label: str, elem_id: str) -> Any:
    kwargs = dict(label=label, elem_id=elem_id, type="pil")
    return _made(gr.Image(**kwargs), **kwargs)


def create_ui(sample: str | os.PathLike[str] | None = None) -> gr.Blocks:
    """The page: txt2img, img2img and extras as above (``sample``: the image in both galleries, as if
    generated), then the extensions' tabs."""
    sample = os.fspath(sample) if sample is not None else None
    infotext_utils.reset()
    with gr.Blocks(analytics_enabled=False) as txt2img:
        _output_panel("txt2img", sample)
    with gr.Blocks(analytics_enabled=False) as img2img:
        with gr.Tabs(elem_id="mode_img2img"):
            with gr.TabItem("img2img", id="img2img", elem_id="img2img_img2img_tab"):
                init_img = _image("Image for img2img", "img2img_image")
            with gr.TabItem("Inpaint", id="inpaint", elem_id="img2img_inpaint_tab"):
                inpaint_img = _image("Image for inpainting with mask", "img2maskimg")
        _output_panel("img2img", sample)
    with gr.Blocks(analytics_enabled=False) as extras:
        extras_image = _image("Source", "extras_image")
    infotext_utils.add_paste_fields("txt2img", None, [])
    infotext_utils.add_paste_fields("img2img", init_img, [])
    infotext_utils.add_paste_fields("inpaint", inpaint_img, [])
    infotext_utils.add_paste_fields("extras", extras_image, None)

    interfaces = [(txt2img, "txt2img", "txt2img"), (img2img, "img2img", "img2img"), (extras, "Extras", "extras")]
    interfaces += script_callbacks.ui_tabs_callback()
    with gr.Blocks(analytics_enabled=False, title="Stable Diffusion") as demo:
        infotext_utils.connect_paste_params_buttons()
        with gr.Tabs(elem_id="tabs"):
            for interface, label, ifid in interfaces:
                with gr.TabItem(label, id=ifid, elem_id=f"tab_{ifid}"):
                    interface.render()
    return demo


def javascript_html(extension_dirs: Iterable[str | os.PathLike[str]]) -> str:
    """The ``<script>`` tags of the host's JavaScript and of each extension's ``javascript/*.js`` (inline
    here; the hosts link them through their ``/file=`` route)."""
    scripts = [HOST_JS.read_text(encoding="utf-8")]
    for folder in extension_dirs:
        js_dir = Path(folder) / "javascript"
        if js_dir.is_dir():
            scripts += [path.read_text(encoding="utf-8") for path in sorted(js_dir.glob("*.js"))]
    return "".join(f'<script type="text/javascript">\n{script}\n</script>\n' for script in scripts)


def css_html(extension_dirs: Iterable[str | os.PathLike[str]]) -> str:
    """The host's kept CSS (:data:`HOST_CSS`) and each extension's ``style.css`` at its root (inline
    here; the hosts link them, in that order, through their ``/file=`` route)."""
    sheets = [HOST_CSS]
    for folder in extension_dirs:
        sheet = Path(folder) / "style.css"
        if sheet.is_file():
            sheets.append(sheet.read_text(encoding="utf-8"))
    return "".join(f"<style>\n{sheet}\n</style>\n" for sheet in sheets)


def reload_javascript(extension_dirs: Iterable[str | os.PathLike[str]]) -> None:
    """Put :func:`javascript_html` into every page gradio serves, before ``</head>``, and
    :func:`css_html` before ``</body>``."""
    extension_dirs = list(extension_dirs)
    js, css = javascript_html(extension_dirs), css_html(extension_dirs)
    original = getattr(gr.routes.templates, "_portraitgan_fake_original", gr.routes.templates.TemplateResponse)
    gr.routes.templates._portraitgan_fake_original = original

    def template_response(*args: Any, **kwargs: Any) -> Any:
        response = original(*args, **kwargs)
        response.body = response.body.replace(b"</head>", f"{js}</head>".encode())
        response.body = response.body.replace(b"</body>", f"{css}</body>".encode())
        response.init_headers()
        return response

    gr.routes.templates.TemplateResponse = template_response
