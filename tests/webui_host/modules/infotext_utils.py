"""Fake of the WebUI's paste-params module: ``modules/infotext_utils.py`` (A1111 1.8+, Forge), called
``modules/generation_parameters_copypaste.py`` before and still importable under that name.

Written by us from the hosts' behaviour, not copied. As in the hosts: a tab that can *receive*
("Send to <tab>") registers itself with ``add_paste_fields(tabname, init_img, fields)``; a tab that
*sends* makes buttons with ``create_buttons(["img2img", "inpaint", "extras"])`` (``gr.Button``
"Send to <tab>", ``elem_id="<tab>_tab"``) and registers each with
``register_paste_params_button(ParamBinding(paste_button=..., tabname=..., source_image_component=...,
source_text_component=...))`` (``bind_buttons`` is the older spelling). Once every tab is built the
host calls ``connect_paste_params_buttons()``: each button then copies the source image (a gallery's
selected image, through the JS ``extract_image_from_gallery``) into the target tab's ``init_img`` and
calls the JS function ``switch_to_<tabname>`` (``switch_to_img2img``, ``switch_to_inpaint``,
``switch_to_extras`` are the host's; an extension's own tab needs its own function in ``javascript/``).
Here ``connect_paste_params_buttons`` checks each binding against the registered tabs and returns
``(binding, js function name)`` for a test to inspect; called inside a ``gr.Blocks`` (as the host calls
it, in its main Blocks before the tabs are rendered) it also wires the buttons as the host does: one
click event copying the image (``image_from_url_text`` for a gallery, after the JS
``extract_image_from_gallery``; the value as it is otherwise), one calling the JS tab switch.
"""

from __future__ import annotations

import sys
from typing import Any


class ParamBinding:
    def __init__(
        self,
        paste_button: Any,
        tabname: str,
        source_text_component: Any = None,
        source_image_component: Any = None,
        source_tabname: str | None = None,
        override_settings_component: Any = None,
        paste_field_names: list[str] | None = None,
    ) -> None:
        self.paste_button = paste_button
        self.tabname = tabname
        self.source_text_component = source_text_component
        self.source_image_component = source_image_component
        self.source_tabname = source_tabname
        self.override_settings_component = override_settings_component
        self.paste_field_names = paste_field_names or []


#: The host's own receiving tabs are there from the start (their init_img is the host's component).
HOST_TABS = ("txt2img", "img2img", "inpaint", "extras")
paste_fields: dict[str, dict[str, Any]] = {}
registered_param_bindings: list[ParamBinding] = []


def reset() -> None:
    paste_fields.clear()
    registered_param_bindings.clear()
    for tab in HOST_TABS:
        paste_fields[tab] = {"init_img": f"<{tab} init_img>", "fields": [], "override_settings_component": None}


def add_paste_fields(tabname: str, init_img: Any, fields: Any, override_settings_component: Any = None) -> None:
    paste_fields[tabname] = {
        "init_img": init_img,
        "fields": list(fields or []),
        "override_settings_component": override_settings_component,
    }


def create_buttons(tabs_list: list[str]) -> dict[str, Any]:
    import gradio as gr

    return {tab: gr.Button(f"Send to {tab}", elem_id=f"{tab}_tab") for tab in tabs_list}


def register_paste_params_button(binding: ParamBinding) -> None:
    registered_param_bindings.append(binding)


def bind_buttons(buttons: dict[str, Any], send_image: Any, send_generate_info: Any) -> None:
    """The older API: one binding per button, the text source a component or a tab name."""
    for tabname, button in buttons.items():
        text_source = None if isinstance(send_generate_info, str) else send_generate_info
        source_tab = send_generate_info if isinstance(send_generate_info, str) else None
        register_paste_params_button(
            ParamBinding(
                paste_button=button,
                tabname=tabname,
                source_text_component=text_source,
                source_image_component=send_image,
                source_tabname=source_tab,
            )
        )


def image_from_url_text(filedata: Any) -> Any:
    """The image a gallery's selected item names: gradio 3.41 sends ``[{"name": path, "is_file": True}]``,
    gradio 4.x a list of ``(image, caption)``; a ``data:`` URL is decoded. As the host's, but without its
    check that the file is in its temp folder."""
    from PIL import Image

    if filedata is None:
        return None
    if isinstance(filedata, list):
        if not filedata:
            return None
        filedata = filedata[0]
    if isinstance(filedata, (tuple, list)) and len(filedata) == 2:
        return filedata[0]
    if isinstance(filedata, dict) and filedata.get("is_file", False):
        return Image.open(filedata["name"].rsplit("?", 1)[0])
    if isinstance(filedata, str):
        import base64
        import io

        return Image.open(io.BytesIO(base64.b64decode(filedata.split(",", 1)[-1])))
    return None


def connect_paste_params_buttons() -> list[tuple[ParamBinding, str]]:
    """Check each binding (its target tab must be registered, as the host looks it up) and name the JS
    tab switch each button calls; inside a ``gr.Blocks``, wire the buttons as the host does."""
    import gradio as gr
    from gradio.context import Context

    wire = Context.block is not None
    js = "_js" if int(gr.__version__.split(".")[0]) < 4 else "js"  # Forge accepts _js too; plain 4.40 does not
    connected = []
    for binding in registered_param_bindings:
        if binding.tabname not in paste_fields:
            raise KeyError(binding.tabname)  # what the host raises for an unknown target tab
        connected.append((binding, f"switch_to_{binding.tabname}"))
        if not wire:
            continue
        destination = paste_fields[binding.tabname]["init_img"]
        if binding.source_image_component is not None and not isinstance(destination, str):
            gallery = isinstance(binding.source_image_component, gr.Gallery)
            binding.paste_button.click(
                fn=image_from_url_text if gallery else (lambda x: x),
                inputs=[binding.source_image_component],
                outputs=[destination],
                show_progress="hidden",  # the host says False, which gradio reads as "hidden"
                **{js: "extract_image_from_gallery" if gallery else None},
            )
        binding.paste_button.click(
            fn=None, inputs=None, outputs=None, show_progress="hidden", **{js: f"switch_to_{binding.tabname}"}
        )
    return connected


reset()
sys.modules.setdefault("modules.generation_parameters_copypaste", sys.modules[__name__])
