"""The app's driving-video upload (issue #25, item 2; space/driving.py), its event called directly.

The driving video is written by the test (test_animate.write_video): a London person's neutral photo
warped to an open smile, 4 frames at 8 fps, the third without a face. The model is an untrained
warp-guided lite model, as in test_animate.
"""

from __future__ import annotations

import gradio as gr
import pytest
import torch
from PIL import Image
from portraitgan_hub_space import app, driving

from portraitgan_hub import PortraitGAN, PortraitGANConfig
from portraitgan_hub.faces.expressions import EXPRESSION_NAMES, apply_expression, interpolate
from portraitgan_hub.faces.image_io import load_image
from portraitgan_hub.faces.landmarks import default_detector
from train.evaluation.piecewise_affine import piecewise_affine_warp

av = pytest.importorskip("av")

ZEROS = (0.0,) * len(EXPRESSION_NAMES)
OPTIONS = ("photo", "photo", 1.0, False, "whole picture", 1.0, "all", 1024)
SKIP = type(gr.skip())


@pytest.fixture(scope="module")
def model() -> PortraitGAN:
    torch.manual_seed(0)
    return PortraitGAN(PortraitGANConfig.preset("lite", warp_guided=True)).eval()


@pytest.fixture(scope="module")
def video(london_photo, tmp_path_factory):
    from test_animate import write_video

    photo = load_image(london_photo("005", "neutral"))
    neutral = default_detector().detect(photo)[0].landmarks
    opened = apply_expression(neutral, smile=1.2, mouth_open=0.8)
    frames = [piecewise_affine_warp(photo, neutral, interpolate(neutral, opened, t)).resize((320, 320)) for t in (0, 1)]
    grey = Image.new("RGB", (320, 320), (120, 120, 120))
    path = tmp_path_factory.mktemp("driving") / "driving.mp4"
    write_video(path, [frames[0], frames[1], grey, frames[1]], fps=8)
    return path


class Progress:
    """Records what the event tells gr.Progress."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str | None]] = []

    def __call__(self, fraction: float, desc: str | None = None, **_: object) -> None:
        self.calls.append((fraction, desc))


def test_a_driving_video_animates_the_photo_being_edited_through_the_library(model, video, london_photo, monkeypatch):
    handlers = app.Handlers(model)
    _, _, _, session, *_ = handlers.photo_changed(str(london_photo("019", "neutral")), None, *OPTIONS, *ZEROS)
    calls = []
    library = driving.animate

    def recorded(*args, **kwargs):
        calls.append((args, kwargs))
        return library(*args, **kwargs)

    monkeypatch.setattr(driving, "animate", recorded)
    progress = Progress()
    with pytest.warns(UserWarning, match="1 of 4 driving frames had no face"):  # the library's; the status says so
        shown, download, status = handlers.driving.drive(
            {"path": str(video)}, session, "photo", "sketch", 1.0, 0.8, "mouth", True, progress=progress
        )
    (model_, photo, path, out), options = calls[0]
    assert model_ is model and photo is session.photo and path == str(video)  # the photo being edited
    request = options.pop("request")
    assert options == dict(strength=0.8, parts="mouth", audio=True, progress=True)
    assert (request.face, request.modality, request.input_modality, request.modality_strength) == (
        0,
        "sketch",
        "photo",
        1.0,
    )
    assert progress.calls and progress.calls[0][0] == 0  # then animate's tqdm bars (track_tqdm)
    assert shown["visible"] is True and download["value"] == shown["value"] == str(out) and download["interactive"]
    with av.open(shown["value"]) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 8 and sum(1 for _ in container.decode(stream)) == 4
        assert (stream.width, stream.height) == (640, 640)  # the photo's size
    assert status.startswith("Driving video: 4 frames at 8 fps \u00b7 turned into a sketch")
    assert "1 frame(s) without a face" in status and "\n" not in status
    default = __import__("inspect").signature(handlers.driving.drive).parameters["progress"].default
    assert isinstance(default, gr.Progress) and default.track_tqdm


def test_a_bad_driving_video_is_one_line_and_the_last_result_stays(model, london_photo, tmp_path):
    handlers = app.Handlers(model)
    _, _, _, session, *_ = handlers.photo_changed(str(london_photo("019", "neutral")), None, *OPTIONS, *ZEROS)
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    shown, download, status = handlers.driving.drive(str(notes), session, "photo", "photo", 1.0, 1.0, "all", True)
    assert isinstance(shown, SKIP) and isinstance(download, SKIP)
    assert status.startswith("**Error:** cannot read the driving video notes.mp4") and "\n" not in status
    assert str(tmp_path) not in status  # the name only, not where the upload is kept
    faceless = tmp_path / "grey.mp4"
    from test_animate import write_video

    write_video(faceless, [Image.new("RGB", (64, 64), (90, 90, 90))] * 2)
    status = handlers.driving.drive(str(faceless), session, "photo", "photo", 1.0, 1.0, "all", True)[-1]
    assert status == "**Error:** no face was found in any frame of the driving video"
    assert handlers.driving.drive(None, session, "photo", "photo", 1.0, 1.0, "all", True)[-1] == (
        "**Error:** Upload a driving video first."
    )
    assert handlers.driving.drive(str(faceless), None, "photo", "photo", 1.0, 1.0, "all", True)[-1] == (
        "**Error:** Upload the portrait to animate first."
    )


def test_the_video_takes_input_is_turn_into_and_the_style_strength(model, video, london_photo, monkeypatch):
    handlers = app.Handlers(model)
    _, _, _, session, *_ = handlers.photo_changed(str(london_photo("019", "neutral")), None, *OPTIONS, *ZEROS)
    seen = []

    def recorded(*args, request=None, **kwargs):
        seen.append(request)
        raise ValueError("stop here")

    monkeypatch.setattr(driving, "animate", recorded)
    handlers.driving.drive({"path": str(video)}, session, "sketch", "photo", 0.5, 1.0, "all", True)
    request = seen[-1]
    assert (request.input_modality, request.modality, request.modality_strength) == ("sketch", "photo", 0.5)


def test_the_page_has_the_driving_video_upload_wired_to_the_event(model):
    config = app.build_demo(model).get_config_file()
    by_id = {c["id"]: c for c in config["components"]}
    named = {c["props"].get("elem_id"): c for c in config["components"]}
    assert named["driving-video"]["type"] == "video" and named["driving-video"]["props"]["sources"] == ["upload"]
    event = next(d for d in config["dependencies"] if d["api_name"] == "drive")
    assert by_id[event["inputs"][0]]["props"]["elem_id"] == "driving-video"
    outputs = [by_id[i]["props"].get("elem_id") for i in event["outputs"]]
    assert outputs == ["driven-mp4", "driven-download", "status"]
