"""Fake of the WebUI's ``modules/scripts.py`` (with ``modules/script_loading.py``): loading an
extension's ``scripts/*.py`` and the ``Script`` base class.

Written by us from the hosts' behaviour, not copied. As in the hosts, :func:`load_scripts`:

- clears the callbacks, then, for each ``EXTENSION/scripts/*.py`` in name order, puts the extension's
  folder first on ``sys.path``, sets :func:`basedir` to it, and executes the file as a module named
  after the file (``importlib.util.spec_from_file_location(os.path.basename(path), path)``; the
  module is *not* put in ``sys.modules``);
- collects the module's subclasses of :class:`Script` and of
  ``scripts_postprocessing.ScriptPostprocessing`` (classes imported into it count too);
- catches and reports an exception raised while loading (``errors.report``), then goes on;
- afterwards restores ``sys.path``: A1111 1.10 keeps the extension's folder on it only while the file
  runs; Forge puts every extension's folder first on ``sys.path`` for good before loading
  (``keep_extension_dirs_on_path=True``).

:data:`reported` keeps what the host would report.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Iterable
from typing import Any, NamedTuple

from modules import script_callbacks, scripts_postprocessing

AlwaysVisible = object()

#: The WebUI's own folder; for scripts in extensions :func:`basedir` is the extension's folder.
script_path = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
current_basedir = script_path


class ScriptClassData(NamedTuple):
    script_class: type
    path: str
    basedir: str
    module: Any


scripts_data: list[ScriptClassData] = []
postprocessing_scripts_data: list[ScriptClassData] = []
loaded_scripts: dict[str, Any] = {}
#: ``(what failed, the exception's one-line text, the traceback)`` of each caught exception.
reported: list[tuple[str, str, str]] = []


def basedir() -> str:
    """The folder of the extension whose script is being loaded (the WebUI's folder otherwise)."""
    return current_basedir


class Script:
    """Base of txt2img/img2img scripts; ``show()`` returns ``False``, ``True`` or :data:`AlwaysVisible`."""

    name = None
    section = None
    filename = None
    args_from = None
    args_to = None
    alwayson = False
    is_txt2img = False
    is_img2img = False
    tabname = None
    group = None
    create_group = True
    infotext_fields = None
    paste_field_names = None
    controls = None
    sorting_priority = 0

    def title(self) -> str:
        raise NotImplementedError()

    def ui(self, is_img2img: bool) -> Any:
        return None

    def show(self, is_img2img: bool) -> Any:
        return True

    def run(self, p: Any, *args: Any) -> Any:
        return None

    def process(self, p: Any, *args: Any) -> None:
        return None

    def postprocess(self, p: Any, processed: Any, *args: Any) -> None:
        return None

    def postprocess_image(self, p: Any, pp: Any, *args: Any) -> None:
        return None


def load_module(path: str) -> Any:
    """``modules/script_loading.py``: execute ``path`` as a module named after the file."""
    spec = importlib.util.spec_from_file_location(os.path.basename(path), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loaded_scripts[path] = module
    return module


def list_scripts(extension_dirs: Iterable[str]) -> list[tuple[str, str]]:
    """``(extension folder, script path)`` of each ``scripts/*.py``, extension by extension, by name."""
    found = []
    for folder in extension_dirs:
        scripts_dir = os.path.join(folder, "scripts")
        if not os.path.isdir(scripts_dir):
            continue
        for filename in sorted(os.listdir(scripts_dir)):
            path = os.path.join(scripts_dir, filename)
            if os.path.isfile(path) and os.path.splitext(filename)[1].lower() == ".py":
                found.append((os.path.abspath(folder), path))
    return found


def load_scripts(extension_dirs: Iterable[str], *, keep_extension_dirs_on_path: bool = False) -> None:
    """Load the scripts of the extensions in ``extension_dirs`` as the host does at start."""
    global current_basedir
    scripts_data.clear()
    postprocessing_scripts_data.clear()
    reported.clear()
    script_callbacks.clear_callbacks()
    listed = list_scripts(extension_dirs)
    if keep_extension_dirs_on_path:  # Forge
        for folder, _ in listed:
            if folder not in sys.path:
                sys.path = [folder] + sys.path
    syspath = sys.path
    for folder, path in listed:
        try:
            sys.path = [folder] + sys.path
            current_basedir = folder
            module = load_module(path)
            for value in module.__dict__.values():
                if not inspect.isclass(value):
                    continue
                if issubclass(value, Script):
                    scripts_data.append(ScriptClassData(value, path, folder, module))
                elif issubclass(value, scripts_postprocessing.ScriptPostprocessing):
                    postprocessing_scripts_data.append(ScriptClassData(value, path, folder, module))
        except Exception as error:
            reported.append(
                (
                    f"Error loading script: {os.path.basename(path)}",
                    f"{type(error).__name__}: {error}",
                    traceback.format_exc(),
                )
            )
        finally:
            sys.path = syspath
            current_basedir = script_path
