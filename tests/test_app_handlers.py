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


def test_a_photo_is_detected_once_and_slider_releases_only_re_render(handlers, model, london_photo):
    photo = london_photo("005", "neutral")
    detections = model.face_editor.detections
    picker, session, (before, after), crop, download, status = handlers.photo_changed(
        str(photo), "photo", "photo", False, *ZEROS
    )
    assert picker["visible"] is False and status == "1 face \u00b7 photo, expression only"
    assert after.size == before.size == Image.open(photo).size
    assert crop.size == (512, 512)  # the 256 px crop, zoomed for clicking
    png = Image.open(download["value"])
    assert png.format == "PNG" and np.array_equal(_pixels(png), _pixels(after))
    smiled = handlers.rerender(session, "photo", "sketch", True, *SMILE)
    assert smiled[0] is session and smiled[4].startswith("1 face \u00b7 photo \u2192 sketch")
    assert not np.array_equal(_pixels(smiled[1][1]), _pixels(after))
    assert not np.array_equal(_pixels(smiled[1][0]), _pixels(before))  # the landmark overlay
    assert model.face_editor.detections - detections <= 1  # 0 if another test saw the photo first


def test_click_moves_a_landmark_and_undo_restores_the_result(handlers, london_photo):
    _, session, (_, original), *_ = handlers.photo_changed(
        str(london_photo("001", "smiling")), "photo", "photo", False, *ZEROS
    )
    chin = session.aligned.landmarks[8] * 2 + 0.5  # crop pixels -> the 2x crop view
    picked = handlers.crop_clicked(_select(chin.round()), session, "photo", "photo", False, *ZEROS)
    session = picked[0]
    assert session.edits.picked == 8 and picked[1] is not None and "Point 8 picked" in picked[4]
    moved = handlers.crop_clicked(_select(chin.round() + [0, 30]), session, "photo", "photo", False, *ZEROS)
    session, (_, edited) = moved[0], moved[1]
    assert set(session.edits.moves) == {8} and "1 point(s) moved" in moved[4]
    assert not np.array_equal(_pixels(edited), _pixels(original))
    undone = handlers.undo(session, "photo", "photo", False, *ZEROS)
    assert undone[0].edits.moves == {} and "Last move undone." in undone[4]
    assert np.array_equal(_pixels(undone[1][1]), _pixels(original))  # rendering is deterministic


def test_reference_expression_reset_and_animation(handlers, london_photo):
    _, session, (_, original), *_ = handlers.photo_changed(
        str(london_photo("005", "neutral")), "photo", "photo", False, *ZEROS
    )
    with_reference = handlers.use_reference(str(london_photo("005", "smiling")), session, "photo", "photo", False,
                                            *ZEROS)
    assert with_reference[0].reference is not None and "reference" in with_reference[4]
    assert not np.array_equal(_pixels(with_reference[1][1]), _pixels(original))
    reset = handlers.reset(with_reference[0], "photo", "photo", False)
    assert reset[: len(ZEROS)] == ZEROS and reset[len(ZEROS)].reference is None
    gif = handlers.animate(session, "cartoon", 4, *SMILE)
    with Image.open(gif) as animation:
        assert animation.n_frames == 6 and max(animation.size) == 512


def test_several_faces_show_the_picker_and_another_face_can_be_edited(handlers, london_photo, tmp_path):
    group = Image.new("RGB", (1280, 640), (200, 200, 200))
    group.paste(Image.open(london_photo("001", "smiling")), (0, 0))
    group.paste(Image.open(london_photo("005", "neutral")).resize((480, 480)), (720, 80))
    group.save(tmp_path / "two.png")
    picker, session, *_ = handlers.photo_changed(str(tmp_path / "two.png"), "photo", "photo", False, *ZEROS)
    assert picker["visible"] is True and [value for _, value in picker["choices"]] == [0, 1]
    second = handlers.face_picked(session, 1, "photo", "photo", True, *ZEROS)
    assert second[0].face == 1 and second[4].startswith("Face 2 of 2")


def test_bad_inputs_are_messages_and_nothing_happens_without_a_photo(handlers, tmp_path):
    (tmp_path / "notes.jpg").write_text("not a picture")
    Image.new("RGB", (200, 200), (90, 90, 90)).save(tmp_path / "wall.png")
    with pytest.raises(gr.Error, match="notes.jpg: not an image"):
        handlers.photo_changed(str(tmp_path / "notes.jpg"), "photo", "photo", False, *ZEROS)
    with pytest.raises(gr.Error, match="no face found in wall.png"):
        handlers.photo_changed(str(tmp_path / "wall.png"), "sketch", "photo", False, *ZEROS)
    with pytest.raises(gr.Error, match="Upload a portrait first"):
        handlers.animate(None, "photo", 8, *ZEROS)
    skipped = handlers.rerender(None, "photo", "photo", False, *ZEROS)
    assert len(skipped) == 5 and all(isinstance(output, type(gr.skip())) for output in skipped)
    cleared = handlers.photo_changed(None, "photo", "photo", False, *ZEROS)
    assert cleared[0]["visible"] is False and cleared[1] is None


def test_without_a_model_every_edit_explains_how_to_give_one(london_photo):
    handlers = app.Handlers(None, "the embedded demo checkpoint is not in this installation")
    assert handlers.modalities == ["photo", "sketch", "cartoon"]
    with pytest.raises(gr.Error, match="portraitgan app --model HUB_ID_OR_FOLDER"):
        handlers.photo_changed(str(london_photo("005", "neutral")), "photo", "photo", False, *ZEROS)
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


def test_uploads_arrive_unpreprocessed_so_unreadable_files_are_messages(handlers, london_photo, tmp_path):
    """Gradio would open uploads with Pillow before the handler and fail with a bare "Error"."""
    import base64

    (tmp_path / "notes.png").write_text("not a picture")
    Image.new("1", (20000, 10000)).save(tmp_path / "bomb.png")  # 200 megapixels in 25 kB
    with pytest.raises(gr.Error, match="cannot read notes.png: not an image"):
        handlers.photo_changed({"path": str(tmp_path / "notes.png")}, "photo", "photo", False, *ZEROS)
    with pytest.raises(gr.Error, match="cannot read bomb.png: .*200000000 pixels"):
        handlers.photo_changed({"path": str(tmp_path / "bomb.png")}, "photo", "photo", False, *ZEROS)
    inline = "data:image/jpeg;base64," + base64.b64encode(london_photo("005", "neutral").read_bytes()).decode()
    session = handlers.photo_changed({"path": None, "url": inline}, "photo", "photo", False, *ZEROS)[1]
    assert session.photo.size == (640, 640) and session.name == "portrait"
