"""Fake of the WebUI's ``modules/script_callbacks.py``: registering callbacks and the host calling them.

Written by us from the hosts' behaviour, not copied. As in the hosts: ``on_app_started(fn)``,
``on_ui_tabs(fn)``, ``on_ui_settings(fn)``, ``on_after_component(fn)`` (and the other ``on_*``)
append to a list in :data:`callback_map`, remembering the file that registered them; the host then
calls ``app_started_callback(demo, app)`` with the gradio Blocks and the FastAPI app after the server
starts, ``ui_tabs_callback()`` while building the UI (each callback returns ``None`` or a list of
``(gradio component, title, elem_id)``), ``after_component_callback(component, **kwargs)`` after
making each component (the hosts patch gradio's ``Component.__init__`` for it; the fake UI of
``modules/ui.py`` calls it for the components it makes), and ``ui_settings_callback()`` before the
settings page is built. The host catches an exception from any callback and reports it (``errors.report``) instead of
stopping; here each report is kept in :data:`reported`, so a test can assert that nothing reached
the host. ``clear_callbacks()`` is what the host does before (re)loading the scripts.
"""

from __future__ import annotations

import inspect
import os
import traceback
from collections.abc import Callable
from typing import Any, NamedTuple


class ScriptCallback(NamedTuple):
    script: str
    callback: Callable[..., Any]
    name: str


callback_map: dict[str, list[ScriptCallback]] = {
    f"callbacks_{category}": []
    for category in (
        "app_started",
        "model_loaded",
        "ui_tabs",
        "ui_train_tabs",
        "ui_settings",
        "before_image_saved",
        "image_saved",
        "before_component",
        "after_component",
        "infotext_pasted",
        "script_unloaded",
        "before_ui",
        "on_reload",
    )
}
#: ``(what was being called, the exception's one-line text, the traceback)`` of each caught exception.
reported: list[tuple[str, str, str]] = []


def _add(category: str, callback: Callable[..., Any], name: str | None) -> None:
    stack = [frame for frame in inspect.stack() if frame.filename != __file__]
    filename = stack[0].filename if stack else "unknown file"
    callbacks = callback_map[f"callbacks_{category}"]
    label = f"{os.path.basename(filename)}/{category}" + (f"/{name}" if name else "")
    callbacks.append(ScriptCallback(filename, callback, label))


def _report(callback: ScriptCallback, job: str, error: BaseException) -> None:
    reported.append((f"{job} for {callback.script}", f"{type(error).__name__}: {error}", traceback.format_exc()))


def clear_callbacks() -> None:
    for callbacks in callback_map.values():
        callbacks.clear()
    reported.clear()


def on_app_started(callback: Callable[[Any, Any], None], *, name: str | None = None) -> None:
    """Called with ``(demo, app)``: the gradio Blocks (or ``None``) and the FastAPI app."""
    _add("app_started", callback, name)


def on_model_loaded(callback: Callable[[Any], None], *, name: str | None = None) -> None:
    _add("model_loaded", callback, name)


def on_ui_tabs(callback: Callable[[], Any], *, name: str | None = None) -> None:
    """The callback returns ``None`` or a list of ``(gradio component, title, elem_id)``."""
    _add("ui_tabs", callback, name)


def on_ui_settings(callback: Callable[[], None], *, name: str | None = None) -> None:
    """The callback adds settings with ``shared.opts.add_option(key, shared.OptionInfo(...))``."""
    _add("ui_settings", callback, name)


def on_before_image_saved(callback: Callable[[Any], None], *, name: str | None = None) -> None:
    _add("before_image_saved", callback, name)


def on_image_saved(callback: Callable[[Any], None], *, name: str | None = None) -> None:
    _add("image_saved", callback, name)


def on_before_component(callback: Callable[..., None], *, name: str | None = None) -> None:
    """Called with ``(component, **kwargs)`` before each gradio component is made: ``kwargs`` are the
    arguments given to it (``elem_id``, ``label``, ...), by which a callback tells which one it is."""
    _add("before_component", callback, name)


def on_after_component(callback: Callable[..., None], *, name: str | None = None) -> None:
    """Called with ``(component, **kwargs)`` after each gradio component is made, still inside the
    layout it was made in: a component made by the callback goes beside it."""
    _add("after_component", callback, name)


def on_infotext_pasted(callback: Callable[[str, dict], None], *, name: str | None = None) -> None:
    _add("infotext_pasted", callback, name)


def on_script_unloaded(callback: Callable[[], None], *, name: str | None = None) -> None:
    _add("script_unloaded", callback, name)


def on_before_ui(callback: Callable[[], None], *, name: str | None = None) -> None:
    _add("before_ui", callback, name)


def on_before_reload(callback: Callable[[], None], *, name: str | None = None) -> None:
    _add("on_reload", callback, name)


def before_component_callback(component: Any, **kwargs: Any) -> None:
    for c in callback_map["callbacks_before_component"]:
        try:
            c.callback(component, **kwargs)
        except Exception as error:
            _report(c, "before_component_callback", error)


def after_component_callback(component: Any, **kwargs: Any) -> None:
    for c in callback_map["callbacks_after_component"]:
        try:
            c.callback(component, **kwargs)
        except Exception as error:
            _report(c, "after_component_callback", error)


def app_started_callback(demo: Any, app: Any) -> None:
    for c in callback_map["callbacks_app_started"]:
        try:
            c.callback(demo, app)
        except Exception as error:
            _report(c, "app_started_callback", error)


def ui_tabs_callback() -> list[tuple[Any, str, str]]:
    tabs: list[tuple[Any, str, str]] = []
    for c in callback_map["callbacks_ui_tabs"]:
        try:
            tabs += c.callback() or []
        except Exception as error:
            _report(c, "ui_tabs_callback", error)
    return tabs


def ui_settings_callback() -> None:
    for c in callback_map["callbacks_ui_settings"]:
        try:
            c.callback()
        except Exception as error:
            _report(c, "ui_settings_callback", error)


def script_unloaded_callback() -> None:
    for c in reversed(callback_map["callbacks_script_unloaded"]):
        try:
            c.callback()
        except Exception as error:
            _report(c, "script_unloaded", error)


def before_ui_callback() -> None:
    for c in reversed(callback_map["callbacks_before_ui"]):
        try:
            c.callback()
        except Exception as error:
            _report(c, "before_ui", error)
