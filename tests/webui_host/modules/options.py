"""Fake of the WebUI's ``modules/options.py`` (``OptionInfo``, ``Options``, ``options_section``).

Written by us from the hosts' behaviour, not copied. As in the hosts: an ``OptionInfo`` carries a
default, a label, an optional gradio component and its arguments, a ``section`` ``(id, label)`` and
an ``onchange``; ``.info()``, ``.link()``, ``.html()``, ``.needs_restart()`` and ``.needs_reload_ui()``
add to its comments and return it. ``Options.add_option(key, info)`` registers a setting and sets
its value to the default unless a saved value is already in ``opts.data``; ``opts.KEY`` reads
``data`` (falling back to the default), ``opts.KEY = v`` writes it; ``opts.set(key, v)`` writes and
calls ``onchange``, restoring the old value when ``onchange`` raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class OptionInfo:
    def __init__(
        self,
        default: Any = None,
        label: str = "",
        component: Any = None,
        component_args: Any = None,
        onchange: Callable[[], None] | None = None,
        section: tuple[str | None, str] | None = None,
        refresh: Callable[[], None] | None = None,
        comment_before: str = "",
        comment_after: str = "",
        infotext: str | None = None,
        restrict_api: bool = False,
        category_id: str | None = None,
    ) -> None:
        self.default = default
        self.label = label
        self.component = component
        self.component_args = component_args
        self.onchange = onchange
        self.section = section
        self.category_id = category_id
        self.refresh = refresh
        self.do_not_save = False
        self.comment_before = comment_before
        self.comment_after = comment_after
        self.infotext = infotext
        self.restrict_api = restrict_api

    def link(self, label: str, url: str) -> OptionInfo:
        self.comment_before += f"[<a href='{url}' target='_blank'>{label}</a>]"
        return self

    def js(self, label: str, js_func: str) -> OptionInfo:
        self.comment_before += f"[<a onclick='{js_func}(); return false'>{label}</a>]"
        return self

    def info(self, info: str) -> OptionInfo:
        self.comment_after += f"<span class='info'>({info})</span>"
        return self

    def html(self, html: str) -> OptionInfo:
        self.comment_after += html
        return self

    def needs_restart(self) -> OptionInfo:
        self.comment_after += " <span class='info'>(requires restart)</span>"
        return self

    def needs_reload_ui(self) -> OptionInfo:
        self.comment_after += " <span class='info'>(requires Reload UI)</span>"
        return self


def options_section(section_identifier: tuple, options_dict: dict[str, OptionInfo]) -> dict[str, OptionInfo]:
    for info in options_dict.values():
        info.section = tuple(section_identifier[:2])
        if len(section_identifier) == 3:
            info.category_id = section_identifier[2]
    return options_dict


_BUILTIN = {"data_labels", "data", "typemap"}


class Options:
    typemap = {int: float}

    def __init__(self, data_labels: dict[str, OptionInfo] | None = None) -> None:
        self.data_labels = dict(data_labels or {})
        self.data = {key: info.default for key, info in self.data_labels.items() if not info.do_not_save}

    def __setattr__(self, key: str, value: Any) -> None:
        if key in _BUILTIN:
            return super().__setattr__(key, value)
        if key in self.data or key in self.data_labels:
            self.data[key] = value
            return None
        return super().__setattr__(key, value)

    def __getattr__(self, item: str) -> Any:
        if item in _BUILTIN:
            return super().__getattribute__(item)
        if item in self.data:
            return self.data[item]
        if item in self.data_labels:
            return self.data_labels[item].default
        return super().__getattribute__(item)

    def add_option(self, key: str, info: OptionInfo) -> None:
        self.data_labels[key] = info
        if key not in self.data and not info.do_not_save:
            self.data[key] = info.default

    def set(self, key: str, value: Any, is_api: bool = False, run_callbacks: bool = True) -> bool:
        old = self.data.get(key, None)
        if old == value:
            return False
        option = self.data_labels[key]
        if option.do_not_save or (is_api and option.restrict_api):
            return False
        setattr(self, key, value)
        if run_callbacks and option.onchange is not None:
            try:
                option.onchange()
            except Exception:  # the host shows the error and keeps the old value
                setattr(self, key, old)
                return False
        return True

    def get_default(self, key: str) -> Any:
        info = self.data_labels.get(key)
        return None if info is None else info.default

    def onchange(self, key: str, func: Callable[[], None], call: bool = True) -> None:
        self.data_labels[key].onchange = func
        if call:
            func()
