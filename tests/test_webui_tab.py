"""The PortraitGAN tab of the Stable Diffusion WebUI extension (``on_ui_tabs``), in the fake host.

The tab is built by the host's UI callback and its event functions are called as gradio calls them
(the functions the Blocks registered, with what the browser sends); the host's own page with the
"Send to" buttons is the fake ``modules/ui.py``. A real browser drives the served tab in
tests/test_webui_browser.py. The fixtures are in tests/webui_extension_fixtures.py.

These run under gradio 6 here and under the hosts' gradio 3.41.2 and 4.40.0 in the venvs of
tests/webui_host/make_venvs.sh.
"""

import base64
import importlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import webui_extension_fixtures as fixtures
from PIL import Image
from webui_extension_fixtures import ROOT

# The shared fixtures this module uses, bound here so that pytest finds them by name.
host = fixtures.host
settings = fixtures.settings

# --- the PortraitGAN tab ---------------------------------------------------------------------------


def gradio_major() -> int:
    """The major version of the gradio these tests run under."""
    import gradio as gr

    return int(gr.__version__.split(".")[0])


def event_function(blocks: Any, component: Any, event: str) -> Any:
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


def named_function(blocks: Any, name: str) -> Any:
    """The first of ``blocks``' functions named ``name``."""
    fns = list(blocks.fns.values()) if isinstance(blocks.fns, dict) else list(blocks.fns)
    return next(f for f in fns if getattr(f.fn, "__name__", "") == name)


def photo_payload(path: Path) -> str | dict:
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


def call(block_fn: Any, by_component: dict) -> Any:
    """``block_fn.fn`` with its inputs' values: each input component's own value, or the one
    ``by_component`` gives (``{id(component): value}``)."""
    values = [by_component.get(id(c), getattr(c, "value", None)) for c in block_fn.inputs]
    return block_fn.fn(*values)


@pytest.fixture(scope="module")
def tab(host: fixtures.Host) -> tuple:
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


def _pair(value: Any) -> tuple:
    """(before, after) PIL images of the before/after view's value: a gallery's captioned list in
    gradio 3, JPEG files in gradio 4 (what gradio_imageslider sends as they are)."""
    if isinstance(value, list):
        value = [item[0] if isinstance(item, tuple) else item for item in value]
    before, after = (Image.open(v) if isinstance(v, str) else v for v in value)
    return before, after


def dependencies(blocks: Any) -> list[dict]:
    """Every event of ``blocks``, in order, as ``{"fn": its function's name, "targets": [(component id,
    event)], "js", "trigger_mode", "after": the index of the event it follows, "outputs": [ids]}``
    (gradio 3 keeps all but the function in ``blocks.dependencies``, and has no trigger_mode)."""
    fns = list(blocks.fns.values()) if isinstance(blocks.fns, dict) else list(blocks.fns)
    found = []
    for index, block_fn in enumerate(fns):
        name = getattr(block_fn.fn, "__name__", None)
        if gradio_major() < 4:
            dependency = blocks.dependencies[index]
            # a page-load event has no target there
            targets = [(target, dependency["trigger"]) for target in dependency["targets"] or [None]]
            js, mode, after, outputs = dependency["js"], None, dependency["trigger_after"], dependency["outputs"]
        else:
            targets, js, mode = [tuple(t) for t in block_fn.targets], block_fn.js, block_fn.trigger_mode
            after, outputs = block_fn.trigger_after, [c._id for c in block_fn.outputs]
            after = None if after is None else [f._id for f in fns].index(after)
        found.append(dict(fn=name, targets=targets, js=js, trigger_mode=mode, after=after, outputs=list(outputs)))
    return found


def test_a_slider_move_renders_once_and_the_preview_takes_the_views_size(host, tab):
    """What the browser test checks in Chromium (tests/test_webui_browser.py), as the tab is wired:
    under 4.40 a slider renders on its input events, one job waiting at most, and no js function
    (one would skip the trigger_mode; javascript/portraitgan.js holds a drag's steps back); under
    3.41 each input event's job is followed by a second render, of the slider's value then (3.41
    drops an event while its job is on), and the download follows that one; gradio 6 (the app's)
    renders on release. On page load the preview size is set from the view's width."""
    blocks = tab[0]
    ids = {getattr(b, "elem_id", None): b._id for b in blocks.blocks.values()}
    events = dependencies(blocks)
    smile = ids["portraitgan-slider-smile"]
    on_smile = [e for e in events if any(target == smile for target, _ in e["targets"])]
    moved = [e for e in on_smile if ("input" in {kind for _, kind in e["targets"]})]
    assert len(moved) == 1 and moved[0]["fn"] == "rerender", on_smile
    follows = lambda event: [e for e in events if e["after"] == events.index(event)]  # noqa: E731
    if gradio_major() == 4:
        assert moved[0]["js"] is None and moved[0]["trigger_mode"] == "always_last"
        assert [e["fn"] for e in follows(moved[0])] == ["prepare_download"]
    elif gradio_major() < 4:
        [again] = follows(moved[0])
        assert again["fn"] == "rerender" and again["js"] is None and again["outputs"] == moved[0]["outputs"]
        assert [e["fn"] for e in follows(again)] == ["prepare_download"]
    else:
        assert {kind for e in on_smile for _, kind in e["targets"]} == {"input", "release"}
    [load] = [e for e in events if any(kind == "load" for _, kind in e["targets"])]
    assert load["outputs"] == [ids["portraitgan-preview-side"]] and "#portraitgan-before-after" in load["js"]
    # The preview side the page asks for, at most the default preview (1024 px) whatever the screen.
    default_side = importlib.import_module("portraitgan_hub_space.session").DEFAULT_PREVIEW_SIDE
    asked = preview_side_asked(load["js"])
    assert asked(view=700, column=700, window=1400, ratio=1) == 700
    assert asked(view=700, column=700, window=1400, ratio=2) == default_side  # HiDPI: 1400 asked before
    assert asked(view=0, column=0, window=1400, ratio=1) == 700  # the tab not shown yet: half the window
    assert asked(view=0, column=0, window=2560, ratio=2) == default_side
    assert asked(view=0, column=0, window=390, ratio=3) == default_side  # a phone: 1280 asked before
    assert asked(view=0, column=0, window=600, ratio=1) == 600  # columns stacked: the whole width
    assert asked(view=0, column=500, window=1400, ratio=1) == 500  # the result column's own width


def preview_side_asked(script: str):
    """``asked(view, column, window, ratio)``: what the tab's page-load ``script`` (a JS function)
    returns in node, the before/after view, the result column and the window ``view``, ``column`` and
    ``window`` CSS px wide (the columns stack at 720 px and below, as style.css), ``devicePixelRatio``
    ``ratio``. Skips where no node is installed."""
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("no node to run the tab's page-load script")

    def asked(view: int, column: int, window: int, ratio: float) -> int:
        page = f"""
          const widths = {{'#portraitgan-before-after': {view}, '#portraitgan-result-col': {column}}};
          globalThis.document = {{querySelector: s => (s in widths ? {{clientWidth: widths[s]}} : null)}};
          globalThis.innerWidth = {window};
          globalThis.window = {{devicePixelRatio: {ratio}, matchMedia: q => ({{matches: {window} <= 720}})}};
          process.stdout.write(String(({script})()));
        """
        return int(subprocess.run([node, "-e", page], capture_output=True, text=True, check=True, timeout=30).stdout)

    return asked


def test_the_tabs_page_script_and_style_sheet_name_the_tabs_own_elements(tab):
    """javascript/portraitgan.js and style.css (which the host puts into its page) select the tab's
    elements by elem_id: each id they name is one of the tab's, and the result column is sticky."""
    import re

    blocks = tab[0]
    elem_ids = {getattr(b, "elem_id", None) for b in blocks.blocks.values()}
    script, sheet = (ROOT / "javascript" / "portraitgan.js").read_text(), (ROOT / "style.css").read_text()
    named = set(re.findall(r"#(portraitgan-[\w-]+)", script + sheet))
    assert "portraitgan-editor" in named and "portraitgan-result-col" in named
    assert named <= elem_ids, named - elem_ids
    sticky = re.search(r"#portraitgan-result-col\s*\{([^}]*)\}", sheet).group(1)
    assert "position: sticky" in sticky and "top: 0" in sticky


def test_the_before_after_pictures_go_to_the_browser_as_jpeg(host, tab, full_size_photo):
    """gradio 4's ImageSlider would write WebP and gradio 3's Gallery PNG (twice: once to name the file
    by its hash); the tab's before/after view sends JPEG under both (compat.before_after)."""
    blocks, image, *_ = tab
    photo = event_function(blocks, image, "change")
    pair = call(photo, by_component={id(image): photo_payload(full_size_photo)})[4]
    view = photo.outputs[4]
    assert view.elem_id == "portraitgan-before-after"
    sent = str(view.postprocess(pair))
    assert sent.count(".jpeg") >= 2 and ".png" not in sent and ".webp" not in sent, sent[:300]


def test_a_numpy_before_after_pair_goes_to_the_browser_as_jpeg(host, tab):
    """A pair of numpy images (uint8, H x W x 3) through the before/after view's postprocess: gradio
    3.41's Gallery writes one with ``img_array_to_temp_file``, which calls ``pil_to_temp_file(image,
    dir, format="png")`` with ``dir`` by position (the JPEG patch took it by name only and raised
    TypeError); gradio 4's ImageSlider takes it as it is."""
    blocks = tab[0]
    [view] = [b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "portraitgan-before-after"]
    rows = np.linspace(0, 255, 64, dtype=np.uint8)[:, None, None]
    before = np.broadcast_to(rows, (64, 48, 3)).copy()
    after = 255 - before
    sent = str(view.postprocess((before, after)))
    if gradio_major() < 4:
        assert sent.count(".jpeg") == 2 and ".png" not in sent, sent[:300]
    else:
        assert sent.count(".jpeg") + sent.count(".webp") + sent.count(".png") >= 2, sent[:300]


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
    monkeypatch.setattr(host.module.tab, "load_space", lambda: (_ for _ in ()).throw(ImportError("no gradio_client")))
    [(blocks, title, _)] = host.module.tab.on_ui_tabs()
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
