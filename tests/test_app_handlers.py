"""The app's event functions called directly (space/handlers.py Handlers), with a random-weight lite model.
Whole-picture conversion with stand-in generators is in test_app_handlers_whole_picture.py."""

import json

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image
from portraitgan_hub_space import app, file_inputs, messages
from portraitgan_hub_space import session as state

from portraitgan_hub import PortraitGAN, PortraitGANConfig
from portraitgan_hub.faces.expressions import EXPRESSION_NAMES

ZEROS = (0.0,) * len(EXPRESSION_NAMES)
SMILE = (1.0,) + ZEROS[1:]


@pytest.fixture(scope="module")
def model() -> PortraitGAN:
    torch.manual_seed(0)
    return PortraitGAN(PortraitGANConfig.preset("lite")).eval()


@pytest.fixture
def handlers(model) -> app.Handlers:
    return app.Handlers(model)


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def _select(xy) -> gr.SelectData:
    return gr.SelectData(None, {"index": list(xy), "value": None})


def opts(
    source="photo",
    target="photo",
    style=1.0,
    overlay=False,
    view="whole picture",
    strength=1.0,
    parts="all",
    side=1024,
    zoom="whole face",
):
    """The option inputs of a render event, in handlers.OPTION_NAMES order."""
    return (source, target, style, overlay, view, strength, parts, side, zoom)


SKIP = type(gr.skip())


def test_a_photo_is_detected_once_and_slider_moves_only_re_render(handlers, model, london_photo, tmp_path):
    photo = london_photo("005", "neutral")
    detections = model.face_editor.detections
    box, key, picker, session, (before, after), crop, download, status = handlers.photo_changed(
        str(photo), None, *opts(), *ZEROS
    )
    assert isinstance(box, SKIP) and key == str(photo) and picker["visible"] is False
    assert status == "1 face \u00b7 photo, expression only"
    assert after.size == before.size == Image.open(photo).size  # 640 px: under the preview side
    assert crop.size == (512, 512)  # the 256 px crop, zoomed for clicking
    assert download["interactive"] is False  # the PNG comes after the preview
    png = Image.open(handlers.prepare_download(session)["value"])
    assert png.format == "PNG" and png.size == (640, 640)
    assert np.abs(_pixels(png) - _pixels(after)).max() <= 2  # the preview is the same paste back
    smiled = handlers.rerender(session, *opts(target="sketch", overlay=True), *SMILE)
    assert smiled[0].photo is session.photo and smiled[4].startswith("1 face \u00b7 photo \u2192 sketch")
    assert not np.array_equal(_pixels(smiled[1][1]), _pixels(after))
    assert not np.array_equal(_pixels(smiled[1][0]), _pixels(before))  # the landmark overlay
    assert model.face_editor.detections - detections <= 1  # 0 if another test saw the photo first


def test_the_preview_is_sized_to_the_view_and_the_download_is_full_size_with_icc_and_exif(
    handlers, full_size_photo, tmp_path
):
    from PIL import ImageCms

    photo = Image.open(full_size_photo)
    exif = Image.Exif()
    exif[0x010F] = "PortraitGAN test camera"  # Make
    exif[0x0112] = 1
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = tmp_path / "tagged.jpg"
    photo.save(tagged, quality=95, icc_profile=icc, exif=exif.tobytes())
    _, _, _, session, (before, after), *_ = handlers.photo_changed(str(tagged), None, *opts(side=700), *ZEROS)
    assert max(before.size) == max(after.size) == 700  # 1350 px photo, 700 px view
    with Image.open(handlers.prepare_download(session)["value"]) as png:
        assert png.size == (1350, 1350) and png.info.get("icc_profile") == icc
        assert png.getexif().get(0x010F) == "PortraitGAN test camera"
    small = handlers.rerender(session, *opts(side=100000), *ZEROS)[1][1]
    assert max(small.size) == 1280  # at most 1280 px, whatever the browser says


def test_portrait_only_shows_and_downloads_the_aligned_portrait_at_twice_the_model_size(
    handlers, model, full_size_photo
):
    _, _, _, session, *_ = handlers.photo_changed(str(full_size_photo), None, *opts(), *ZEROS)
    view = opts(view="portrait only", overlay=True)
    session, (before, after), *_rest, status = handlers.rerender(session, *view, *SMILE)
    assert before.size == after.size == (512, 512) and "portrait only (512 px)" in status
    with Image.open(handlers.prepare_download(session)["value"]) as png:
        assert png.size == (512, 512)
        download = _pixels(png.convert("RGB"))
    expected = model.edit(str(full_size_photo), smile=1.0, portrait=True)  # the library's portrait
    assert np.abs(download - _pixels(expected)).max() <= 1
    plain = handlers.rerender(session, *opts(view="portrait only"), *SMILE)[1][1]
    assert np.abs(_pixels(plain) - download).mean() < 3  # the preview: the same portrait, from a smaller copy
    with pytest.raises(ValueError, match="'whole picture', 'portrait only'"):
        state.portrait_view("crop")


def test_click_moves_a_landmark_and_undo_restores_the_result(handlers, london_photo):
    photo = str(london_photo("001", "smiling"))
    _, _, _, session, (_, original), *_ = handlers.photo_changed(photo, None, *opts(), *ZEROS)
    chin = session.aligned.landmarks[8] * 2 + 0.5  # crop pixels -> the 2x crop view
    picked = handlers.crop_clicked(_select(chin.round()), session, *opts(), *ZEROS)
    session = picked[0]
    assert session.edits.picked == 8 and picked[1] is not None and "Point 8 picked" in picked[4]
    moved = handlers.crop_clicked(_select(chin.round() + [0, 30]), session, *opts(), *ZEROS)
    session, (_, edited) = moved[0], moved[1]
    assert set(session.edits.moves) == {8} and "1 point(s) moved" in moved[4]
    assert not np.array_equal(_pixels(edited), _pixels(original))
    undone = handlers.undo(session, *opts(), *ZEROS)
    assert undone[0].edits.moves == {} and "Last move undone." in undone[4]
    assert np.array_equal(_pixels(undone[1][1]), _pixels(original))  # rendering is deterministic


def test_reference_strength_parts_reset_and_animation(handlers, london_photo):
    photo = str(london_photo("005", "neutral"))
    _, _, _, session, (_, original), *_ = handlers.photo_changed(photo, None, *opts(), *ZEROS)
    smiling = str(london_photo("005", "smiling"))
    box, *with_reference = handlers.use_reference(smiling, True, session, *opts(), *ZEROS)
    assert isinstance(box, SKIP) and with_reference[: len(ZEROS)] == list(ZEROS)  # the sliders, set to 0
    with_reference = with_reference[len(ZEROS) :]
    assert with_reference[0].reference is not None and "reference" in with_reference[4]
    assert not np.array_equal(_pixels(with_reference[1][1]), _pixels(original))
    none = handlers.rerender(with_reference[0], *opts(strength=0.0), *ZEROS)
    assert np.array_equal(_pixels(none[1][1]), _pixels(original))  # strength 0: nothing taken
    eyes = handlers.rerender(with_reference[0], *opts(parts="eyes"), *ZEROS)
    assert not np.array_equal(_pixels(eyes[1][1]), _pixels(with_reference[1][1]))
    reset = handlers.reset(with_reference[0], *opts(strength=0.5, parts="eyes"))
    n = len(ZEROS)
    assert reset[:n] == ZEROS and reset[n : n + 5] == (1.0, "all", "photo", 1.0, None)  # ..., style, reference
    assert all(update["value"] is None for update in reset[n + 5 : n + 9])  # the GIF and the videos go
    assert reset[n + 9].reference is None and np.array_equal(_pixels(reset[n + 10][1]), _pixels(original))
    gif, video, status = handlers.animate(session, "GIF", 12, 1.0, *opts(target="cartoon"), *SMILE)
    assert video["visible"] is False and "GIF" in status
    with Image.open(gif["value"]) as animation:
        assert animation.n_frames == 10 and max(animation.size) == 512  # 6 rendered, forward and back


def test_animation_as_mp4_with_frame_rate_and_length(handlers, london_photo):
    import av

    _, _, _, session, *_ = handlers.photo_changed(str(london_photo("005", "neutral")), None, *opts(), *ZEROS)
    gif, video, _ = handlers.animate(session, "MP4", 10, 2.0, *opts(), *SMILE)
    assert gif["visible"] is False and video["visible"] is True
    with av.open(video["value"]) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert stream.codec_context.name == "h264" and stream.average_rate == 10
        assert 18 <= frames <= 22 and (stream.width, stream.height) == (512, 512)  # about 2 s at 10 fps
    *_, status = handlers.animate(session, "MP4", 60, 2.0, *opts(), *SMILE)
    assert status.startswith("**Error:** frame rate must be 4..30")


def test_several_faces_show_the_picker_and_another_face_can_be_edited(handlers, london_photo, tmp_path):
    group = Image.new("RGB", (1280, 640), (200, 200, 200))
    group.paste(Image.open(london_photo("001", "smiling")), (0, 0))
    group.paste(Image.open(london_photo("005", "neutral")).resize((480, 480)), (720, 80))
    group.save(tmp_path / "two.png")
    _, _, picker, session, *_ = handlers.photo_changed(str(tmp_path / "two.png"), None, *opts(), *ZEROS)
    assert picker["visible"] is True and picker["choices"] == [("face 1 (largest)", 0), ("face 2 (right)", 1)]
    second = handlers.face_picked(session, 1, *opts(overlay=True), *ZEROS)
    assert second[0].face == 1 and second[4].startswith("Face 2 of 2")


def test_bad_inputs_are_one_status_message_and_nothing_happens_without_a_photo(handlers, tmp_path):
    (tmp_path / "notes.jpg").write_text("not a picture")
    Image.new("RGB", (200, 200), (90, 90, 90)).save(tmp_path / "wall.png")
    failed = handlers.photo_changed(str(tmp_path / "notes.jpg"), None, *opts(), *ZEROS)
    assert failed[0] is None and failed[3] is None  # the box is emptied: no broken image
    assert failed[1] == file_inputs.FAILED_KEY + str(tmp_path / "notes.jpg")
    # gradio repeats the change event, then the emptied box sends one: neither runs, the message stays
    repeated = handlers.photo_changed(str(tmp_path / "notes.jpg"), failed[1], *opts(), *ZEROS)
    assert len(repeated) == 8 and all(isinstance(x, SKIP) for x in repeated)
    after_emptying = handlers.photo_changed(None, failed[1], *opts(), *ZEROS)
    assert after_emptying[1] is None and all(isinstance(x, SKIP) for x in after_emptying[2:])
    assert failed[-1].startswith("**Error:** ") and "notes.jpg: not an image" in failed[-1]
    no_face = handlers.photo_changed(str(tmp_path / "wall.png"), None, *opts(source="sketch"), *ZEROS)[-1]
    assert "no face found in wall.png" in no_face and "converted to a photo either" in no_face
    no_face = handlers.photo_changed(str(tmp_path / "wall.png"), None, *opts(), *ZEROS)[-1]
    assert 'a sketch or a cartoon? Say so under "Input is"' in no_face
    assert handlers.animate(None, "MP4", 12, 2.0, *opts(), *ZEROS)[-1] == "**Error:** Upload a portrait first."
    reference = handlers.use_reference(str(tmp_path / "wall.png"), True, None, *opts(), *ZEROS)
    assert reference[0] is None and reference[-1] == "**Error:** Upload the portrait to edit first."
    skipped = handlers.rerender(None, *opts(), *ZEROS)
    assert len(skipped) == 5 and all(isinstance(output, SKIP) for output in skipped)
    cleared = handlers.photo_changed(None, "/tmp/gradio/abc/face.jpg", *opts(), *ZEROS)  # the user's clear
    assert cleared[2]["visible"] is False and cleared[3] is None and cleared[-1] == messages.READY


def test_without_a_model_every_edit_explains_how_to_give_one(london_photo):
    handlers = app.Handlers(None, "the embedded demo checkpoint is not in this installation")
    assert handlers.modalities == ["photo", "sketch", "cartoon"]
    status = handlers.photo_changed(str(london_photo("005", "neutral")), None, *opts(), *ZEROS)[-1]
    assert "portraitgan app --model HUB_ID_OR_FOLDER" in status
    faces = handlers.api_landmarks(str(london_photo("005", "neutral")))  # detection needs no model
    assert faces["size"] == [640, 640] and len(faces["faces"][0]["landmarks"]) == 68


def test_api_edit_takes_strength_input_modality_and_portrait(handlers, london_photo):
    photo = london_photo("005", "neutral")
    original = _pixels(Image.open(photo).convert("RGB"))
    assert np.array_equal(_pixels(handlers.api_edit(str(photo), "sketch", 0, modality_strength=0.0)), original)
    same = handlers.api_edit(str(photo), "sketch", 0, input_modality="sketch")  # sketch -> sketch: nothing asked
    assert np.array_equal(_pixels(same), original)
    half = handlers.api_edit(str(photo), "sketch", 0, modality_strength=0.5)
    full = handlers.api_edit(str(photo), "sketch")
    assert not np.array_equal(_pixels(half), _pixels(full)) and not np.array_equal(_pixels(half), original)
    assert handlers.api_edit(str(photo), "sketch", 0, portrait=True, smile=0.5).size == (512, 512)
    with pytest.raises(gr.Error, match="modality_strength must be in"):
        handlers.api_edit(str(photo), "sketch", 0, modality_strength=1.5)
    with pytest.raises(gr.Error, match="painting"):
        handlers.api_edit(str(photo), "sketch", 0, input_modality="painting")


def test_api_edit_takes_controls_by_name(handlers, london_photo):
    photo = london_photo("005", "neutral")
    plain = handlers.api_edit(str(photo), "photo")
    smiled = handlers.api_edit(str(photo), "photo", 0, smile=1.0, eye_open=None)
    assert plain.size == smiled.size == (640, 640)
    assert not np.array_equal(_pixels(plain), _pixels(smiled))
    with pytest.raises(gr.Error, match="unknown expression control grin"):
        handlers.api_edit(str(photo), "photo", 0, grin=1.0)
    with pytest.raises(gr.Error, match="face index 3 is out of range"):
        handlers.api_edit(str(photo), "photo", 3)
    with pytest.raises(gr.Error, match=r"roll=.* outside its valid range \[-20, 20\]"):
        handlers.api_edit(str(photo), "photo", 0, roll=45)


def test_uploads_arrive_unpreprocessed_so_unreadable_files_are_messages(handlers, london_photo, tmp_path):
    """Gradio would open uploads with Pillow before the handler and fail with a bare "Error"."""
    import base64

    (tmp_path / "notes.png").write_text("not a picture")
    Image.new("1", (20000, 10000)).save(tmp_path / "bomb.png")  # 200 megapixels in 25 kB
    status = handlers.photo_changed({"path": str(tmp_path / "notes.png")}, None, *opts(), *ZEROS)[-1]
    assert "cannot read notes.png: not an image" in status
    status = handlers.photo_changed({"path": str(tmp_path / "bomb.png")}, None, *opts(), *ZEROS)[-1]
    assert "cannot read bomb.png" in status and "200000000 pixels" in status
    inline = "data:image/jpeg;base64," + base64.b64encode(london_photo("005", "neutral").read_bytes()).decode()
    session = handlers.photo_changed({"path": None, "url": inline}, None, *opts(), *ZEROS)[3]
    assert session.photo.size == (640, 640) and session.name == "portrait"


# --- issue #25 item 5: a reference and the sliders add up --------------------------------------------
def test_taking_a_reference_zeroes_the_sliders_or_says_that_they_add_up(handlers, model, london_photo):
    photo, smiling = str(london_photo("005", "neutral")), str(london_photo("001", "smiling"))
    _, _, _, session, *_ = handlers.photo_changed(photo, None, *opts(), *ZEROS)
    n = len(ZEROS)
    zeroed = handlers.use_reference(smiling, True, session, *opts(), *SMILE)
    assert zeroed[1 : n + 1] == ZEROS and "Expression sliders set to 0." in zeroed[-1]
    assert all(isinstance(out, SKIP) for out in handlers.rerender(zeroed[n + 1], *opts(), *ZEROS))  # on screen
    alone = handlers.rerender(zeroed[n + 1].with_last(None), *opts(), *ZEROS)  # the reference's expression alone
    assert np.array_equal(_pixels(zeroed[n + 2][1]), _pixels(alone[1][1]))
    added = handlers.use_reference(smiling, False, session, *opts(), *SMILE)
    assert all(isinstance(value, SKIP) for value in added[1 : n + 1])  # the sliders stay
    assert "add up" in added[-1] and "doubled grin" in added[-1]
    assert not np.array_equal(_pixels(added[n + 2][1]), _pixels(alone[1][1]))  # reference + smile
    assert "add up" not in handlers.use_reference(smiling, False, session, *opts(), *ZEROS)[-1]
    config = app.build_demo(model).get_config_file()
    named = {c["props"].get("elem_id"): c for c in config["components"]}
    assert "add up" in named["reference-adds"]["props"]["value"] and named["reference-zero"]["props"]["value"] is True
    ids = [c["props"].get("elem_id") for c in config["components"]]
    assert (
        ids.index("reference") < ids.index("reference-adds") < ids.index("reference-zero") < ids.index("use-reference")
    )


# --- issue #27 item 8: a bad upload keeps the photo; Reset returns everything ---------------------------
def test_a_bad_upload_keeps_the_photo_being_edited(handlers, london_photo, tmp_path):
    photo = str(london_photo("005", "neutral"))
    _, key, _, session, *_ = handlers.photo_changed(photo, None, *opts(), *ZEROS)
    (tmp_path / "notes.jpg").write_text("not a picture")  # a text file renamed .jpg
    failed = handlers.photo_changed(str(tmp_path / "notes.jpg"), key, *opts(), *ZEROS)
    assert failed[0] == photo and failed[1] == key  # the box shows the photo again
    assert all(isinstance(value, SKIP) for value in failed[2:7])  # picker, session, views: unchanged
    assert failed[-1].startswith("**Error:** cannot read notes.jpg: not an image") and "\n" not in failed[-1]
    restored = handlers.photo_changed(photo, failed[1], *opts(), *ZEROS)  # the box's change event: nothing to do
    assert all(isinstance(value, SKIP) for value in restored)
    # A photo sent inline (no file to show again): the box is emptied, the photo is still edited.
    inline = {"path": None, "url": "data:image/jpeg;base64,AAAA"}
    inline_key = file_inputs.payload_key(inline)
    failed = handlers.photo_changed(str(tmp_path / "notes.jpg"), inline_key, *opts(), *ZEROS)
    assert failed[0] is None and file_inputs.photo_on_screen(failed[1]) == inline_key
    assert all(isinstance(value, SKIP) for value in failed[2:7])
    emptied = handlers.photo_changed(None, failed[1], *opts(), *ZEROS)
    assert emptied[1] == failed[1] and all(isinstance(value, SKIP) for value in emptied[2:])


def test_a_file_the_browser_refuses_gets_the_one_line_error(model):
    status = file_inputs.refused_file_status
    assert status('{"box": "input-image", "name": "notes.txt"}') == (
        "**Error:** notes.txt is not an image file: upload a photo (JPEG, PNG, WebP, ...)"
    )
    assert "a reference photo" in status('{"box": "reference", "name": "notes.txt"}')
    assert status('{"box": "driving-video", "name": "a.txt"}').startswith("**Error:** a.txt is not a video file")
    odd = status(json.dumps({"box": "input-image", "name": "C:\\x\\<b>*hi*.txt"}))  # last part, escaped
    assert odd.startswith("**Error:** \\<b\\>\\*hi\\*.txt is not an image file")
    assert status("not json").startswith("**Error:** the file is not an image file")
    config = app.build_demo(model).get_config_file()
    named = {c["props"].get("elem_id"): c for c in config["components"]}
    button = named[file_inputs.REFUSED_BUTTON_ID]
    assert button["props"]["visible"] == "hidden"  # in the page, for the script to click, but not shown
    event = next(d for d in config["dependencies"] if button["id"] in [t[0] for t in d["targets"]])
    assert event["js"] == file_inputs.REFUSED_REPORT_JS  # the script's report is the event's input
    assert named["status"]["id"] in event["outputs"]
    scripts = [d["js"] for d in config["dependencies"] if d["js"]]
    assert file_inputs.REFUSED_FILES_JS in scripts  # installed on page load
    for box in file_inputs.FILE_BOXES:  # every box the script watches is on the page
        assert box in named


def test_reset_returns_the_modality_and_the_style_strength_too(handlers, london_photo):
    _, _, _, session, (before, _), *_ = handlers.photo_changed(
        str(london_photo("005", "neutral")), None, *opts(), *ZEROS
    )
    sketched = handlers.rerender(session, *opts(target="sketch", style=0.5), *SMILE)
    assert "photo \u2192 sketch at 50% style" in sketched[4]
    reset = handlers.reset(sketched[0], *opts(target="sketch", style=0.5, strength=0.5, parts="eyes"))
    n = len(ZEROS)
    assert reset[n + 2 : n + 4] == ("photo", 1.0)  # Turn into: the input's own modality; style strength 1
    session, (shown_before, after), *_, status = reset[n + 9 :]
    assert session.last.plan.no_op and np.array_equal(_pixels(after), _pixels(before))  # the uploaded photo
    assert status.startswith("1 face \u00b7 photo, expression only") and "Back to the uploaded photo." in status
    sketch_input = handlers.reset(sketched[0], *opts(source="sketch", target="photo"))
    assert sketch_input[n + 2] == "sketch"  # a sketch upload: back to the sketch as it is
