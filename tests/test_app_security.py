"""The app opens only what it was given (issue 27, item 1): a server path in a ``FileData`` payload is refused.

gradio_client uploads the local file a ``FileData`` payload names, so a client on the server's own
machine seems to read server files through it; a remote caller writes the payload itself. These
tests do that: they speak gradio's queue protocol over HTTP, as the browser does, to every event
that takes a file (the private UI events too), with the app started by ``launch`` and mounted
with ``gr.mount_gradio_app`` (where gradio checks no path at all).
"""

from __future__ import annotations

import itertools
import json
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from portraitgan_hub_space import app, uploads

from portraitgan_hub import PortraitGAN, PortraitGANConfig

#: Component types whose payload is a file; a Dataset (the examples) is sent its index, and tried too.
FILE_TYPES = {"image", "file", "video", "audio", "gallery", "imageslider", "model3d", "imageeditor", "dataset"}
#: The events that take a file, by api_name (the function's name for the UI's private events).
FILE_EVENTS = {"load_example", "photo_changed", "use_reference", "drive", "edit", "landmarks"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def upload_folder(tmp_path_factory) -> Iterator[Path]:
    """A fresh gradio upload folder ($GRADIO_TEMP_DIR) for this module's apps."""
    folder = tmp_path_factory.mktemp("gradio-uploads")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(folder))
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        yield folder


@pytest.fixture(scope="module", params=["launch", "mount"])
def served(request, upload_folder) -> Iterator[tuple[str, str]]:
    """(how, url) of the app with a random-weight model: started by ``launch`` or mounted on FastAPI."""
    torch.manual_seed(0)
    demo = app.build_demo(PortraitGAN(PortraitGANConfig.preset("lite")).eval())
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    if request.param == "launch":
        app.launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True)
        try:
            yield request.param, url
        finally:
            demo.close()
        return
    import fastapi
    import gradio as gr
    import uvicorn

    mounted = gr.mount_gradio_app(fastapi.FastAPI(), demo, path="/")
    server = uvicorn.Server(uvicorn.Config(mounted, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.started, "the mounted app did not start"
        yield request.param, url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class Caller:
    """Runs the app's events by number over gradio's queue protocol, in one browser session."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = uuid.uuid4().hex[:12]
        self.config = httpx.get(f"{url}config", timeout=30).json()
        self.components = {c["id"]: c for c in self.config["components"]}
        self.uploaded: set[str] = set()  # the paths the app handed out for this caller's uploads

    def event(self, name: str) -> dict[str, Any]:
        return next(d for d in self.config["dependencies"] if d["api_name"] == name)

    def inputs(self, dependency: dict[str, Any], file: Any) -> list[Any]:
        """The event's inputs at their defaults, with ``file`` in every file input."""
        data = []
        for component in dependency["inputs"]:
            kind, value = self.components[component]["type"], self.components[component]["props"].get("value")
            data.append(file if kind in FILE_TYPES else value)
        return data

    def complete(self, dependency: dict[str, Any], data: list[Any]) -> dict[str, Any]:
        """Run one event; its ``process_completed`` message."""
        body = {"data": data, "fn_index": dependency["id"], "session_hash": self.session, "event_data": None}
        joined = httpx.post(f"{self.url}gradio_api/queue/join", json=body, timeout=30)
        joined.raise_for_status()
        event_id = joined.json()["event_id"]
        stream = f"{self.url}gradio_api/queue/data?session_hash={self.session}"
        with httpx.stream("GET", stream, timeout=180) as response:
            for line in response.iter_lines():
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("msg") == "process_completed" and message.get("event_id") == event_id:
                    return message
        raise AssertionError(f"event {dependency['api_name']} did not complete")

    def run(self, dependency: dict[str, Any], data: list[Any]) -> tuple[str, Any]:
        """What a caller learns from one event: ``("error", message)`` or ``("ok", output data)``.

        A UI event that reports a failure on the status line and shows no file but the caller's own
        uploads (a failed upload puts the photo being edited back in its box) is an error too.
        """
        message = self.complete(dependency, data)
        output = message.get("output") or {}
        if not message.get("success"):
            return "error", output.get("error")
        data = output.get("data")
        status = [v for v in data if isinstance(v, str) and v.startswith("**Error:** ")]
        if status and file_paths(data) <= self.uploaded:  # a UI event: one line on the status
            return "error", status[-1].removeprefix("**Error:** ")
        return "ok", data

    def upload(self, path: Path) -> dict[str, Any]:
        with path.open("rb") as handle:
            sent = httpx.post(f"{self.url}gradio_api/upload", files=[("files", (path.name, handle))], timeout=30)
        sent.raise_for_status()
        self.uploaded.add(sent.json()[0])
        return file_data(sent.json()[0])


def file_data(path: str) -> dict[str, Any]:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def file_paths(data: Any) -> set[str]:
    """Every ``path`` of a file in an event's output data."""
    if isinstance(data, dict):
        own = {data["path"]} if isinstance(data.get("path"), str) else set()
        return own.union(*(file_paths(value) for value in data.values()))
    if isinstance(data, (list, tuple)):
        return set().union(*(file_paths(value) for value in data))
    return set()


def test_every_file_input_refuses_a_server_path_alike_whether_it_exists_or_not(
    served, london_photo, upload_folder, tmp_path
):
    how, url = served
    caller = Caller(url)
    photo = tmp_path / "server-photo.jpg"  # a server file outside the upload folder
    shutil.copy(london_photo("005", "neutral"), photo)
    planted = upload_folder / how / "photo.jpg"  # inside the upload folder, never uploaded
    planted.parent.mkdir(exist_ok=True)
    shutil.copy(photo, planted)
    (planted.parent / "link.jpg").symlink_to(photo)
    (planted.parent / "dangling.jpg").symlink_to(tmp_path / "missing.jpg")
    pairs = {  # (an existing file, a missing one)
        "outside the upload folder": (photo, tmp_path / "missing.jpg"),
        "in the upload folder, never uploaded": (planted, planted.parent / "missing.jpg"),
        "linked out of the upload folder": (planted.parent / "link.jpg", planted.parent / "dangling.jpg"),
    }
    changed, on_screen = caller.event("photo_changed"), caller.upload(london_photo("001", "smiling"))
    # A photo on screen first: the event gives the portrait box a per-session copy, which gradio does not
    # let the app wrap; the event function checks the path again.
    assert caller.run(changed, caller.inputs(changed, on_screen))[0] == "ok"

    types = caller.components
    events = [d for d in caller.config["dependencies"] if any(types[c]["type"] in FILE_TYPES for c in d["inputs"])]
    assert FILE_EVENTS <= {d["api_name"] for d in events}
    leaks = []
    for dependency, (where, (existing, missing)) in itertools.product(events, pairs.items()):
        answers = []
        for path in (existing, missing):
            if dependency["api_name"] == "use_reference":  # a photo on screen first, so that the reference is read
                assert caller.run(changed, caller.inputs(changed, on_screen))[0] == "ok"
            answers.append(caller.run(dependency, caller.inputs(dependency, file_data(str(path)))))
        label = f"/{dependency['api_name']}, a path {where}"
        if answers[0][0] != "error":
            leaks.append(f"{label}: the server's file was opened: {str(answers[0][1])[:160]}")
        elif answers[0] != answers[1]:
            leaks.append(f"{label}: the answers tell whether the file exists: {answers}")
        elif (how == "mount" or "never uploaded" in where) and answers[0][1] != uploads.NOT_UPLOADED:
            # Outside the upload folder, an app started by launch() has gradio's own check answer first.
            leaks.append(f"{label}: refused with {answers[0][1]!r}, not {uploads.NOT_UPLOADED!r}")
    assert not leaks, "\n".join(leaks)
    assert httpx.get(f"{url}gradio_api/file={photo}", timeout=30).status_code == 403  # nor served as a file


def test_uploads_and_the_examples_still_open(served, london_photo):
    _, url = served
    caller = Caller(url)
    landmarks = caller.event("landmarks")
    answer = caller.run(landmarks, caller.inputs(landmarks, caller.upload(london_photo("005", "neutral"))))
    assert answer[0] == "ok" and len(answer[1][0]["faces"]) == 1
    example = caller.run(caller.event("load_example"), [0])  # what a click on the first example shows
    assert example[0] == "ok"
    shown = example[1][0]["value"]
    changed = caller.event("photo_changed")
    answer = caller.run(changed, caller.inputs(changed, file_data(shown["path"])))
    assert answer[0] == "ok" and answer[1][-1].startswith("1 face"), answer


def test_a_url_given_as_the_image_is_refused_before_anything_is_fetched(served):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(served[1], verbose=False)
    url = handle_file("https://example.invalid/portrait.jpg")  # .invalid never resolves: nothing is fetched
    for endpoint in ("/edit", "/landmarks"):
        with pytest.raises(AppError, match=f"^{uploads.URL_REFUSED}$"):
            client.predict(url, api_name=endpoint)


# --- the same protocol, for what a user's own files do (issue 27, item 8; issue 25, item 2) ------------
def test_a_bad_upload_over_a_photo_puts_the_photo_back_in_its_box(served, london_photo, tmp_path):
    caller = Caller(served[1])
    changed = caller.event("photo_changed")
    photo = caller.upload(london_photo("005", "neutral"))
    assert caller.run(changed, caller.inputs(changed, photo))[0] == "ok"
    renamed = tmp_path / "notes.jpg"
    renamed.write_text("not a picture")
    message = caller.complete(changed, caller.inputs(changed, caller.upload(renamed)))
    assert message["success"], message  # the upload-only check lets the photo's own upload go back
    box, *_, status = message["output"]["data"]
    assert status.startswith("**Error:** cannot read notes.jpg: not an image")
    assert box["path"] == photo["path"]  # the photo being edited, in its box again
    assert file_paths(message["output"]["data"]) == {photo["path"]}  # nothing else: the views stay


def test_a_driving_video_uploaded_to_the_app_is_animated(served, london_photo, tmp_path):
    pytest.importorskip("av")
    from PIL import Image
    from test_animate import write_video

    caller = Caller(served[1])
    changed, drive = caller.event("photo_changed"), caller.event("drive")
    assert caller.run(changed, caller.inputs(changed, caller.upload(london_photo("019", "neutral"))))[0] == "ok"
    video = tmp_path / "driving.mp4"
    face = Image.open(london_photo("005", "neutral")).convert("RGB").resize((320, 320))
    write_video(video, [face, face])
    answer = caller.run(drive, caller.inputs(drive, caller.upload(video)))  # progress tracked in a request
    assert answer[0] == "ok" and answer[1][-1].startswith("Driving video: 2 frames at 8 fps"), answer
    assert {Path(path).name for path in file_paths(answer[1])} == {"019_neutral-driven.mp4"}
