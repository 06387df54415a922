"""Issue #12's edit-time parts with stand-in generators: whole-picture conversion in tiles, the
modality condition and its strength, the portrait, grey modalities, and landmarks found through the
model's own cycle for a stylized input. (The trained model's figures are in test_default_model.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from portraitgan_hub import NoFaceError, PortraitGAN, PortraitGANConfig
from portraitgan_hub.conversion import convert_picture, tile_starts
from portraitgan_hub.editor import FaceEditor
from portraitgan_hub.faces.image_io import load_image
from portraitgan_hub.faces.landmarks import default_detector
from portraitgan_hub.generator import GeneratorOutput
from portraitgan_hub.stages import changes_modality, is_no_op, modality_condition

LITE = PortraitGANConfig.preset("lite")
#: The colour the stand-in G paints for each modality (photo, sketch, cartoon), in [-1, 1].
PAINT = torch.tensor([[0.0, 0.0, 0.0], [0.6, 0.2, -0.2], [-0.4, 0.3, 0.5]])


class PaintsByCondition(nn.Module):
    """G(I | L, c): colour = c @ PAINT everywhere, mask A = c[photo] (copies the input where c is a photo).
    Records every call's landmark maps and conditions."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def infer(self, image, landmark_map, modality, source_landmarks=None, target_landmarks=None, source_modality=None):
        weights = modality if modality.is_floating_point() else nn.functional.one_hot(modality, 3).float()
        self.calls.append((landmark_map.clone(), weights.clone()))
        colour = (weights @ PAINT)[:, :, None, None].expand_as(image)
        mask = weights[:, :1, None, None].expand(-1, 1, *image.shape[-2:]).clone()
        out = mask * image + (1 - mask) * colour
        return GeneratorOutput([out], colour, mask, image, None)


@pytest.fixture
def painter() -> PortraitGAN:
    model = PortraitGAN(LITE)
    model.generator = PaintsByCondition()
    return model


def test_tiles_cover_the_side_with_the_overlap() -> None:
    assert tile_starts(200, 256, 64) == [0]
    for length in (256, 257, 400, 1000):
        starts = tile_starts(length, 256, 64)
        assert starts[0] == 0 and starts[-1] + 256 == length
        assert all(b - a <= 256 - 64 for a, b in zip(starts, starts[1:], strict=False))


def test_modality_condition_is_the_convex_combination() -> None:
    model = PortraitGAN(LITE)
    assert torch.equal(modality_condition(model, "sketch"), torch.tensor([[0.0, 1.0, 0.0]]))
    assert torch.allclose(modality_condition(model, "sketch", strength=0.25), torch.tensor([[0.75, 0.25, 0.0]]))
    assert torch.allclose(
        modality_condition(model, "photo", input_modality="cartoon", strength=0.4), torch.tensor([[0.4, 0.0, 0.6]])
    )
    assert not changes_modality(modality_condition(model, "sketch", strength=0.0), 0)
    with pytest.raises(ValueError, match="modality_strength"):
        modality_condition(model, "sketch", strength=1.5)
    with pytest.raises(TypeError, match="modality_strength"):
        modality_condition(model, "sketch", strength="full")
    with pytest.raises(ValueError, match="painting"):
        modality_condition(model, "sketch", input_modality="painting")


def test_convert_picture_changes_every_pixel_without_a_crop_box(painter, full_size_photo) -> None:
    photo = load_image(full_size_photo)
    converted = np.asarray(convert_picture(painter, photo, 0.4, "sketch"), dtype=np.float32)
    expected = (PAINT[1].numpy() * 127.5 + 127.5).round()
    assert converted.shape == (photo.height, photo.width, 3)
    assert np.abs(converted - expected).max() <= 1.0  # the whole picture, corners included
    tiles = painter.generator.calls
    count = sum(len(maps) for maps, _ in tiles)
    side = round(max(photo.size) * 0.4)
    assert count == len(tile_starts(side, 256, 64)) ** 2
    half = np.asarray(convert_picture(painter, photo, 0.4, modality_condition(painter, "sketch", strength=0.5)))
    original = np.asarray(photo, dtype=np.float32)
    colour = (0.5 * PAINT[1].numpy()) * 127.5 + 127.5  # c = (0.5, 0.5, 0): half the sketch paint, A = 0.5
    assert np.abs(half - (0.5 * original + 0.5 * colour)).max() <= 1.5  # A keeps the full-resolution photo


def test_tiles_carry_the_landmarks_that_fall_inside_them(painter, full_size_photo) -> None:
    photo = load_image(full_size_photo)
    face = default_detector().detect(photo)[0]
    convert_picture(painter, photo, 0.6, "sketch", face.landmarks)
    maps = torch.cat([maps for maps, _ in painter.generator.calls])
    drawn = maps.flatten(1).sum(1)
    assert (drawn > 0).any() and (drawn == 0).any()  # the face's tiles have lines, far tiles none
    painter.generator.calls.clear()
    convert_picture(painter, photo, 0.6, "sketch")
    assert all(float(maps.sum()) == 0 for maps, _ in painter.generator.calls)


def test_a_change_of_modality_converts_the_whole_photo(painter, full_size_photo) -> None:
    """Issue #12 item 1 with an exact G: no rectangle remains around the face."""
    result = np.asarray(painter.edit(full_size_photo, modality="cartoon"), dtype=np.float32)
    expected = (PAINT[2].numpy() * 127.5 + 127.5).round()
    assert np.abs(result - expected).max() <= 1.0


def test_strength_zero_is_a_no_op_and_one_the_full_style(painter, full_size_photo) -> None:
    photo = np.asarray(load_image(full_size_photo))
    assert np.array_equal(np.asarray(painter.edit(full_size_photo, modality="sketch", modality_strength=0.0)), photo)
    distances = []
    target = (PAINT[1].numpy() * 127.5 + 127.5).round()
    for strength in (0.25, 0.5, 0.75, 1.0):
        out = np.asarray(painter.edit(full_size_photo, modality="sketch", modality_strength=strength), np.float32)
        distances.append(float(np.abs(out - target).mean()))
    assert distances == sorted(distances, reverse=True) and distances[-1] < 1.0
    aligned = painter.face_editor.align(full_size_photo)
    assert is_no_op(aligned, aligned.landmarks, modality_condition(painter, "sketch", strength=0.0), painter)
    assert not is_no_op(aligned, aligned.landmarks, modality_condition(painter, "sketch", strength=0.1), painter)


def test_portrait_is_the_aligned_face_at_twice_the_model_size(painter, full_size_photo) -> None:
    portrait = painter.edit(full_size_photo, modality="sketch", portrait=True)
    assert portrait.size == (512, 512)
    plain = painter.edit(full_size_photo, smile=0.0, portrait=True)
    aligned = painter.face_editor.align(full_size_photo)
    crop = np.asarray(aligned.crop.resize((512, 512), Image.Resampling.BICUBIC), np.float32)
    assert np.abs(np.asarray(plain, np.float32) - crop).mean() < 6.0  # the face, aligned, sharper
    with pytest.raises(TypeError, match="portrait"):
        painter.edit(full_size_photo, portrait="yes")


def test_grey_modalities_come_back_grey_in_proportion(full_size_photo) -> None:
    model = PortraitGAN(PortraitGANConfig.preset("lite", achromatic_modalities=["sketch"]))
    model.generator = PaintsByCondition()
    full = np.asarray(model.edit(full_size_photo, modality="sketch"), dtype=np.int16)
    assert (full.max(axis=2) - full.min(axis=2)).max() <= 1
    half = np.asarray(model.edit(full_size_photo, modality="sketch", modality_strength=0.5), dtype=np.int16)
    chroma = (half.max(axis=2) - half.min(axis=2)).mean()
    assert chroma > 3  # half the way keeps colour
    with pytest.raises(ValueError, match="achromatic_modalities"):
        PortraitGANConfig.preset("lite", achromatic_modalities=["charcoal"])


class Darkens(PaintsByCondition):
    """G(I | L, c) = I / 2 whatever c: every converted picture differs from its input."""

    def infer(self, image, landmark_map, modality, source_landmarks=None, target_landmarks=None, source_modality=None):
        weights = modality if modality.is_floating_point() else nn.functional.one_hot(modality, 3).float()
        self.calls.append((landmark_map.clone(), weights.clone()))
        out = (image + 1) / 2 - 1
        return GeneratorOutput([out], out, None, image, None)


class FindsNoFaceInTheOriginal:
    """A detector stand-in for a stylized picture dlib cannot read: no face on the original picture,
    the original's real faces on any other picture (what G converted to a photo)."""

    def __init__(self, original: Image.Image) -> None:
        self.real = default_detector()
        self.original = original
        self.seen: list[Image.Image] = []

    def detect(self, image: Image.Image, min_face: int | None = None):
        self.seen.append(image)
        if np.array_equal(np.asarray(image), np.asarray(self.original)):
            return []
        return self.real.detect(self.original, min_face)


def test_a_stylized_input_without_a_detected_face_is_found_through_the_cycle(full_size_photo) -> None:
    """Issue #12 item 4's fallback: convert the whole picture to a photo, detect there, use those points."""
    model = PortraitGAN(LITE)
    model.generator = Darkens()
    original = load_image(full_size_photo)
    detector = FindsNoFaceInTheOriginal(original)
    result = FaceEditor(model, detector=detector).edit(full_size_photo, input_modality="sketch", modality="photo")
    assert result.size == original.size
    assert len(detector.seen) == 2 and detector.seen[1].size == original.size
    first = model.generator.calls[0][1]
    assert torch.equal(first, torch.tensor([[1.0, 0.0, 0.0]]).expand_as(first))  # the cycle: to a photo
    with pytest.raises(NoFaceError):  # a photo input never takes the cycle
        FaceEditor(model, detector=FindsNoFaceInTheOriginal(original)).edit(full_size_photo, modality="sketch")


def test_a_grey_input_stays_grey_only_while_its_modality_stays(painter, full_size_photo) -> None:
    grey = load_image(full_size_photo).convert("L").convert("RGB")
    kept = np.asarray(painter.edit(grey, smile=0.5), dtype=np.int16)
    assert (kept.max(axis=2) - kept.min(axis=2)).max() == 0
    converted = np.asarray(painter.edit(grey, input_modality="sketch", modality="cartoon"), dtype=np.int16)
    assert (converted.max(axis=2) - converted.min(axis=2)).mean() > 10  # the cartoon paint's colour


def test_a_small_face_in_a_large_picture_does_not_ask_for_hundreds_of_tiles(painter, monkeypatch) -> None:
    import portraitgan_hub.conversion as conversion

    monkeypatch.setattr(conversion, "MAX_CONVERT_SIDE", 600)
    picture = Image.new("RGB", (1200, 900), (90, 120, 150))
    converted = convert_picture(painter, picture, 2.0, "sketch")  # a face scale of 2 would be 2400 x 1800
    assert converted.size == picture.size
    tiles = sum(len(maps) for maps, _ in painter.generator.calls)
    assert tiles == len(tile_starts(600, 256, 64)) * len(tile_starts(450, 256, 64))


def test_remove_colour_scales_chroma_around_the_luma() -> None:
    from portraitgan_hub.composition import achromatic_share, remove_colour

    model = PortraitGAN(PortraitGANConfig.preset("lite", achromatic_modalities=["sketch"]))
    condition = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    share = achromatic_share(model, condition)
    assert torch.equal(share, torch.tensor([1.0, 0.5, 0.0]))
    images = torch.rand(3, 3, 8, 8) * 2 - 1
    out = remove_colour(images, share)
    chroma = lambda x: (x.max(dim=0).values - x.min(dim=0).values).mean()  # noqa: E731 (channels first)
    assert chroma(out[0]) < 1e-6 and torch.allclose(out[2], images[2])
    assert torch.allclose(chroma(out[1]), 0.5 * chroma(images[1]), atol=1e-5)
