"""The Stable Diffusion WebUI extension (scripts/portraitgan_webui.py) inside a fake host.

The fake host (tests/webui_host, see its ``modules/__init__.py``) loads the script the way A1111 and
Forge do: executed from ``scripts/`` as a module named after the file, with the extension's folder on
``sys.path`` while it runs (A1111) or for good (Forge). The tests then call each hook as the host
does: the settings callback, the app-started callback with a bare FastAPI app (the REST routes, called
with FastAPI's TestClient), and the Extras tab's postprocessing script on a 1350 px RGBA photo.

The PortraitGAN tab (``on_ui_tabs``) is built by the host's UI callback and its event functions
are called as gradio calls them (the functions the Blocks registered, with what the browser sends);
the host's own page with the "Send to" buttons is the fake ``modules/ui.py``. A real browser drives
the served tab in tests/test_webui_browser.py.

These run under gradio 6 here and under the hosts' gradio 3.41.2 and 4.40.0 in the venvs of
tests/webui_host/make_venvs.sh.
"""

import base64
import io
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
HOST = Path(__file__).resolve().parent / "webui_host"
SCRIPT = str(ROOT / "scripts" / "portraitgan_webui.py")


def _forget_host_modules() -> None:
    for name in [n for n in sys.modules if n == "modules" or n.startswith("modules.") or n == "launch"]:
        del sys.modules[name]


class Host:
    """The fake host's modules, and the script as it loaded it."""

    def __init__(self) -> None:
        from modules import script_callbacks, scripts, scripts_postprocessing, shared

        self.scripts, self.callbacks, self.postprocessing, self.shared = (
            scripts,
            script_callbacks,
            scripts_postprocessing,
            shared,
        )

    @property
    def module(self):
        return self.scripts.loaded_scripts[SCRIPT]  # read each time: a test may load the scripts again

    def load(self, **options) -> None:
        """Load the extension's scripts as the host does at start, from a ``sys.path`` without the
        extension's folder (pytest put this checkout on it)."""
        sys.path[:] = [entry for entry in sys.path if entry != str(ROOT)]
        self.scripts.load_scripts([str(ROOT)], **options)
        assert self.scripts.reported == [], self.scripts.reported
        self.callbacks.ui_settings_callback()


@pytest.fixture(scope="module")
def host():
    """The fake host with the extension loaded (A1111 style: its folder on sys.path while it loads)."""
    _forget_host_modules()
    saved = list(sys.path)
    sys.path.insert(0, str(HOST))
    try:
        fake = Host()
        fake.shared.reset()
        fake.load()
        yield fake
    finally:
        sys.path[:] = saved
        _forget_host_modules()


@pytest.fixture
def settings(host):
    """The extension's settings, restored after the test."""
    opts = host.shared.opts
    saved = {key: opts.data[key] for key in ("portraitgan_model", "portraitgan_device")}
    yield opts
    opts.data.update(saved)


@pytest.fixture(scope="module")
def rgba_photo(full_size_photo) -> Image.Image:
    """The 1350 px London photo, opaque but for a soft left edge (alpha 0 to 255 over 300 px), as a cut-out."""
    with Image.open(full_size_photo) as photo:
        picture = photo.convert("RGB")
    alpha = np.full((picture.height, picture.width), 255, np.uint8)
    alpha[:, :300] = np.linspace(0, 255, 300, dtype=np.uint8)
    picture.putalpha(Image.fromarray(alpha))
    return picture


def colour_change(a: Image.Image, b: Image.Image) -> np.ndarray:
    """Per pixel, the largest change of R, G or B."""
    return np.abs(np.asarray(a, np.int16)[..., :3] - np.asarray(b, np.int16)[..., :3]).max(axis=2)


@pytest.fixture(scope="module")
def extras(host):
    """The Extras tab's postprocessing scripts, their UI built as the host builds it."""
    import gradio as gr

    runner = host.postprocessing.ScriptPostprocessingRunner()
    with gr.Blocks():
        runner.setup_ui()
    return runner


def extras_args(runner, **values):
    """The runner's argument list with PortraitGAN's controls set to ``values`` (others: defaults)."""
    script = next(s for s in runner.scripts if s.name == "PortraitGAN")
    defaults = {"enable": False, "face": 0, "modality": "photo", "modality_strength": 1.0}
    args = [None] * max(s.args_to for s in runner.scripts)
    for i, name in enumerate(script.controls):
        args[script.args_from + i] = values.get(name, defaults.get(name, 0.0))
    return args


def b64(data: bytes | Image.Image) -> str:
    if isinstance(data, Image.Image):
        buffer = io.BytesIO()
        data.save(buffer, format="PNG")
        data = buffer.getvalue()
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def client(host):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()
    host.callbacks.app_started_callback(None, app)
    assert host.callbacks.reported == []
    return TestClient(app)


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


def test_the_extras_ui_has_the_controls_the_host_passes_by_name(extras):
    script = next(s for s in extras.scripts if s.name == "PortraitGAN")
    assert list(script.controls) == [
        "enable",
        "face",
        "modality",
        "modality_strength",
        "smile",
        "mouth_open",
        "eye_open",
    ]
    assert script.controls["modality"].choices  # the embedded demo's modalities
    assert script.controls["enable"].value is False


# --- the Extras tab --------------------------------------------------------------------------------
def test_extras_edits_a_full_size_photo_and_keeps_its_alpha(host, extras, rgba_photo, settings):
    pp = host.postprocessing.PostprocessedImage(rgba_photo.copy())
    extras.run(pp, extras_args(extras, enable=True, smile=0.8, mouth_open=0.3))
    assert pp.image is not rgba_photo and pp.image.size == (1350, 1350) and pp.image.mode == "RGBA"
    assert np.array_equal(np.asarray(pp.image)[..., 3], np.asarray(rgba_photo)[..., 3])
    changed = colour_change(pp.image, rgba_photo)
    assert changed[600:1000, 450:950].max() > 20  # the lower face moved
    assert changed[:200, 1150:].max() == 0  # far from the face (and opaque) nothing changed
    assert "smile 0.8" in pp.info["PortraitGAN"]


@pytest.mark.xfail(
    strict=True,
    reason="the library composites alpha on white (faces.image_io.load_image) and puts the input's alpha "
    "back on that: half-transparent pixels far from the face come back lighter (by 57 levels at alpha 64 "
    "on this photo); the fix belongs in the editor, which should keep the input's colours outside the face",
)
def test_extras_keeps_the_colour_of_half_transparent_pixels_far_from_the_face(host, extras, rgba_photo):
    pp = host.postprocessing.PostprocessedImage(rgba_photo)
    extras.run(pp, extras_args(extras, enable=True, smile=0.8))
    assert colour_change(pp.image, rgba_photo)[:200, 50:250].max() <= 1


def test_extras_disabled_or_neutral_leaves_the_image_alone(host, extras, rgba_photo):
    for values in ({"enable": False, "smile": 1.0}, {"enable": True}):
        pp = host.postprocessing.PostprocessedImage(rgba_photo)
        extras.run(pp, extras_args(extras, **values))
        assert pp.image is rgba_photo and "PortraitGAN" not in pp.info


def test_extras_through_the_api_arguments_with_unset_values(host, extras, rgba_photo):
    """``/sdapi/v1/extra-single-image`` passes only what the caller named; the rest is ``None``."""
    args = extras.create_args_for_run({"PortraitGAN": {"enable": True, "smile": 0.5}})
    pp = host.postprocessing.PostprocessedImage(rgba_photo)
    extras.run(pp, args)
    assert pp.image is not rgba_photo and pp.image.mode == "RGBA"


def test_an_extras_failure_logs_one_line_and_leaves_the_image(host, extras, caplog):
    blank = Image.new("RGB", (640, 480), (120, 120, 120))
    pp = host.postprocessing.PostprocessedImage(blank)
    with caplog.at_level(logging.WARNING, logger="portraitgan"):
        extras.run(pp, extras_args(extras, enable=True, smile=0.5))
    assert pp.image is blank
    messages = [r.getMessage() for r in caplog.records if r.name == "portraitgan"]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert messages[0].startswith("PortraitGAN: image left unchanged:") and "face" in messages[0].lower()


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


# --- REST routes -----------------------------------------------------------------------------------
def test_edit_route_answers_a_png_of_the_input_size(client, rgba_photo, full_size_photo):
    answer = client.post(
        "/portraitgan/v1/edit",
        json={"image": "data:image/png;base64," + b64(rgba_photo), "smile": 0.8, "face": 0},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    result = Image.open(io.BytesIO(base64.b64decode(body["image"])))
    assert result.format == "PNG" and result.size == (1350, 1350) == (body["width"], body["height"])
    assert result.mode == "RGBA"
    assert np.array_equal(np.asarray(result)[..., 3], np.asarray(rgba_photo)[..., 3])

    jpeg = client.post("/portraitgan/v1/edit", json={"image": b64(full_size_photo.read_bytes()), "modality": "sketch"})
    assert jpeg.status_code == 200 and Image.open(io.BytesIO(base64.b64decode(jpeg.json()["image"]))).mode == "RGB"


def test_landmarks_route_answers_each_face_with_68_points(client, full_size_photo):
    answer = client.post("/portraitgan/v1/landmarks", json={"image": b64(full_size_photo.read_bytes())})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["width"], body["height"]) == (1350, 1350)
    [face] = body["faces"]
    left, top, right, bottom = face["box"]
    assert 0 < left < right < 1350 and 0 < top < bottom < 1350
    points = np.asarray(face["landmarks"])
    assert points.shape == (68, 2)
    assert (points[:, 0] > left - 50).all() and (points[:, 0] < right + 50).all()


@pytest.mark.parametrize(
    ("route", "body", "status", "says"),
    [
        ("edit", "not json", 400, "not JSON"),
        ("edit", ["a list"], 400, "JSON object"),
        ("edit", {}, 400, "image must be a base64"),
        ("edit", {"image": "%%%%"}, 400, "not valid base64"),
        ("edit", {"image": base64.b64encode(b"no picture").decode()}, 400, "image"),
        ("edit", {"image": "PHOTO", "grin": 1}, 400, "unknown option(s) grin"),
        ("edit", {"image": "PHOTO", "smile": 9}, 422, "smile"),
        ("edit", {"image": "PHOTO", "face": 3}, 422, "face"),
        ("edit", {"image": "PHOTO", "modality": "oil"}, 422, "oil"),
        ("edit", {"image": "PHOTO", "moves": {"48": "left"}}, 400, "moves"),
        ("edit", {"image": "PHOTO", "reference": "/etc/hostname"}, 400, "reference is not valid base64"),
        ("edit", {"image": "BLANK", "smile": 0.5}, 422, "face"),
        ("landmarks", {}, 400, "image must be a base64"),
        ("landmarks", {"image": "PHOTO", "smile": 1}, 400, "unknown option(s) smile"),
    ],
)
def test_routes_answer_bad_requests_with_json_errors(client, full_size_photo, route, body, status, says):
    if isinstance(body, dict) and body.get("image") in ("PHOTO", "BLANK"):
        picture = full_size_photo.read_bytes() if body["image"] == "PHOTO" else Image.new("RGB", (320, 240))
        body = {**body, "image": b64(picture)}
    if isinstance(body, str):
        answer = client.post(f"/portraitgan/v1/{route}", content=body, headers={"content-type": "application/json"})
    else:
        answer = client.post(f"/portraitgan/v1/{route}", json=body)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]


# --- the PortraitGAN tab ---------------------------------------------------------------------------


def gradio_major() -> int:
    import gradio as gr

    return int(gr.__version__.split(".")[0])


def event_function(blocks, component, event: str):
    """The function ``blocks`` runs on ``component``'s ``event`` (gradio 3 keeps the triggers apart)."""
    fns = list(blocks.fns.values()) if isinstance(blocks.fns, dict) else list(blocks.fns)
    for index, block_fn in enumerate(fns):
        targets = getattr(block_fn, "targets", None)
        if targets is None:  # gradio 3
            dependency = blocks.dependencies[index]
            targets = [(target, dependency["trigger"]) for target in dependency["targets"]]
        if (component._id, event) in [tuple(target) for target in targets]:
            return block_fn
    raise LookupError(f"no {event} event on {component}")


def named_function(blocks, name: str):
    fns = list(blocks.fns.values()) if isinstance(blocks.fns, dict) else list(blocks.fns)
    return next(f for f in fns if getattr(f.fn, "__name__", "") == name)


def photo_payload(path: Path):
    """What the browser sends for a photo in the tab's box: a base64 data URL (gradio 3), or the
    ``FileData`` of the file gradio stored in its upload folder (gradio 4 and 6)."""
    if gradio_major() < 4:
        return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    import shutil
    import tempfile

    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder())
    folder.mkdir(parents=True, exist_ok=True)
    copy = Path(tempfile.mkdtemp(dir=folder)) / path.name
    shutil.copyfile(path, copy)
    return {"path": str(copy), "url": None, "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def call(block_fn, by_component: dict):
    """``block_fn.fn`` with its inputs' values: each input component's own value, or the one
    ``by_component`` gives (``{id(component): value}``)."""
    values = [by_component.get(id(c), getattr(c, "value", None)) for c in block_fn.inputs]
    return block_fn.fn(*values)


@pytest.fixture(scope="module")
def tab(host):
    """The tab as the host builds it: ``(blocks, editor, result image, send buttons)``; the host's
    paste-params registry filled."""
    from modules import infotext_utils

    infotext_utils.reset()
    [(blocks, title, elem_id)] = host.callbacks.ui_tabs_callback()
    assert (title, elem_id) == ("PortraitGAN", "portraitgan") and host.callbacks.reported == []
    editor = infotext_utils.paste_fields["portraitgan"]["init_img"]
    result = next(b.source_image_component for b in infotext_utils.registered_param_bindings)
    return blocks, editor, result, dict(infotext_utils.paste_fields), list(infotext_utils.registered_param_bindings)


def test_the_tab_is_the_apps_editing_panel_with_send_to_buttons(host, tab):
    blocks, image, result, paste_fields, bindings = tab
    import gradio as gr

    elem_ids = {getattr(block, "elem_id", None) for block in blocks.blocks.values()}
    for name in (
        "input-image",
        "face-picker",
        "source",
        "target",
        "style-strength",
        "result-view",
        "overlay",
        "slider-smile",
        "slider-mouth_open",
        "slider-eye_open",
        "reset",
        "before-after",
        "status",
        "crop-view",
        "undo",
        "result",
    ):
        assert f"portraitgan-{name}" in elem_ids, name
    assert isinstance(image, gr.Image) and image.elem_id == "portraitgan-input-image"
    before_after = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "portraitgan-before-after")
    # gr.ImageSlider (6), gradio_imageslider's (4.40, as Forge has it), a two-image gr.Gallery (3.41)
    assert type(before_after).__name__ == ("Gallery" if gradio_major() < 4 else "ImageSlider")
    # Send to img2img / inpaint / extras: the host's buttons, from the full-size result.
    assert [(b.tabname, b.source_image_component) for b in bindings] == [
        ("img2img", result),
        ("inpaint", result),
        ("extras", result),
    ]
    assert [b.paste_button.value for b in bindings] == ["Send to img2img", "Send to inpaint", "Send to extras"]
    assert paste_fields["portraitgan"]["init_img"] is image
    # Every event of the tab runs in the tab's own Blocks: nothing was added to the host's.
    crop = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "portraitgan-crop-view")
    assert event_function(blocks, crop, "select").fn.__name__ == "crop_clicked"


def test_send_to_portraitgan_from_the_txt2img_and_img2img_galleries(host, full_size_photo):
    """The host's page (the fake ``modules/ui.py``): a "Send to PortraitGAN" button beside each
    gallery's own, bound to the tab's photo box through the paste-params module, with the JS tab
    switch that javascript/portraitgan.js defines."""
    from modules import infotext_utils, ui

    demo = ui.create_ui(full_size_photo)
    assert host.callbacks.reported == []
    ours = [b for b in infotext_utils.registered_param_bindings if b.tabname == "portraitgan"]
    assert [b.source_image_component.elem_id for b in ours] == ["txt2img_gallery", "img2img_gallery"]
    assert [b.paste_button.elem_id for b in ours] == ["txt2img_send_to_portraitgan", "img2img_send_to_portraitgan"]
    assert all(b.paste_button.elem_id in {getattr(x, "elem_id", None) for x in demo.blocks.values()} for b in ours)
    assert infotext_utils.paste_fields["portraitgan"]["init_img"].elem_id == "portraitgan-input-image"
    connected = dict((id(b), js) for b, js in infotext_utils.connect_paste_params_buttons())
    assert {connected[id(b)] for b in ours} == {"switch_to_portraitgan"}
    script = (ROOT / "javascript" / "portraitgan.js").read_text()
    assert "function switch_to_portraitgan(" in script and "'PortraitGAN'" in script
    # The host's page has the extension's script in its <head>.
    assert "function switch_to_portraitgan(" in ui.javascript_html([str(ROOT)])


def test_the_tab_edits_a_full_size_photo_through_its_event_functions(host, tab, full_size_photo, settings):
    blocks, image, result, _, _ = tab
    module = host.module
    photo = event_function(blocks, image, "change")
    module.timings.clear()
    started = time.perf_counter()
    box, key, picker, session, pair, crop, download, status = call(
        photo, by_component={id(image): photo_payload(full_size_photo)}
    )
    opened = time.perf_counter() - started
    assert status.startswith("1 face"), status
    assert session is not None and session.photo.size == (1350, 1350)
    assert key is not None and crop is not None and download.get("value", "x") is None
    before, after = _pair(pair)
    assert before.size == after.size and max(after.size) <= 1024  # a preview, not the 1350 px photo

    smile = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "portraitgan-slider-smile")
    session_state = photo.outputs[3]
    rerender = event_function(blocks, smile, "input")
    started = time.perf_counter()
    session, pair, _, _, status = call(rerender, by_component={id(session_state): session, id(smile): 0.8})
    smiled = time.perf_counter() - started
    assert status.startswith("1 face") and "Error" not in status
    assert np.asarray(_pair(pair)[1], np.int16).tolist() != np.asarray(after, np.int16).tolist()

    full = named_function(blocks, "prepare_download").fn(session)
    assert "interactive" not in full  # the full-size result stays an image, never an upload box
    with Image.open(full["value"]) as png:
        assert png.size == (1350, 1350)
    timing = (
        f"gradio {__import__('gradio').__version__}: the tab's photo event (face detection, first render) "
        f"{opened:.2f} s, the smile slider {smiled:.2f} s on the 1350 px photo"
    )
    print(timing)
    assert [name for name, _ in module.timings] == ["photo_changed", "rerender", "prepare_download"]


def _pair(value):
    """(before, after) PIL images of the before/after view's value (a gallery's captioned list in gradio 3)."""
    if isinstance(value, list):
        value = [item[0] if isinstance(item, tuple) else item for item in value]
    before, after = value
    return before, after


def test_an_edit_error_in_the_tab_is_one_line_on_its_status_line(host, tab, settings, tmp_path):
    blocks, image, _, _, _ = tab
    photo = event_function(blocks, image, "change")
    blank = tmp_path
    Image.new("RGB", (320, 240), (120, 120, 120)).save(blank / "blank.png")
    *_, status = call(photo, by_component={id(image): photo_payload(blank / "blank.png")})
    assert status.startswith("**Error:**") and "face" in status.lower() and "\n" not in status
    settings.portraitgan_model = "/no/such/portraitgan-model"
    *_, status = call(photo, by_component={id(image): photo_payload(blank / "blank.png")})
    assert status.startswith("**Error:** the model setting '/no/such/portraitgan-model' does not load")
    assert "Settings > PortraitGAN" in status and "\n" not in status
    assert host.callbacks.reported == []


def test_a_tab_that_cannot_be_built_says_why_and_the_host_goes_on(host, monkeypatch):
    monkeypatch.setattr(host.module, "load_space", lambda: (_ for _ in ()).throw(ImportError("no gradio_client")))
    [(blocks, title, _)] = host.module.on_ui_tabs()
    [note] = [b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "portraitgan-unavailable"]
    assert title == "PortraitGAN" and "no gradio_client" in note.value


def test_the_face_picker_of_the_tab_under_each_gradio(host, tab, three_faces_photo):
    """Several faces: the picker shows one label per face (gradio 3's dropdown takes labels only, the
    event function still gets the face's index) and picking one renders that face."""
    blocks, image, _, _, _ = tab
    photo = event_function(blocks, image, "change")
    _, _, picker, session, *_, status = call(photo, by_component={id(image): photo_payload(three_faces_photo)})
    assert status.startswith("Face 1 of 3"), status
    labels = picker["choices"]
    if gradio_major() < 4:
        assert labels[0] == "face 1 (largest)" and picker["value"] == "face 1 (largest)"
    else:
        assert [value for _, value in labels] == [0, 1, 2] and picker["value"] == 0
    face = photo.outputs[2]
    picked = event_function(blocks, face, "input")
    choice = labels[2] if gradio_major() < 4 else labels[2][1]
    session_state = photo.outputs[3]
    session, *_, status = call(picked, by_component={id(session_state): session, id(face): choice})
    assert status.startswith("Face 3 of 3") and session.face == 2, status
