"""The app's event functions called directly (space/app.py Handlers), with a random-weight lite model."""

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image
from portraitgan_hub_space import app

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


def opts(source="photo", target="photo", overlay=False, paste=True, strength=1.0, parts="all", side=1024):
    """The option inputs of a render event, in app.OPTION_NAMES order."""
    return (source, target, overlay, paste, strength, parts, side)


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


def test_paste_back_off_shows_and_downloads_the_edited_aligned_portrait(handlers, london_photo):
    _, _, _, session, *_ = handlers.photo_changed(str(london_photo("005", "neutral")), None, *opts(), *ZEROS)
    session, (before, after), *_rest, status = handlers.rerender(session, *opts(paste=False), *SMILE)
    assert before.size == after.size == (256, 256) and "paste-back off" in status
    with Image.open(handlers.prepare_download(session)["value"]) as png:
        assert png.size == (256, 256)


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
    box, *with_reference = handlers.use_reference(smiling, session, *opts(), *ZEROS)
    assert isinstance(box, SKIP) and with_reference[0].reference is not None and "reference" in with_reference[4]
    assert not np.array_equal(_pixels(with_reference[1][1]), _pixels(original))
    none = handlers.rerender(with_reference[0], *opts(strength=0.0), *ZEROS)
    assert np.array_equal(_pixels(none[1][1]), _pixels(original))  # strength 0: nothing taken
    eyes = handlers.rerender(with_reference[0], *opts(parts="eyes"), *ZEROS)
    assert not np.array_equal(_pixels(eyes[1][1]), _pixels(with_reference[1][1]))
    reset = handlers.reset(with_reference[0], *opts(strength=0.5, parts="eyes"))
    n = len(ZEROS)
    assert reset[:n] == ZEROS and reset[n : n + 3] == (1.0, "all", None)  # sliders, strength, parts, reference
    assert reset[n + 3]["value"] is None and reset[n + 4]["value"] is None  # the GIF and the video go
    assert reset[n + 5].reference is None and np.array_equal(_pixels(reset[n + 6][1]), _pixels(original))
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
    assert failed[1] == app.FAILED_KEY + str(tmp_path / "notes.jpg")
    # gradio repeats the change event, then the emptied box sends one: neither runs, the message stays
    repeated = handlers.photo_changed(str(tmp_path / "notes.jpg"), failed[1], *opts(), *ZEROS)
    assert len(repeated) == 8 and all(isinstance(x, SKIP) for x in repeated)
    after_emptying = handlers.photo_changed(None, failed[1], *opts(), *ZEROS)
    assert after_emptying[1] is None and all(isinstance(x, SKIP) for x in after_emptying[2:])
    assert failed[-1].startswith("**Error:** ") and "notes.jpg: not an image" in failed[-1]
    no_face = handlers.photo_changed(str(tmp_path / "wall.png"), None, *opts(source="sketch"), *ZEROS)[-1]
    assert "no face found in wall.png" in no_face
    assert handlers.animate(None, "MP4", 12, 2.0, *opts(), *ZEROS)[-1] == "**Error:** Upload a portrait first."
    reference = handlers.use_reference(str(tmp_path / "wall.png"), None, *opts(), *ZEROS)
    assert reference[0] is None and reference[-1] == "**Error:** Upload the portrait to edit first."
    skipped = handlers.rerender(None, *opts(), *ZEROS)
    assert len(skipped) == 5 and all(isinstance(output, SKIP) for output in skipped)
    cleared = handlers.photo_changed(None, "/tmp/gradio/abc/face.jpg", *opts(), *ZEROS)  # the user's clear
    assert cleared[2]["visible"] is False and cleared[3] is None and cleared[-1] == app.READY


def test_without_a_model_every_edit_explains_how_to_give_one(london_photo):
    handlers = app.Handlers(None, "the embedded demo checkpoint is not in this installation")
    assert handlers.modalities == ["photo", "sketch", "cartoon"]
    status = handlers.photo_changed(str(london_photo("005", "neutral")), None, *opts(), *ZEROS)[-1]
    assert "portraitgan app --model HUB_ID_OR_FOLDER" in status
    faces = handlers.api_landmarks(str(london_photo("005", "neutral")))  # detection needs no model
    assert faces["size"] == [640, 640] and len(faces["faces"][0]["landmarks"]) == 68


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
