"""The edit path photo -> faces -> landmarks -> edited landmarks -> map -> G -> paste back."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from portraitgan_hub import FaceIndexError, NoFaceError, PortraitGAN, PortraitGANConfig
from portraitgan_hub.editing import FaceEditor, align_face, compose, render, render_crop, target_landmarks
from portraitgan_hub.faces.expressions import ExpressionControls
from portraitgan_hub.faces.image_io import load_image
from portraitgan_hub.generator import GeneratorRendering

LITE = PortraitGANConfig.preset("lite")


class ReturnsItsInput(nn.Module):
    """A stand-in generator: G(I | L, c) = I, so the pipeline around it can be checked exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the model a device and dtype

    def forward(self, image, landmark_map, modality, source_landmarks=None, target_landmarks=None):
        return [image]

    def render(self, image, landmark_map, modality, source_landmarks=None, target_landmarks=None):
        return GeneratorRendering([image], image, None, image, None)


@pytest.fixture
def identity_model() -> PortraitGAN:
    model = PortraitGAN(LITE)
    model.generator = ReturnsItsInput()
    return model


@pytest.fixture(scope="module")
def lite_model() -> PortraitGAN:
    torch.manual_seed(0)
    return PortraitGAN(LITE).eval()


def test_identity_generator_leaves_photo_unchanged(identity_model, full_size_photo):
    """A G that redraws every pixel (no mask) as its input: the composition only loses fine detail."""
    original = np.asarray(load_image(full_size_photo), dtype=np.int16)
    aligned = identity_model.face_editor.align(full_size_photo)
    rendering = render(identity_model, aligned, aligned.landmarks.astype(np.float32), "photo")
    edited = np.asarray(compose(aligned.photo, aligned.alignment, rendering), dtype=np.int16)
    assert edited.shape == original.shape
    aligned = identity_model.face_editor.align(full_size_photo)
    footprint = np.asarray(aligned.alignment.to_image(np.array([[0, 0], [255, 0], [0, 255], [255, 255]])))
    left, top = np.floor(footprint.min(0)).astype(int) - 2
    right, bottom = np.ceil(footprint.max(0)).astype(int) + 2
    outside = np.ones(original.shape[:2], bool)
    outside[max(top, 0) : bottom, max(left, 0) : right] = False
    assert outside.any() and np.array_equal(edited[outside], original[outside])  # bit-exact outside
    inside = ~outside
    difference = np.abs(edited[inside] - original[inside])
    # the face area went down to a 256 px crop and back up: only fine detail is lost (~1% of the range)
    assert difference.mean() < 4.0


def test_stages_can_be_called_alone(lite_model, london_photo):
    editor = FaceEditor(lite_model)
    photo = load_image(london_photo("005", "neutral"))
    face = editor.faces(photo)[0]
    aligned = align_face(photo, face, 256)
    assert aligned.crop.size == (256, 256) and aligned.landmarks.shape == (68, 2)
    smiling = target_landmarks(aligned, ExpressionControls(smile=1.0))
    assert not np.allclose(smiling, aligned.landmarks)
    moved = target_landmarks(aligned, moves={30: (128.0, 140.0)})
    assert tuple(moved[30]) == (128.0, 140.0)
    crop = render_crop(lite_model, aligned, smiling, "sketch")
    assert crop.size == (256, 256)


def test_landmarks_change_the_output_and_modality_too(lite_model, london_photo):
    photo = london_photo("001", "smiling")
    base = np.asarray(lite_model.edit(photo), dtype=np.int16)
    assert not np.array_equal(base, np.asarray(lite_model.edit(photo, smile=-1.0), dtype=np.int16))
    assert not np.array_equal(base, np.asarray(lite_model.edit(photo, modality="cartoon"), dtype=np.int16))


def test_second_edit_of_the_same_photo_does_not_detect_again(lite_model, london_photo):
    editor = FaceEditor(lite_model)
    photo = london_photo("005", "smiling")
    editor.edit(photo, smile=0.5)
    editor.edit(photo, eye_open=0.5, modality="sketch")
    editor.edit(load_image(photo), mouth_open=0.3)  # same pixels, another object: still cached
    assert editor.detections == 1
    editor.edit(london_photo("005", "neutral"))
    assert editor.detections == 2


def test_reference_and_explicit_landmarks(identity_model, london_photo):
    subject, reference = london_photo("005", "neutral"), london_photo("001", "smiling")
    editor = identity_model.face_editor
    aligned = editor.align(subject)
    points = editor.align(reference).landmarks
    target = target_landmarks(aligned, reference=points)
    # the reference smiles: its mouth is wider relative to the eyes than the neutral subject's
    width = lambda p: np.linalg.norm(p[54] - p[48]) / np.linalg.norm(p[45] - p[36])
    assert width(target) > width(aligned.landmarks) * 1.05
    explicit = aligned.face.landmarks + np.float32([3.0, 0.0])
    shifted = target_landmarks(aligned, landmarks=explicit)
    assert np.allclose(shifted, aligned.alignment.to_crop(explicit), atol=1e-4)
    assert identity_model.edit(subject, reference=reference).size == load_image(subject).size


def test_bad_inputs_are_typed_errors(identity_model, london_photo, tmp_path):
    with pytest.raises(NoFaceError):
        identity_model.edit(Image.new("RGB", (400, 400), (128, 128, 128)))
    with pytest.raises(FaceIndexError, match="has 1 face"):
        identity_model.edit(london_photo("005", "neutral"), face=1)
    with pytest.raises(ValueError, match="unknown expression control"):
        identity_model.edit(london_photo("005", "neutral"), grin=1.0)
    with pytest.raises(ValueError, match="knows"):
        identity_model.edit(london_photo("005", "neutral"), modality="oil")
