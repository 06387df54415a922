"""The one edit path: the Python API, the CLI, the app's screen (its download) and the app's API
give the same pixels for the same request, because they all build an ``EditRequest`` and call the
one editor (``portraitgan_hub.editor.FaceEditor``)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from portraitgan_hub_space import app

from portraitgan_hub import DEFAULT_MODEL, PortraitGAN
from portraitgan_hub.cli import main
from portraitgan_hub.edit_request import EditRequest
from portraitgan_hub.faces.expressions import EXPRESSION_NAMES, ExpressionControls

SMILE, MOUTH_OPEN = 0.6, 0.3


@pytest.fixture(scope="module")
def demo() -> PortraitGAN:
    return PortraitGAN.from_pretrained(DEFAULT_MODEL)


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_api_cli_app_and_app_api_give_identical_pixels(demo, full_size_photo, tmp_path):
    assert Image.open(full_size_photo).size == (1350, 1350)
    request = EditRequest(
        modality="sketch",
        modality_strength=0.5,
        controls=ExpressionControls(smile=SMILE, mouth_open=MOUTH_OPEN),
    )
    api = demo.edit(full_size_photo, request)
    assert api.size == (1350, 1350)
    assert np.abs(_pixels(api) - _pixels(Image.open(full_size_photo))).max() > 50  # a real edit

    out = tmp_path / "cli.png"
    argv = ["edit", str(full_size_photo), "-o", str(out), "--modality", "sketch", "--strength", "0.5"]
    assert main([*argv, "--smile", str(SMILE), "--mouth-open", str(MOUTH_OPEN)]) == 0
    cli = Image.open(out)

    handlers = app.Handlers(demo)
    values = [{"smile": SMILE, "mouth_open": MOUTH_OPEN}.get(name, 0.0) for name in EXPRESSION_NAMES]
    options = ("photo", "sketch", 0.5, False, "whole picture", 1.0, "all", 1024)
    session = handlers.photo_changed(str(full_size_photo), None, *options, *values)[3]
    screen = Image.open(handlers.prepare_download(session)["value"])
    app_api = handlers.api_edit(
        str(full_size_photo), "sketch", 0, modality_strength=0.5, smile=SMILE, mouth_open=MOUTH_OPEN
    )

    for name, image in (("CLI", cli), ("app download", screen), ("app API", app_api)):
        assert image.size == api.size, name
        assert np.array_equal(_pixels(image), _pixels(api)), f"{name} differs from the Python API"


def test_keyword_options_and_a_request_are_the_same_edit(demo, london_photo):
    photo = london_photo("005", "neutral")
    by_keywords = demo.edit(photo, smile=0.5, output="portrait")
    by_request = demo.edit(photo, EditRequest(controls=ExpressionControls(smile=0.5), output="portrait"))
    assert by_keywords.size == (512, 512) and np.array_equal(_pixels(by_keywords), _pixels(by_request))
    assert np.array_equal(_pixels(demo.edit(photo, smile=0.5, portrait=True)), _pixels(by_request))
    with pytest.raises(TypeError, match="not both"):
        demo.edit(photo, EditRequest(), smile=0.5)
    with pytest.raises(TypeError, match="must be an EditRequest"):
        demo.edit(photo, {"smile": 0.5})


def test_a_request_checks_itself_once_with_the_users_errors():
    with pytest.raises(ValueError, match="modality_strength must be in"):
        EditRequest(modality_strength=2)
    with pytest.raises(TypeError, match="face must be an int"):
        EditRequest(face=1.5)
    with pytest.raises(ValueError, match="output must be one of photo, crop, portrait"):
        EditRequest(output="video")
    with pytest.raises(ValueError, match="unknown expression control grin"):
        EditRequest.from_options(grin=1)
    with pytest.raises(ValueError, match="smile"):
        EditRequest.from_options(smile=9)
    with pytest.raises(ValueError, match="no points for face 2"):
        EditRequest(landmarks=np.zeros((2, 68, 2)), face=2)
    assert EditRequest(landmarks=np.ones((2, 68, 2)) * [[[1.0]], [[2.0]]], face=1).landmarks.max() == 2.0
    assert EditRequest.from_options(paste_back=False).output == "crop"
    request = EditRequest.from_options(smile=0.5, reference_parts=["eyes", "mouth"])
    assert request.controls.smile == 0.5 and request.reference_parts == ("eyes", "mouth")
    with pytest.raises(ValueError, match="modality_strength"):
        request.replace(modality_strength=-1)


def test_a_request_keeps_every_faces_points_and_checks_moves_parts_and_outputs_at_once():
    points = np.ones((2, 68, 2)) * [[[1.0]], [[2.0]]]
    request = EditRequest(landmarks=points, face=0)
    assert request.replace(face=1).landmarks.shape == (2, 68, 2)  # face 1's points are still there
    assert EditRequest(reference_parts=(p for p in ["eyes", "mouth"])).reference_parts == ("eyes", "mouth")
    with pytest.raises(ValueError, match="landmark index must be an integer in 0..67"):
        EditRequest(moves={99: (1.0, 2.0)})
    with pytest.raises(ValueError, match="two finite numbers"):
        EditRequest(moves={30: (float("nan"), 2.0)})
    with pytest.raises(ValueError, match="not both"):
        EditRequest.from_options(output="photo", portrait=True)
    with pytest.raises(ValueError, match="two outputs"):
        EditRequest.from_options(portrait=True, paste_back=False)


def test_the_crop_output_of_a_warp_guided_model_closes_the_eyes_too(demo, london_photo):
    photo = london_photo("005", "neutral")
    crop = np.asarray(demo.edit(photo, eye_open=-1, output="crop"), np.int16)
    portrait = demo.edit(photo, eye_open=-1, output="portrait").resize((256, 256), Image.Resampling.LANCZOS)
    assert crop.shape == (256, 256, 3)
    eyes = demo.face_editor.align(photo).landmarks[36:48]
    (x0, y0), (x1, y1) = np.floor(eyes.min(0)).astype(int) - 4, np.ceil(eyes.max(0)).astype(int) + 4
    box = (slice(y0, y1), slice(x0, x1))
    # G's own crop keeps the eyes open: 13 levels from the portrait there; the composed crop 1.3.
    assert np.abs(crop[box] - np.asarray(portrait, np.int16)[box]).mean() < 4
