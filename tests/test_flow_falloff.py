"""An edit moves only its own head: the flow fades out before another face, below the jaw into the
neck and through the composition's feather ramp (``portraitgan_hub.flow_falloff``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter

from portraitgan_hub import DEFAULT_MODEL, PortraitGAN
from portraitgan_hub.faces.landmarks import default_detector
from portraitgan_hub.flow_falloff import NECK_FADE, flow_falloff, neighbour_falloff


@pytest.fixture(scope="module")
def demo() -> PortraitGAN:
    return PortraitGAN.from_pretrained(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def cheek_to_cheek(london_photo) -> Image.Image:
    """Two London faces about 25 px apart, cheek to cheek: 005 on the left, 001 pasted over its right
    side with a soft oval around her face."""
    canvas = Image.new("RGB", (1000, 640), (118, 124, 130))
    canvas.paste(Image.open(london_photo("005", "neutral")).convert("RGB"), (0, 0))
    right = Image.open(london_photo("001", "neutral")).convert("RGB").resize((640, 640), Image.Resampling.LANCZOS)
    oval = Image.new("L", right.size, 0)
    ImageDraw.Draw(oval).ellipse((170, 93, 470, 633), fill=255)
    canvas.paste(right, (250, 0), oval.filter(ImageFilter.GaussianBlur(20)))
    return canvas


def _outline_mask(size: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    mask = Image.new("L", size, 0)
    outline = np.concatenate([landmarks[0:17], landmarks[26:16:-1]])
    ImageDraw.Draw(mask).polygon([tuple(p) for p in outline], fill=255)
    return np.asarray(mask) > 0


def _changed(a: Image.Image, b: Image.Image) -> np.ndarray:
    return np.abs(np.asarray(a.convert("RGB"), np.int16) - np.asarray(b.convert("RGB"), np.int16)).max(axis=2)


@pytest.mark.parametrize("face", [0, 1])
def test_rolling_one_of_two_faces_leaves_the_other_untouched(demo, cheek_to_cheek, face):
    faces = demo.face_editor.faces(cheek_to_cheek)
    assert len(faces) == 2
    result = demo.edit(cheek_to_cheek, face=face, roll=-15, smile=1)
    change = _changed(result, cheek_to_cheek)
    other = _outline_mask(cheek_to_cheek.size, faces[1 - face].landmarks)
    own = _outline_mask(cheek_to_cheek.size, faces[face].landmarks)
    # Before the falloff about 3000 of the other face's pixels changed, by up to 126 levels; now at
    # most a few levels along its outline, where the flow's coarse grid interpolates to zero.
    assert change[other].max() <= 12
    assert (change[own] > 20).sum() > 0.2 * own.sum()  # the edited face did turn


def test_a_head_roll_turns_the_head_on_a_smooth_neck(demo, london_photo):
    photo = Image.open(london_photo("001", "neutral")).convert("RGB")
    face = default_detector().detect(photo)[0]
    result = demo.edit(photo, roll=15)
    chin, height = face.landmarks[8, 1], np.ptp(face.landmarks[:, 1])
    neck = _changed(result, photo)[int(chin + 0.1 * height) : int(chin + 0.45 * height)]
    # Before the falloff, 13776 neck pixels changed by more than 20 levels: the neck turned with the
    # head up to the crop's feather ramp, which then showed its edge twice. Now about 400, the
    # curls beside the neck that turn with the head.
    assert (neck > 20).sum() < 1000
    turned = default_detector().detect(result)[0].landmarks
    angle = lambda p: np.degrees(np.arctan2(*(p[45] - p[36])[::-1]))  # noqa: E731 (outer eye corners)
    assert angle(turned) - angle(face.landmarks) == pytest.approx(15, abs=4)


def test_the_falloff_is_one_on_the_face_and_zero_at_the_edge_below_the_neck_and_on_a_neighbour():
    from portraitgan_hub.faces.alignment import template_in_crop

    size, grid = 256, 64
    face = template_in_crop(size, margin=1.0)  # a small face: room for the neck below it
    neighbour = face + np.array([size * 0.4, 0.0])
    weight = (flow_falloff(face, face, size, grid) * neighbour_falloff([neighbour], size, grid))[0, 0].numpy()
    cell = lambda x, y: weight[int(y * grid / size), int(x * grid / size)]  # noqa: E731
    chin, height = face[8], np.ptp(face[:, 1])
    assert cell(*face[30]) == 1.0 and cell(*face[36]) == 1.0  # nose tip, an eye corner
    assert cell(chin[0], chin[1] + NECK_FADE[0] * height) == 1.0
    assert cell(chin[0], chin[1] + (NECK_FADE[1] + 0.05) * height) == 0.0
    assert weight[0].max() == 0.0 and weight[:, 0].max() == 0.0  # the feather ramp
    assert cell(*neighbour[30]) == 0.0 and cell(*neighbour[48]) == 0.0  # its nose and a mouth corner


def test_a_steep_falloff_across_a_large_flow_is_eased_so_the_flow_never_folds():
    from portraitgan_hub.flow_falloff import faded_flow
    from portraitgan_hub.thin_plate_spline import MIN_JACOBIAN, min_jacobian

    grid = 16
    displacement = torch.zeros(1, 2, grid, grid)
    displacement[:, 0] = 0.5  # everything shifts right by a quarter of the crop
    falloff = torch.ones(1, 1, grid, grid)
    falloff[..., grid // 2 :] = 0.0  # a cliff: the shifted half would cover the still half
    assert float(min_jacobian(displacement * falloff, grid).min()) < 0
    faded = faded_flow(displacement, falloff, torch.ones_like(falloff))
    assert float(min_jacobian(faded, grid).min()) >= MIN_JACOBIAN
