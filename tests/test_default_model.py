"""The demo checkpoint embedded in the package (``DEFAULT_MODEL``): a small safetensors folder that
loads offline, really edits a face, is what the command line and the app use when no model is named,
and carries the card (``model_card.md``) with the evaluation it was exported with.

The photos of tests/assets are of training identities (001, 005), so the edit checks below are
functional checks of the shipped weights, not held-out quality figures: those are in the card.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from portraitgan_hub import DEFAULT_MODEL, PortraitGAN
from portraitgan_hub.cli import main
from portraitgan_hub.default_model import MODEL_ENV, resolve_model_source
from portraitgan_hub.faces.expressions import ExpressionControls
from portraitgan_hub.faces.identity import SAME_PERSON_THRESHOLD, descriptor_distance, face_descriptor
from portraitgan_hub.faces.landmarks import LandmarkDetector
from portraitgan_hub.stages import render, target_landmarks
from train.evaluation.report import markdown
from train.metrics import landmark_nme

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = Path(DEFAULT_MODEL)
CARD = ROOT / "model_card.md"


@pytest.fixture(scope="module")
def model() -> PortraitGAN:
    return PortraitGAN.from_pretrained(DEFAULT_MODEL).eval()


def test_default_model_is_a_small_safetensors_folder():
    names = {path.name for path in MODEL_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "evaluation.json"} <= names
    assert not [name for name in names if name.endswith((".bin", ".pt", ".pth", ".ckpt", ".pkl"))]
    assert sum(path.stat().st_size for path in MODEL_DIR.iterdir()) < 30e6


def test_the_wheel_carries_the_default_model(tmp_path):
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run([*command, str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("portraitgan_hub-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    for file in MODEL_DIR.iterdir():
        assert f"portraitgan_hub/pretrained/{MODEL_DIR.name}/{file.name}" in shipped


def test_default_model_loads_offline_with_generator_weights_only(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(MODEL_ENV, raising=False)
    assert resolve_model_source() == DEFAULT_MODEL
    model = PortraitGAN.from_pretrained(DEFAULT_MODEL)
    from safetensors import safe_open

    with safe_open(MODEL_DIR / "model.safetensors", "pt") as weights:
        stored = set(weights.keys())
    assert stored == set(model.state_dict())  # every tensor is the model's: no optimizer state
    assert model.config.modalities == ["photo", "sketch", "cartoon"]


@pytest.fixture(scope="module")
def smile_edit(model: PortraitGAN, london_photo):
    """The aligned crop, the landmarks asked for by ``smile=1``, the output and its detected face."""
    aligned = model.face_editor.align(london_photo("005", "neutral"))
    wanted = target_landmarks(aligned, ExpressionControls(smile=1.0))
    output = render(model, aligned, wanted, "photo").crop
    found = LandmarkDetector().detect(output)
    assert len(found) == 1  # the output is still one face dlib finds
    return aligned, wanted, output, found[0]


def test_default_model_keeps_the_person(smile_edit):
    """dlib's face-recognition distance between input and output stays under its same-person 0.6."""
    aligned, _, output, face = smile_edit
    distance = descriptor_distance(
        face_descriptor(aligned.crop, aligned.landmarks), face_descriptor(output, face.landmarks)
    )
    assert distance < SAME_PERSON_THRESHOLD


def test_default_model_moves_the_mouth_towards_a_requested_smile(smile_edit):
    aligned, wanted, _, face = smile_edit
    assert landmark_nme(face.landmarks, wanted) < landmark_nme(aligned.landmarks, wanted)


def test_default_model_translates_modality(model, london_photo):
    aligned = model.face_editor.align(london_photo("001", "neutral"))
    photo = np.asarray(render(model, aligned, aligned.landmarks, "photo").crop, dtype=np.float32)
    sketch = np.asarray(render(model, aligned, aligned.landmarks, "sketch").crop, dtype=np.float32)
    saturation = lambda image: float((image.max(axis=2) - image.min(axis=2)).mean())  # noqa: E731
    assert saturation(sketch) < 0.5 * saturation(photo)  # the sketch modality is (nearly) grey


def test_cli_edits_with_the_default_model_when_none_is_named(london_photo, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    out = tmp_path / "smile.png"
    assert main(["edit", str(london_photo("005", "neutral")), "-o", str(out), "--smile", "1"]) == 0
    from PIL import Image

    with Image.open(out) as edited, Image.open(london_photo("005", "neutral")) as original:
        assert edited.size == original.size
        assert np.abs(np.asarray(edited, np.int16) - np.asarray(original.convert("RGB"), np.int16)).max() > 0


def test_the_app_loads_the_default_model_when_none_is_named(model, monkeypatch):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    from portraitgan_hub_space import app

    loaded, problem = app.load_or_explain(None)
    assert problem is None
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)


def test_model_card_is_the_embedded_card_with_hub_metadata():
    card = CARD.read_text(encoding="utf-8")
    assert (MODEL_DIR / "README.md").read_text(encoding="utf-8") == card
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "portraitgan-hub"
    assert front["pipeline_tag"] == "image-to-image"
    assert front["license"]
    recipe = "python train/train.py --config train/configs/demo_london_lite_u.yaml"
    for needed in ("CC-BY 4.0", "DeBruine", "300-W", recipe):
        assert needed in card


def test_model_card_reports_the_shipped_evaluation_unchanged():
    """The card's metric tables are exactly what ``train/evaluate.py`` wrote for these weights."""
    result = json.loads((MODEL_DIR / "evaluation.json").read_text(encoding="utf-8"))
    tables = markdown(result).split("\n## ", 1)[1]  # drop the title line with its local path
    assert tables in CARD.read_text(encoding="utf-8")
    assert re.search(r"neutral.{1,4}smiling", tables)


def _shipped_gates() -> list[dict]:
    return json.loads((MODEL_DIR / "evaluation.json").read_text(encoding="utf-8"))["gates"]


#: Gates of issue #13 that the shipped weights miss, with the measured values (model_card.md, "Against
#: the gates"). A strict xfail each: replacing the weights by ones that pass turns it red until removed.
#: The stage-2 lite-u passes all ten; stage 1 missed the three expression gates (the smile was the warp's).
SHIPPED_GATE_MISSES: dict[str, str] = {}


@pytest.mark.parametrize(
    "gate",
    [
        pytest.param(g["name"], marks=pytest.mark.xfail(strict=True, reason=SHIPPED_GATE_MISSES[g["name"]]))
        if g["name"] in SHIPPED_GATE_MISSES
        else g["name"]
        for g in _shipped_gates()
    ],
)
def test_shipped_evaluation_meets_the_gate(gate: str):
    """Each gate of issue #13 on the 8 held-out people, as ``train/evaluate.py`` recorded it beside the weights."""
    (found,) = [g for g in _shipped_gates() if g["name"] == gate]
    assert found["passed"], f"{found['value']} against {found['threshold']}"


# --- issue #12: whole-picture modality conversion with the shipped weights ----------------------------
@pytest.fixture(scope="module")
def held_out_sketch(model: PortraitGAN, london_photo):
    """A held-out person (019, val split) turned into a sketch: photo, its alignment, the result."""
    from portraitgan_hub.faces.image_io import load_image

    photo = load_image(london_photo("019", "neutral"))
    return photo, model.face_editor.align(photo), model.edit(photo, modality="sketch")


def test_photo_to_sketch_shows_no_crop_edge(held_out_sketch):
    """Brightness just inside and just outside where the face crop's edge lies differ by < 3 levels."""
    from train.metrics import crop_border_step

    _, aligned, sketch = held_out_sketch
    inside, outside = crop_border_step(sketch, aligned.alignment)
    assert abs(inside - outside) < 3.0, (inside, outside)


def test_a_sketch_comes_back_grey(held_out_sketch):
    _, _, sketch = held_out_sketch
    pixels = np.asarray(sketch, dtype=np.int16)
    assert float((pixels.max(axis=2) - pixels.min(axis=2)).mean()) < 3.0


def test_photo_to_sketch_to_photo_keeps_the_person(model, held_out_sketch, capsys):
    """The way back from the sketch (``input_modality="sketch"``) is recognisably the same person."""
    from portraitgan_hub.faces.alignment import warp_to_crop
    from portraitgan_hub.image_tensors import pil_to_tensor
    from train.metrics import ssim

    photo, aligned, sketch = held_out_sketch
    back = model.edit(sketch, input_modality="sketch", modality="photo")
    found = LandmarkDetector().detect(back)
    assert found, "no face found on the photo made back from the sketch"
    distance = descriptor_distance(
        face_descriptor(photo, aligned.face.landmarks), face_descriptor(back, found[0].landmarks)
    )
    crops = [pil_to_tensor(warp_to_crop(image, aligned.alignment)) for image in (back, photo)]
    with capsys.disabled():
        print(f"\nphoto -> sketch -> photo: identity distance {distance:.3f}, SSIM {float(ssim(*crops)[0]):.3f}")
    assert distance < SAME_PERSON_THRESHOLD


def test_modality_strength_goes_monotonically_towards_the_pseudo_target(model, held_out_sketch):
    """0 is the input itself, 1 the full sketch, and the distance to the stylizer's sketch of the whole
    photo falls at every step in between (019, held out: 42.5, 41.6, 16.0, 6.8, 6.4 grey levels; stage 3
    rose to 45.0 at s = 0.25, where it drew a hair-like blot in a background tile)."""
    from train.stylize import get_stylizer

    photo, _, sketch = held_out_sketch
    target = np.asarray(get_stylizer("sketch")(photo), dtype=np.float32)
    assert np.array_equal(np.asarray(model.edit(photo, modality="sketch", modality_strength=0.0)), np.asarray(photo))
    outputs = [model.edit(photo, modality="sketch", modality_strength=s) for s in (0.25, 0.5, 0.75)]
    distances = [float(np.abs(np.asarray(image, np.float32) - target).mean()) for image in [photo, *outputs, sketch]]
    assert all(a > b for a, b in zip(distances, distances[1:], strict=False)), distances
