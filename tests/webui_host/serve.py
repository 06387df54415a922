"""Serve the fake host's page (``modules/ui.py``) with this extension loaded, as the WebUI starts:
the scripts loaded, the settings added, the extensions' JavaScript put in the page, the UI built
(txt2img, img2img, extras, then the extensions' tabs), the server started, then ``on_app_started``.

    PYTHON tests/webui_host/serve.py --port PORT [--sample IMAGE]

``PYTHON`` is the Python of a host venv (tests/webui_host/make_venvs.sh) or any with gradio 6.
``--sample``: the image in the txt2img and img2img galleries, as if generated. Prints ``SERVING
<url>`` once the page is served, then serves until its standard input closes. Beside the
extension's routes, ``GET /portraitgan-test/timings`` answers the tab's last event times
(``[[event function, seconds], ...]``) and ``GET /portraitgan-test/renders`` how many re-renders
(a slider, an option) made a new picture (one that gave the before/after view no new value, a
repeat of what is on the screen, is not one), ``GET /portraitgan-test/rendered`` their slider
values (``[{expression name: value}, ...]``). Used by tests/test_webui_browser.py.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path
from types import ModuleType

HOST = Path(__file__).resolve().parent
ROOT = HOST.parents[1]
SCRIPT = ROOT / "scripts" / "portraitgan_webui.py"


def count_renders(space: ModuleType) -> list[dict[str, float]]:
    """From now on, each re-render of the app's handlers (``space``: the tab's copy of the app's
    modules) that gives the before/after view a new value, appended to the list returned: its slider
    values by expression name (``EXPRESSION_NAMES``: "smile", ...)."""
    handlers, is_update = space.handlers.Handlers, space.compat.is_update
    rerender, renders = handlers.rerender, []
    names = space.handlers.EXPRESSION_NAMES

    @functools.wraps(rerender)  # the tab's timings name the event by it
    def counted(self, *args):
        outputs = rerender(self, *args)
        if not is_update(outputs[1]):
            values = args[len(args) - len(names) :]
            renders.append({name: float(value) for name, value in zip(names, values)})
        return outputs

    handlers.rerender = counted
    return renders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sample", help="image shown in the txt2img and img2img galleries")
    args = parser.parse_args()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    sys.path.insert(0, str(HOST))

    import gradio as gr
    from modules import script_callbacks, scripts, shared, ui

    shared.reset()
    scripts.load_scripts([str(ROOT)])
    if scripts.reported:
        raise SystemExit(f"the host could not load the extension: {scripts.reported}")
    module = scripts.loaded_scripts[str(SCRIPT)]
    renders = count_renders(module.tab.load_space())  # before the tab is built: it takes the handlers then
    script_callbacks.ui_settings_callback()
    ui.reload_javascript([str(ROOT)])
    demo = ui.create_ui(args.sample)
    if script_callbacks.reported:
        raise SystemExit(f"a callback raised into the host: {script_callbacks.reported}")
    demo.queue()
    app, url, _ = demo.launch(server_name="127.0.0.1", server_port=args.port, prevent_thread_lock=True, quiet=True)
    script_callbacks.app_started_callback(demo, app)
    app.add_api_route("/portraitgan-test/timings", lambda: [list(row) for row in module.timings], methods=["GET"])
    app.add_api_route("/portraitgan-test/renders", lambda: len(renders), methods=["GET"])
    app.add_api_route("/portraitgan-test/rendered", lambda: list(renders), methods=["GET"])
    print(f"SERVING {url} gradio {gr.__version__}", flush=True)
    sys.stdin.read()
    demo.close()


if __name__ == "__main__":
    main()
