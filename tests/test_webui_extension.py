"""The Stable Diffusion WebUI extension (scripts/portraitgan_webui.py) inside a fake host: the script
loads as the hosts load it and registers its hooks; its settings; what a broken setting or a library
that does not import does to each hook.

The fixtures (the fake host, the settings, the Extras runner, the REST client, the photo) are in
tests/webui_extension_fixtures.py; the Extras script and the REST routes are tested in
tests/test_webui_extras_routes.py, the PortraitGAN tab in tests/test_webui_tab.py, the tab in a
browser in tests/test_webui_browser.py.

These run under gradio 6 here and under the hosts' gradio 3.41.2 and 4.40.0 in the venvs of
tests/webui_host/make_venvs.sh.
"""

import logging
import sys
from pathlib import Path

import webui_extension_fixtures as fixtures
from webui_extension_fixtures import ROOT, b64, extras_args

# The shared fixtures this module uses, bound here so that pytest finds them by name.
host = fixtures.host
settings = fixtures.settings
extras = fixtures.extras
client = fixtures.client
rgba_photo = fixtures.rgba_photo


# --- loading and the hooks -------------------------------------------------------------------------
def test_the_script_loads_like_the_host_loads_it_and_registers_its_hooks(host):
    callbacks = host.callbacks.callback_map
    assert [Path(c.script).name for c in callbacks["callbacks_ui_settings"]] == ["portraitgan_webui.py"]
    assert [Path(c.script).name for c in callbacks["callbacks_app_started"]] == ["portraitgan_webui.py"]
    assert [Path(c.script).name for c in callbacks["callbacks_ui_tabs"]] == ["portraitgan_webui.py"]
    assert [Path(c.script).name for c in callbacks["callbacks_after_component"]] == ["portraitgan_webui.py"]
    assert [d.script_class.__name__ for d in host.scripts.postprocessing_scripts_data] == ["PortraitGANExtras"]
    assert host.scripts.scripts_data == []
    assert host.module.LIBRARY_ERROR is None
    # A1111 takes the extension's folder off sys.path after loading; the script adds it back once the
    # app has started.
    assert str(ROOT) not in sys.path
    from fastapi import FastAPI

    host.callbacks.app_started_callback(None, FastAPI())
    assert str(ROOT) in sys.path and host.callbacks.reported == []
    assert host.module.__name__ == "portraitgan_webui.py" and host.module.__name__ not in sys.modules


def test_forge_keeps_the_extension_folder_on_the_path_and_the_script_loads_the_same(host):
    saved = list(sys.path)
    try:
        host.load(keep_extension_dirs_on_path=True)
        assert sys.path[0] == str(ROOT)
        assert [d.script_class.__name__ for d in host.scripts.postprocessing_scripts_data] == ["PortraitGANExtras"]
    finally:
        sys.path[:] = saved
        host.load()  # back to the A1111 way of the other tests


def test_settings_are_added_to_the_hosts_settings_page(host):
    opts = host.shared.opts
    assert opts.portraitgan_model == "" and opts.portraitgan_device == "auto"
    for key in ("portraitgan_model", "portraitgan_device"):
        info = opts.data_labels[key]
        assert info.section == ("portraitgan", "PortraitGAN") and info.label


# --- settings and errors --------------------------------------------------------------------------
def test_a_broken_model_setting_gives_one_clear_message_and_no_exception(
    host, extras, client, rgba_photo, settings, caplog
):
    settings.portraitgan_model = "/no/such/portraitgan-model"
    pp = host.postprocessing.PostprocessedImage(rgba_photo)
    with caplog.at_level(logging.WARNING, logger="portraitgan"):
        extras.run(pp, extras_args(extras, enable=True, smile=0.5))
    assert pp.image is rgba_photo
    [message] = [r.getMessage() for r in caplog.records if r.name == "portraitgan"]
    assert message.startswith("PortraitGAN: image left unchanged: the model setting '/no/such/portraitgan-model'")
    assert "/no/such/portraitgan-model" in message and "Settings > PortraitGAN" in message and "\n" not in message
    answer = client.post("/portraitgan/v1/edit", json={"image": b64(rgba_photo), "smile": 0.5})
    assert answer.status_code == 503 and "/no/such/portraitgan-model" in answer.json()["error"]

    settings.portraitgan_model = ""
    settings.portraitgan_device = "tpu"
    answer = client.post("/portraitgan/v1/edit", json={"image": b64(rgba_photo), "smile": 0.5})
    assert answer.status_code == 503
    assert "device setting 'tpu'" in answer.json()["error"] and "Settings > PortraitGAN" in answer.json()["error"]


def test_a_model_folder_setting_is_used(host, extras, rgba_photo, settings, lite_model_dir):
    settings.portraitgan_model = str(lite_model_dir)
    pp = host.postprocessing.PostprocessedImage(rgba_photo)
    extras.run(pp, extras_args(extras, enable=True, smile=0.5))
    assert pp.image is not rgba_photo
    assert host.module.holder.key == (str(lite_model_dir), "auto")


def test_a_library_that_does_not_import_is_one_line_in_each_hook(host, rgba_photo, monkeypatch, caplog):
    """A dependency missing (or of a version the library cannot use): the script still loads, the
    hooks say why in one line, the routes answer 503."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    try:
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, "portraitgan_hub", None)  # `import portraitgan_hub` fails
            with caplog.at_level(logging.WARNING, logger="portraitgan"):
                host.load()
        error = host.module.LIBRARY_ERROR
        assert error.startswith("PortraitGAN: cannot run: the module portraitgan_hub is missing; restart the WebUI")
        assert [r.getMessage() for r in caplog.records if r.name == "portraitgan"] == [error]

        import gradio as gr

        runner = host.postprocessing.ScriptPostprocessingRunner()
        with gr.Blocks():
            runner.setup_ui()
        pp = host.postprocessing.PostprocessedImage(rgba_photo)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="portraitgan"):
            runner.run(pp, extras_args(runner, enable=True, smile=0.5))
        assert pp.image is rgba_photo
        assert [r.getMessage() for r in caplog.records] == [f"PortraitGAN: image left unchanged: {error[13:]}"]

        app = FastAPI()
        host.callbacks.app_started_callback(None, app)
        for route in ("edit", "landmarks"):
            answer = TestClient(app).post(f"/portraitgan/v1/{route}", json={"image": b64(rgba_photo)})
            assert answer.status_code == 503 and answer.json() == {"error": error}
        assert host.callbacks.reported == [] and host.scripts.reported == []
    finally:
        host.load()
