"""Animating a photo by a driving video (issue #25): the test writes its own short driving video with PyAV.

The driving video is a London person's neutral photo warped (piecewise affine) to a smile with an
open mouth and back, at 320 px, with two frames of plain grey (no face) in the middle and, in one
test, a tone as its audio track. The subject is another person's photo; the model an untrained
warp-guided lite model, whose blend mask starts near 1, so what it returns is close to the warp.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

from portraitgan_hub import PortraitGAN, PortraitGANConfig
from portraitgan_hub.animate import VideoError, animate, expression_track, read_driving, smooth
from portraitgan_hub.errors import NoFaceError
from portraitgan_hub.faces.expressions import apply_expression, interpolate
from portraitgan_hub.faces.image_io import load_image
from portraitgan_hub.faces.landmarks import default_detector
from train.evaluation.piecewise_affine import piecewise_affine_warp

av = pytest.importorskip("av")

FPS = 8
SIDE = 320
#: How far each frame is along neutral -> open smile; None = a grey frame without a face.
SCHEDULE = [0.0, 0.0, 0.0, 0.5, 1.0, None, None, 1.0, 0.5, 0.0, 0.0, 0.0]


def lip_gap(points: np.ndarray) -> float:
    """Inner-lip gap (points 62 to 66) over the eye-centre distance."""
    eyes = np.linalg.norm(points[36:42].mean(0) - points[42:48].mean(0))
    return float(np.linalg.norm(points[66] - points[62]) / eyes)


def mouth_width(points: np.ndarray) -> float:
    eyes = np.linalg.norm(points[36:42].mean(0) - points[42:48].mean(0))
    return float(np.linalg.norm(points[54] - points[48]) / eyes)


def write_video(path, frames: list[Image.Image], fps: int = FPS, tone: bool = False) -> None:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        sound = container.add_stream("aac", rate=16000) if tone else None
        if sound is not None:
            sound.layout = "mono"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_image(frame)))
        container.mux(stream.encode())
        if sound is not None:
            seconds = len(frames) / fps
            samples = (0.2 * np.sin(2 * np.pi * 440 * np.arange(int(16000 * seconds)) / 16000)).astype(np.float32)
            for start in range(0, len(samples), 1024):
                chunk = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="fltp", layout="mono")
                chunk.sample_rate = 16000
                container.mux(sound.encode(chunk))
            container.mux(sound.encode())


@pytest.fixture(scope="module")
def driving_frames(london_photo) -> list[Image.Image]:
    photo = load_image(london_photo("005", "neutral"))
    neutral = default_detector().detect(photo)[0].landmarks
    opened = apply_expression(neutral, smile=1.2, mouth_open=0.8)
    grey = Image.new("RGB", (SIDE, SIDE), (120, 120, 120))
    frames = []
    for step in SCHEDULE:
        if step is None:
            frames.append(grey)
        else:
            warped = piecewise_affine_warp(photo, neutral, interpolate(neutral, opened, step))
            frames.append(warped.resize((SIDE, SIDE), Image.Resampling.LANCZOS))
    return frames


@pytest.fixture(scope="module")
def driving(driving_frames, tmp_path_factory):
    path = tmp_path_factory.mktemp("driving") / "driving.mp4"
    write_video(path, driving_frames)
    return path


@pytest.fixture(scope="module")
def model() -> PortraitGAN:
    torch.manual_seed(0)
    return PortraitGAN(PortraitGANConfig.preset("lite", warp_guided=True)).eval()


def decoded(path) -> tuple[list[Image.Image], Fraction, bool]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate, has_audio = Fraction(stream.average_rate), bool(container.streams.audio)
        return [frame.to_image() for frame in container.decode(stream)], rate, has_audio


def test_read_driving_finds_the_faces_and_the_frame_rate(driving) -> None:
    track = read_driving(driving, progress=False)
    assert track.landmarks.shape == (len(SCHEDULE), 68, 2) and track.fps == FPS and track.size == (SIDE, SIDE)
    assert track.found.tolist() == [step is not None for step in SCHEDULE]
    gaps = [lip_gap(points) for points, step in zip(track.landmarks, SCHEDULE) if step is not None]
    assert gaps[4] > gaps[0] + 0.1  # the video's mouth opens


def test_gaps_repeat_the_last_expression_and_smoothing_is_zero_phase(driving) -> None:
    track = read_driving(driving, progress=False)
    raw = expression_track(track, smoothing=0)
    assert np.array_equal(raw[5], raw[4]) and np.array_equal(raw[6], raw[4])  # the no-face frames hold frame 4
    steady = np.zeros((9, 2))
    steady[4] = 1.0
    filtered = smooth(steady, 1.0)
    assert filtered.argmax(axis=0).tolist() == [4, 4] and np.allclose(filtered[:, 0], filtered[::-1, 0])  # no lag
    assert np.allclose(smooth(steady, 1.0).sum(axis=0), steady.sum(axis=0))
    with pytest.raises(ValueError, match="smoothing"):
        smooth(steady, -1.0)


def test_animate_writes_every_frame_at_the_driving_rate_and_the_mouth_opens(model, driving, london_photo, tmp_path):
    subject = london_photo("019", "neutral")
    targets = []
    plan = model.face_editor.plan

    def recording_plan(prepared, request):
        targets.append(request.landmarks)  # each frame's target points, photo pixels
        return plan(prepared, request)

    model.face_editor.plan = recording_plan
    try:
        with pytest.warns(UserWarning, match="2 of 12 driving frames had no face"):
            report = animate(model, subject, driving, tmp_path / "out.mp4", progress=False)
    finally:
        del model.face_editor.plan
    frames, rate, has_audio = decoded(report.path)
    assert len(frames) == report.frames == len(SCHEDULE) and rate == FPS == report.fps and not has_audio
    assert report.no_face_frames == 2 and frames[0].size == (640, 640)
    gaps = [lip_gap(points) for points in targets]
    assert gaps[0] == pytest.approx(gaps[-1], abs=0.01) and min(gaps[3:9]) > gaps[0] + 0.05
    assert min(gaps[5], gaps[6]) > gaps[4] - 0.02  # the no-face frames hold the open mouth (smoothed)
    # dlib on the written frames: the mouth is wider where the video smiles (the untrained G mostly warps)
    detector = default_detector()
    widths = [mouth_width(detector.detect(frame)[0].landmarks) for frame in (frames[0], frames[4], frames[-1])]
    assert widths[1] > widths[0] + 0.05 and abs(widths[2] - widths[0]) < 0.03


def test_audio_is_carried_over_unless_refused(model, driving_frames, london_photo, tmp_path) -> None:
    path = tmp_path / "with_tone.mp4"
    write_video(path, driving_frames[:3], tone=True)
    report = animate(model, london_photo("019", "neutral"), path, tmp_path / "out.mp4", progress=False)
    assert report.audio and decoded(report.path)[2]
    silent = animate(model, london_photo("019", "neutral"), path, tmp_path / "mute.mp4", audio=False, progress=False)
    assert not silent.audio and not decoded(silent.path)[2]


def test_bad_inputs_are_clear_errors(model, london_photo, tmp_path) -> None:
    subject = london_photo("019", "neutral")
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("not a video")
    with pytest.raises(VideoError, match="cannot read the driving video notes.mp4"):
        animate(model, subject, not_a_video, tmp_path / "out.mp4", progress=False)
    with pytest.raises(VideoError, match="not found"):
        animate(model, subject, tmp_path / "missing.mp4", tmp_path / "out.mp4", progress=False)
    faceless = tmp_path / "grey.mp4"
    write_video(faceless, [Image.new("RGB", (64, 64), (90, 90, 90))] * 3)
    with pytest.raises(NoFaceError, match="no face was found in any frame"):
        animate(model, subject, faceless, tmp_path / "out.mp4", progress=False)
    with pytest.raises(ValueError, match="output must end in"):
        animate(model, subject, faceless, tmp_path / "out.gif", progress=False)
    with pytest.raises(ValueError, match="reference strength"):
        animate(model, subject, faceless, tmp_path / "out.mp4", strength=3.0, progress=False)
    assert not (tmp_path / "out.mp4").exists()


def test_the_animate_command(driving_frames, london_photo, tmp_path, capsys) -> None:
    from portraitgan_hub.cli import main

    video = tmp_path / "short.mp4"
    write_video(video, driving_frames[:4])
    out = tmp_path / "animated.mp4"
    photo = str(london_photo("019", "neutral"))
    assert main(["animate", photo, "--driving", str(video), "-o", str(out), "--quiet"]) == 0
    assert "wrote 4 frames at 8 fps" in capsys.readouterr().out
    assert len(decoded(out)[0]) == 4
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    assert main(["animate", photo, "--driving", str(tmp_path / "bad.mp4"), "-o", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("portraitgan animate: error: cannot read the driving video bad.mp4") and "\n" not in error
    assert main(["animate", photo, "--driving", str(video), "-o", str(out), "--expression-strength", "9"]) == 2
    assert "--expression-strength: reference strength must be in 0..1.5" in capsys.readouterr().err
