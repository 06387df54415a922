"""The edit path photo -> faces -> landmarks -> edited landmarks -> map -> G -> paste back."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from portraitgan_hub import FaceIndexError, NoFaceError, PortraitGAN, PortraitGANConfig
from portraitgan_hub.composition import compose
from portraitgan_hub.editor import FaceEditor
from portraitgan_hub.faces.expressions import ExpressionControls
from portraitgan_hub.faces.image_io import load_image
from portraitgan_hub.faces.landmarks import default_detector
from portraitgan_hub.generator import GeneratorOutput
from portraitgan_hub.stages import align_face, render, target_landmarks

LITE = PortraitGANConfig.preset("lite")


class ReturnsItsInput(nn.Module):
    """A stand-in generator: G(I | L, c) = I, so the pipeline around it can be checked exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the model a device and dtype

    def forward(self, image, landmark_map, modality, source_landmarks=None, target_landmarks=None):
        return [image]

    def infer(self, image, landmark_map, modality, source_landmarks=None, target_landmarks=None, source_modality=None):
        return GeneratorOutput([image], image, None, image, None)


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
    crop = render(lite_model, aligned, smiling, "sketch").crop
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


# --- full-resolution composition (issue: warp-guided generator) -----------------------------------
@pytest.fixture(scope="module")
def warp_guided_model() -> PortraitGAN:
    """An untrained warp-guided lite model: its blend mask starts near 1, so it is close to the warp."""
    torch.manual_seed(0)
    return PortraitGAN(PortraitGANConfig.preset("lite", warp_guided=True)).eval()


def _mouth_width(points: np.ndarray) -> float:
    """Mouth corner distance over eye-centre distance: a smile widens it."""
    return float(
        np.linalg.norm(points[54] - points[48]) / np.linalg.norm(points[36:42].mean(0) - points[42:48].mean(0))
    )


def test_no_op_edit_returns_the_photo(warp_guided_model, full_size_photo):
    photo = load_image(full_size_photo)
    assert photo.size == (1350, 1350)
    assert np.array_equal(np.asarray(warp_guided_model.edit(full_size_photo)), np.asarray(photo))
    assert np.array_equal(np.asarray(warp_guided_model.edit(photo, smile=0.0, modality="photo")), np.asarray(photo))


def test_composition_keeps_every_pixel_the_generator_copies(warp_guided_model, full_size_photo):
    """Through the whole composition (no short cut): a G that copies (A = 1) gives the photo back at 1350 px."""
    editor = warp_guided_model.face_editor
    aligned = editor.align(full_size_photo)
    rendering = render(warp_guided_model, aligned, aligned.landmarks.astype(np.float32), "photo")
    copying = type(rendering)(rendering.crop, rendering.colour, torch.ones_like(rendering.mask), rendering.displacement)
    result = np.asarray(compose(aligned.photo, aligned.alignment, copying), dtype=np.int16)
    original = np.asarray(aligned.photo, dtype=np.int16)
    difference = np.abs(result - original)
    assert difference.max() <= 1 and difference.mean() < 0.01


def test_grayscale_photo_stays_grayscale(warp_guided_model, london_photo, tmp_path):
    gray = load_image(london_photo("005", "neutral")).convert("L")
    path = tmp_path / "gray.png"
    gray.save(path)
    for source in (gray, path):
        edited = warp_guided_model.edit(source, smile=1.0)
        assert edited.mode == "L" and edited.size == gray.size
    as_rgb = gray.convert("RGB")  # grey pixels in an RGB file
    pixels = np.asarray(warp_guided_model.edit(as_rgb, smile=1.0), dtype=np.int16)
    assert np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 1], pixels[..., 2])


def test_repeated_no_op_edits_change_nothing(warp_guided_model, london_photo):
    photo = load_image(london_photo("005", "smiling"))
    current = photo
    for _ in range(10):
        current = warp_guided_model.edit(current)
    assert np.array_equal(np.asarray(current), np.asarray(photo))


def test_no_dark_line_where_the_crop_reaches_past_the_photo(identity_model, full_size_photo):
    """A close-up whose face crop extends past the photo: the photo's edge pixels keep their brightness."""
    closeup = load_image(full_size_photo).crop((380, 380, 980, 1080))  # tight around the face
    aligned = identity_model.face_editor.align(closeup)
    corners = aligned.alignment.to_image(np.array([[0.0, 0.0], [255.0, 255.0]]))
    assert corners[0, 0] < 0 and corners[1, 0] > closeup.width  # the crop reaches past both sides
    rendering = render(identity_model, aligned, aligned.landmarks.astype(np.float32), "photo")
    result = np.asarray(compose(aligned.photo, aligned.alignment, rendering), dtype=np.float32)
    original = np.asarray(closeup, dtype=np.float32)
    for strip in (np.s_[:, :2], np.s_[:, -2:], np.s_[-2:, :]):  # left, right and bottom edges
        assert abs(result[strip].mean() - original[strip].mean()) < 1.0


def test_untrained_warp_guided_model_already_widens_the_mouth(warp_guided_model, london_pairs):
    """smile=1 on a real photo: dlib, detecting on the result, finds the mouth clearly wider."""
    detector = default_detector()
    for neutral, _ in london_pairs:
        before = _mouth_width(detector.detect(load_image(neutral))[0].landmarks)
        aligned = warp_guided_model.face_editor.align(neutral)
        asked = _mouth_width(target_landmarks(aligned, ExpressionControls(smile=1.0))) - before
        after = _mouth_width(detector.detect(warp_guided_model.edit(neutral, smile=1.0))[0].landmarks)
        assert asked > 0.05
        assert after - before > 0.5 * asked  # at least half of the requested widening is really there
