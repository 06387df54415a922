"""The app served on 127.0.0.1 and called with gradio_client: stable endpoints, errors, recovery."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from portraitgan_hub_space import app

from portraitgan_hub import PortraitGAN, PortraitGANConfig
from portraitgan_hub.default_model import load_model
from portraitgan_hub.faces.expressions import EXPRESSION_NAMES


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("lite")
    PortraitGAN(PortraitGANConfig.preset("lite")).save_pretrained(folder)  # random weights
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        demo = app.build_demo(load_model(str(folder)))
        port = free_port()
        app.launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True)
        yield f"http://127.0.0.1:{port}/"
        demo.close()


@pytest.fixture(scope="module")
def client(url) -> Client:
    return Client(url, verbose=False, download_files=True)


def test_endpoints_and_their_parameter_names_are_stable(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    edit = [parameter["parameter_name"] for parameter in endpoints["/edit"]["parameters"]]
    assert edit == ["image", "modality", "face", *EXPRESSION_NAMES, "modality_strength", "input_modality", "portrait"]
    defaults = {p["parameter_name"]: p.get("parameter_default") for p in endpoints["/edit"]["parameters"]}
    assert defaults["modality_strength"] == 1.0 and defaults["input_modality"] == "photo"
    assert defaults["portrait"] is False
    assert [p["parameter_name"] for p in endpoints["/landmarks"]["parameters"]] == ["image"]


def test_edit_returns_a_lossless_image_of_the_input_size(client, full_size_photo):
    result = client.predict(handle_file(str(full_size_photo)), smile=0.8, modality="sketch", api_name="/edit")
    with Image.open(result) as edited:
        assert edited.format == "PNG" and edited.size == (1350, 1350)


def test_edit_takes_the_style_strength_the_input_modality_and_the_portrait(client, london_photo):
    photo = handle_file(str(london_photo("005", "neutral")))
    portrait = client.predict(photo, modality="sketch", modality_strength=0.5, portrait=True, api_name="/edit")
    assert Image.open(portrait).size == (512, 512)
    same = client.predict(photo, modality="sketch", input_modality="sketch", api_name="/edit")
    with Image.open(same) as edited, Image.open(london_photo("005", "neutral")) as original:
        assert edited.tobytes() == original.convert("RGB").tobytes()  # sketch -> sketch: nothing asked
    with pytest.raises(AppError, match="greater than maximum value 1"):  # the slider's range
        client.predict(photo, modality_strength=2.0, api_name="/edit")


def test_landmarks_returns_68_points_per_face(client, london_photo):
    faces = client.predict(handle_file(str(london_photo("005", "smiling"))), api_name="/landmarks")
    assert faces["size"] == [640, 640] and len(faces["faces"]) == 1
    assert len(faces["faces"][0]["landmarks"]) == 68


def test_bad_inputs_are_errors_and_the_next_request_succeeds(client, london_photo, tmp_path):
    (tmp_path / "notes.txt").write_text("not a picture")
    Image.new("RGB", (320, 240), (90, 90, 90)).save(tmp_path / "wall.png")
    Image.new("L", (12000, 6000)).save(tmp_path / "bomb.png")  # 70 kB, 72 megapixels
    for name, reason in (("notes.txt", "not an image"), ("wall.png", "no face found"), ("bomb.png", "pixels")):
        with pytest.raises(AppError, match=reason):
            client.predict(handle_file(str(tmp_path / name)), api_name="/edit")
    result = client.predict(handle_file(str(london_photo("005", "neutral"))), api_name="/edit")
    assert Image.open(result).size == (640, 640)


def test_without_a_model_the_app_starts_and_says_how_to_give_one(tmp_path):
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PORTRAITGAN_MODEL": ""}
    command = [
        sys.executable,
        "-m",
        "portraitgan_hub.cli",
        "app",
        "--model",
        str(tmp_path / "missing"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        config = None
        deadline = time.monotonic() + 90
        while config is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as response:
                    config = json.loads(response.read())
            except OSError:
                time.sleep(0.5)
        if config is None:
            server.kill()
            pytest.fail(f"the app did not start: {server.communicate()[0]}")
        banner = [c["props"].get("value") for c in config["components"] if c["props"].get("elem_id") == "model-missing"]
        assert banner and "No model is loaded" in banner[0] and "--model HUB_ID_OR_FOLDER" in banner[0]
        with pytest.raises(AppError, match="No model is loaded"):
            Client(f"http://127.0.0.1:{port}/", verbose=False).predict(handle_file(__file__), api_name="/edit")
    finally:
        server.send_signal(signal.SIGINT)  # like Ctrl-C: gradio closes and Python cleans up its temp files
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_the_app_mounts_as_a_tab_of_another_app_with_its_api(london_photo):
    """build_demo's Blocks rendered inside a host app with two tabs: page and endpoints both work."""
    import gradio as gr

    torch.manual_seed(0)
    portrait = app.build_demo(PortraitGAN(PortraitGANConfig.preset("lite")).eval())
    with gr.Blocks() as host:
        with gr.Tab("Other tool"):
            words = gr.Textbox(label="words")
            shout = gr.Textbox(label="shout")
            words.submit(lambda text: text.upper(), words, shout, api_name="shout")
        with gr.Tab("Portrait"):
            portrait.render()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        port = free_port()
        app.launch(host, host="127.0.0.1", port=port, prevent_thread_lock=True)
        try:
            url = f"http://127.0.0.1:{port}/"
            with urllib.request.urlopen(f"{url}config", timeout=10) as response:
                config = json.loads(response.read())
            ids = {c["props"].get("elem_id") for c in config["components"]}
            assert {"before-after", "slider-smile", "slider-roll", "input-image", "reset"} <= ids
            tabs = [c["props"].get("label") for c in config["components"] if c["type"] == "tabitem"]
            assert tabs == ["Other tool", "Portrait"]
            client = Client(url, verbose=False, download_files=True)
            endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
            assert {"/edit", "/landmarks", "/shout"} <= set(endpoints)
            assert client.predict("hi", api_name="/shout") == "HI"
            faces = client.predict(handle_file(str(london_photo("005", "neutral"))), api_name="/landmarks")
            assert len(faces["faces"]) == 1
            edited = client.predict(handle_file(str(london_photo("005", "neutral"))), roll=8.0, api_name="/edit")
            assert Image.open(edited).size == (640, 640)
        finally:
            host.close()
