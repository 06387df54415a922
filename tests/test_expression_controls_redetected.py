"""The LivePortrait-style controls (mouth shapes, head roll, reference strength and parts, paste-back)
checked the way a user would: render the edit, run dlib on the result, and measure the change.

The picture is made by :func:`warp_guided_render`: an untrained warp-guided lite model (its blend mask
starts near 1, so it follows the landmarks through its thin-plate-spline warp) renders the edit, composed
at the photo's resolution exactly as ``model.edit`` does. It needs no trained model, so the test checks
the controls (target landmarks) and the warp-guided edit path, not how well some checkpoint draws.
Every check takes the image-producing function as its one ``render`` parameter.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from portraitgan_hub import PortraitGAN, PortraitGANConfig
from portraitgan_hub.cli import main
from portraitgan_hub.composition import compose
from portraitgan_hub.faces.expressions import ExpressionControls
from portraitgan_hub.faces.image_io import load_image
from portraitgan_hub.faces.landmarks import default_detector
from portraitgan_hub.stages import AlignedFace, align_face, render, target_landmarks

#: (aligned face, target landmarks in crop pixels) -> the full photo showing that edit.
Render = Callable[[AlignedFace, np.ndarray], "object"]


_WARP_GUIDED: list[PortraitGAN] = []


def warp_guided_render(aligned: AlignedFace, target: np.ndarray):
    """The full photo with the edit to ``target`` (crop pixels) by an untrained warp-guided model."""
    if not _WARP_GUIDED:
        torch.manual_seed(0)
        _WARP_GUIDED.append(PortraitGAN(PortraitGANConfig.preset("lite", warp_guided=True)).eval())
    model = _WARP_GUIDED[0]
    return compose(aligned.photo, aligned.alignment, render(model, aligned, target, "photo"))


def detected_after(
    photo_path, render: Render = warp_guided_render, reference_path=None, **edit
) -> dict[str, np.ndarray]:
    """Landmarks (photo pixels) found by dlib before the edit, asked for by it, and found after it."""
    photo = load_image(photo_path)
    detector = default_detector()
    aligned = align_face(photo, detector.detect(photo)[0], 256)
    reference = None
    if reference_path is not None:
        picture = load_image(reference_path)
        reference = align_face(picture, detector.detect(picture)[0], 256).landmarks
    strength = edit.pop("reference_strength", 1.0)
    parts = edit.pop("reference_parts", "all")
    target = target_landmarks(
        aligned, ExpressionControls(**edit), reference=reference, reference_strength=strength, reference_parts=parts
    )
    faces = detector.detect(render(aligned, target))
    assert faces, "dlib found no face in the edited picture"
    return {"before": aligned.face.landmarks, "asked": aligned.alignment.to_image(target), "after": faces[0].landmarks}


def _eye_distance(points: np.ndarray) -> float:
    return float(np.hypot(*(points[42:48].mean(0) - points[36:42].mean(0))))


def mouth_width(points: np.ndarray) -> float:
    """Corner to corner, in eye distances."""
    return float(np.hypot(*(points[54] - points[48]))) / _eye_distance(points)


def mouth_gap(points: np.ndarray) -> float:
    """Inner lip gap (mean of the three pairs), in eye distances."""
    return float(np.mean([np.hypot(*(points[b] - points[a])) for a, b in ((61, 67), (62, 66), (63, 65))])) / (
        _eye_distance(points)
    )


def corner_lift(points: np.ndarray) -> float:
    """How far the mouth corners sit above the lip centre (a smile raises them), in eye distances."""
    return float((points[51, 1] + points[57, 1]) / 2 - (points[48, 1] + points[54, 1]) / 2) / _eye_distance(points)


def eye_line_degrees(points: np.ndarray) -> float:
    """Angle of the line from the right eye centre to the left (picture left to right), y down."""
    d = points[42:48].mean(0) - points[36:42].mean(0)
    return float(np.degrees(np.arctan2(d[1], d[0])))


def assert_followed(found: dict[str, np.ndarray], measure, at_least: float = 0.5) -> float:
    """The re-detected change has the asked change's sign and at least ``at_least`` of its size."""
    asked = measure(found["asked"]) - measure(found["before"])
    seen = measure(found["after"]) - measure(found["before"])
    assert abs(asked) > 1e-3, "the control asked for no change"
    assert np.sign(seen) == np.sign(asked) and abs(seen) >= at_least * abs(asked), (asked, seen)
    return seen


@pytest.mark.parametrize(
    "control, measure, sign",
    [
        ("aaa", mouth_gap, 1),
        ("eee", mouth_width, 1),
        ("woo", mouth_width, -1),
    ],
)
def test_mouth_shapes_are_found_again_by_dlib(london_photo, control, measure, sign):
    found = detected_after(london_photo("005", "neutral"), **{control: 1.0})
    assert np.sign(assert_followed(found, measure)) == sign


def test_woo_is_rounder_than_eee(london_photo):
    """Height over width of the inner mouth: an "o" is round, an "e" is a slit."""
    shape = lambda points: mouth_gap(points) / mouth_width(points)
    woo = detected_after(london_photo("005", "neutral"), woo=1.2)["after"]
    eee = detected_after(london_photo("005", "neutral"), eee=1.2)["after"]
    assert shape(woo) > 1.5 * shape(eee)


@pytest.mark.parametrize("degrees", [10.0, -15.0])
def test_head_roll_turns_the_eye_line_by_the_asked_angle(london_photo, degrees):
    found = detected_after(london_photo("005", "neutral"), roll=degrees)
    turned = eye_line_degrees(found["after"]) - eye_line_degrees(found["before"])
    assert turned == pytest.approx(degrees, abs=2.5)


def test_roll_beyond_20_degrees_is_refused():
    with pytest.raises(ValueError, match=r"roll=.* outside its valid range \[-20, 20\]"):
        ExpressionControls(roll=25)


def test_reference_strength_scales_and_parts_limit_the_taken_expression(london_photo):
    photo, smiling = london_photo("001", "neutral"), london_photo("001", "smiling")
    full = detected_after(photo, reference_path=smiling, reference_strength=1.0, reference_parts="mouth")
    half = detected_after(photo, reference_path=smiling, reference_strength=0.5, reference_parts="mouth")
    eyes_only = detected_after(photo, reference_path=smiling, reference_parts="eyes")
    gain = assert_followed(full, corner_lift)
    assert gain > 0  # the reference smiles: its mouth corners are up
    assert 0.25 * gain < corner_lift(half["after"]) - corner_lift(half["before"]) < 0.8 * gain
    untouched = corner_lift(eyes_only["after"]) - corner_lift(eyes_only["before"])
    assert abs(untouched) < 0.3 * gain
    assert np.allclose(eyes_only["asked"][48:68], eyes_only["before"][48:68], atol=1e-3)  # asked: mouth kept


def test_reference_strength_and_parts_are_checked(london_photo):
    aligned_points = np.zeros((68, 2)) + np.arange(68)[:, None]
    from portraitgan_hub.faces.expression_transfer import transfer_expression

    with pytest.raises(ValueError, match=r"reference strength must be in 0..1.5"):
        transfer_expression(aligned_points, aligned_points, strength=2.0)
    with pytest.raises(ValueError, match="unknown reference part.* nose; valid: eyes, brows, mouth, all"):
        transfer_expression(aligned_points, aligned_points, parts="eyes,nose")


class ReturnsItsInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, image, landmark_map, modality, source_landmarks=None, target_landmarks=None):
        return [image]

    def infer(self, image, landmark_map, modality, source_landmarks=None, target_landmarks=None, source_modality=None):
        from portraitgan_hub.generator import GeneratorOutput

        return GeneratorOutput([image], image, None, image, None)


def test_edit_takes_every_new_control_and_the_paste_back_switch(london_photo):
    model = PortraitGAN(PortraitGANConfig.preset("lite"))
    model.generator = ReturnsItsInput()
    photo = london_photo("005", "neutral")
    whole = model.edit(
        photo,
        aaa=0.5,
        eee=0.2,
        woo=0.1,
        roll=5,
        reference=london_photo("005", "smiling"),
        reference_strength=0.7,
        reference_parts=["eyes", "mouth"],
    )
    assert whole.size == (640, 640)
    crop = model.edit(photo, smile=0.5, paste_back=False)
    assert crop.size == (256, 256)  # the edited aligned portrait
    aligned = model.face_editor.align(photo)
    assert np.abs(np.asarray(crop, np.int16) - np.asarray(aligned.crop, np.int16)).max() <= 1  # G = identity
    with pytest.raises(ValueError, match="reference strength"):
        model.edit(photo, reference=photo, reference_strength=-0.1)


def test_cli_passes_the_new_options_to_edit(london_photo, tmp_path, monkeypatch):
    seen = {}

    def fake_edit(self, photo, request=None, **kwargs):
        seen["request"] = request
        return load_image(photo)

    monkeypatch.setattr(PortraitGAN, "edit", fake_edit)
    folder = tmp_path / "model"
    PortraitGAN(PortraitGANConfig.preset("lite")).save_pretrained(folder)
    out = tmp_path / "out.png"
    code = main(
        [
            "edit",
            str(london_photo("005", "neutral")),
            "-o",
            str(out),
            "--model",
            str(folder),
            "--aaa",
            "0.5",
            "--woo",
            "0.2",
            "--roll",
            "10",
            "--reference",
            str(london_photo("005", "smiling")),
            "--reference-strength",
            "0.8",
            "--reference-parts",
            "eyes,mouth",
            "--no-paste-back",
        ]
    )
    assert code == 0 and out.is_file()
    request = seen["request"]
    assert request.controls.aaa == 0.5 and request.controls.woo == 0.2 and request.controls.roll == 10.0
    assert request.reference_strength == 0.8 and request.reference_parts == "eyes,mouth"
    assert request.output == "crop"  # --no-paste-back
