"""The Stable Diffusion WebUI extension's Extras-tab script and REST routes, in the fake host.

The Extras tab's postprocessing script runs on a 1350 px RGBA photo as the host runs it (its UI built,
its arguments by position or by name as ``/sdapi/v1/extra-single-image`` passes them); the REST routes
are added to a bare FastAPI app by the app-started callback and called with FastAPI's TestClient.
The fixtures are in tests/webui_extension_fixtures.py.

These run under gradio 6 here and under the hosts' gradio 3.41.2 and 4.40.0 in the venvs of
tests/webui_host/make_venvs.sh.
"""

import base64
import io
import logging

import numpy as np
import pytest
import webui_extension_fixtures as fixtures
from PIL import Image
from webui_extension_fixtures import b64, colour_change, extras_args

# The shared fixtures this module uses, bound here so that pytest finds them by name.
host = fixtures.host
settings = fixtures.settings
extras = fixtures.extras
client = fixtures.client
rgba_photo = fixtures.rgba_photo


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
