"""The app's event functions (space/handlers.py Handlers) with stand-in generators: whole-picture
conversion, style strength and the input modality."""

import numpy as np
import pytest
import torch
from PIL import Image
from portraitgan_hub_space import app
from test_app_handlers import SKIP, SMILE, ZEROS, _pixels, opts
from test_whole_picture import PAINT, Darkens, FindsNoFaceInTheOriginal, PaintsByCondition

from portraitgan_hub import PortraitGAN, PortraitGANConfig


# --- issue #12: whole-picture conversion, style strength, input modality (stand-in generators) ----------
@pytest.fixture
def painter() -> PortraitGAN:
    """A lite model whose G paints a flat colour per modality (test_whole_picture.PaintsByCondition)."""
    model = PortraitGAN(PortraitGANConfig.preset("lite"))
    model.generator = PaintsByCondition()
    return model


def _paint(index: int) -> np.ndarray:
    return (PAINT[index].numpy() * 127.5 + 127.5).round()


def _corners(image: Image.Image) -> np.ndarray:
    pixels = _pixels(image.convert("RGB"))
    return np.stack([pixels[0, 0], pixels[0, -1], pixels[-1, 0], pixels[-1, -1]])


def test_a_change_of_modality_converts_the_whole_picture_in_preview_and_download(painter, full_size_photo):
    handlers = app.Handlers(painter)
    _, _, _, session, (before, _), *_ = handlers.photo_changed(str(full_size_photo), None, *opts(side=700), *ZEROS)
    session, (before, after), *_, status = handlers.rerender(session, *opts(target="cartoon", side=700), *SMILE)
    assert "photo \u2192 cartoon, whole picture converted" in status
    assert max(after.size) == 700 and np.abs(_pixels(after) - _paint(2)).max() <= 1  # no crop box: every pixel
    assert np.abs(_corners(before) - _paint(2)).max(axis=1).min() > 50  # "before" is the photo as it is
    with Image.open(handlers.prepare_download(session)["value"]) as png:
        assert png.size == (1350, 1350) and np.abs(_pixels(png) - _paint(2)).max() <= 1
        download = _pixels(png)
    library = painter.edit(str(full_size_photo), modality="cartoon", smile=1.0)
    assert np.array_equal(download, _pixels(library))  # the download is model.edit's result


def test_the_converted_picture_is_made_once_per_size_and_condition(painter, full_size_photo):
    handlers = app.Handlers(painter)
    calls = painter.generator.calls
    _, _, _, session, *_ = handlers.photo_changed(str(full_size_photo), None, *opts(side=700), *ZEROS)
    session = handlers.rerender(session, *opts(target="sketch", side=700), *ZEROS)[0]
    handlers.prepare_download(session)
    assert painter.face_editor.converted.made == 2  # the preview's size and the full size
    seen = len(calls)
    for values in (SMILE, ZEROS, SMILE):  # expression edits: G renders the face only
        session = handlers.rerender(session, *opts(target="sketch", side=700), *values)[0]
        handlers.prepare_download(session)
    assert painter.face_editor.converted.made == 2 and len(calls) - seen == 3
    handlers.rerender(session, *opts(target="sketch", style=0.5, side=700), *SMILE)  # another condition
    assert painter.face_editor.converted.made == 3


def test_style_strength_reaches_the_condition_and_zero_keeps_the_photo(painter, full_size_photo):
    handlers = app.Handlers(painter)
    _, _, _, session, (photo, _), *_ = handlers.photo_changed(str(full_size_photo), None, *opts(side=700), *ZEROS)
    session, (before, after), *_, status = handlers.rerender(session, *opts(target="sketch", style=0.0), *ZEROS)
    assert torch.equal(session.last.plan.condition, torch.tensor([[1.0, 0.0, 0.0]])) and session.last.plan.no_op
    assert np.array_equal(_pixels(after), _pixels(before)) and "expression only (style strength 0)" in status
    with Image.open(handlers.prepare_download(session)["value"]) as png:
        assert np.array_equal(_pixels(png), _pixels(Image.open(full_size_photo).convert("RGB")))
    session, (before, after), *_, status = handlers.rerender(session, *opts(target="sketch", style=0.5), *ZEROS)
    assert torch.allclose(session.last.plan.condition, torch.tensor([[0.5, 0.5, 0.0]])) and "at 50% style" in status
    assert torch.allclose(painter.generator.calls[-1][1], torch.tensor([[0.5, 0.5, 0.0]]))
    half = 0.5 * _corners(before) + 0.5 * (0.5 * PAINT[1].numpy() * 127.5 + 127.5)  # A = 0.5, half the paint
    assert np.abs(_corners(after) - half).max() <= 1.5  # the corners too, half-way


def test_a_sketch_turned_into_a_photo_shows_the_input_before_and_the_converted_picture_after(full_size_photo, tmp_path):
    model = PortraitGAN(PortraitGANConfig.preset("lite"))
    model.generator = Darkens()  # G(I | L, c) = I / 2 whatever c: a conversion shows everywhere
    sketch = tmp_path / "sketch.png"
    Image.open(full_size_photo).convert("L").save(sketch)
    handlers = app.Handlers(model)
    _, _, _, session, *_ = handlers.photo_changed(str(sketch), None, *opts("sketch", "photo", side=700), *ZEROS)
    again = handlers.rerender(session, *opts("sketch", "photo", side=700), *ZEROS)
    assert all(isinstance(out, SKIP) for out in again)  # what is on screen is not rendered again
    session, (before, after), *_, status = handlers.rerender(
        session.with_last(None), *opts("sketch", "photo", side=700), *ZEROS
    )
    assert "sketch \u2192 photo" in status and session.last.plan.converts
    assert torch.equal(session.last.plan.condition, torch.tensor([[1.0, 0.0, 0.0]]))
    input_preview = Image.open(sketch).convert("RGB").resize(before.size, Image.Resampling.BILINEAR)
    assert np.abs(_pixels(before) - _pixels(input_preview)).mean() < 2  # before: the sketch as uploaded
    darker = (_pixels(before) + 1) // 2
    assert np.abs(_corners(after) - _corners(before) // 2).max() <= 2 and np.abs(_pixels(after) - darker).mean() < 2
    same = handlers.rerender(session, *opts("sketch", "sketch", side=700), *ZEROS)
    assert same[0].last.plan.no_op and np.array_equal(_pixels(same[1][1]), _pixels(same[1][0]))  # sketch -> sketch


def test_a_stylized_input_without_a_detected_face_is_opened_through_the_cycle(full_size_photo):
    model = PortraitGAN(PortraitGANConfig.preset("lite"))
    model.generator = Darkens()
    detector = FindsNoFaceInTheOriginal(Image.open(full_size_photo).convert("RGB"))
    model.face_editor.detector = detector
    handlers = app.Handlers(model)
    status = handlers.photo_changed(str(full_size_photo), None, *opts(), *ZEROS)[-1]
    assert "no face found" in status and not model.generator.calls  # a photo never takes the cycle
    key, _, session, *_ = handlers.photo_changed(str(full_size_photo), None, *opts("sketch", "photo"), *ZEROS)[1:]
    assert key == str(full_size_photo) and len(session.faces) == 1
    assert len(detector.seen) == 2 and detector.seen[1].size == (1350, 1350)  # the picture G made a photo of
    first = model.generator.calls[0][1]
    assert torch.equal(first, torch.tensor([[1.0, 0.0, 0.0]]).expand_as(first))  # G's cycle: to a photo
    real = detector.real.detect(Image.open(full_size_photo).convert("RGB"))[0]
    assert np.allclose(session.faces[0].landmarks, real.landmarks)  # the original's points


def test_a_grey_modality_takes_out_colour_in_proportion_to_the_style_strength(full_size_photo):
    model = PortraitGAN(PortraitGANConfig.preset("lite", achromatic_modalities=["sketch"]))
    model.generator = PaintsByCondition()
    handlers = app.Handlers(model)
    _, _, _, session, *_ = handlers.photo_changed(str(full_size_photo), None, *opts(side=700), *ZEROS)
    chroma = []
    for style in (1.0, 0.5):
        session, (_, after), *_ = handlers.rerender(session, *opts(target="sketch", style=style, side=700), *ZEROS)
        with Image.open(handlers.prepare_download(session)["value"]) as png:
            for image in (after, png):
                pixels = _pixels(image.convert("RGB"))
                chroma.append((pixels.max(axis=2) - pixels.min(axis=2)).mean())
    assert max(chroma[:2]) <= 1 and min(chroma[2:]) > 3  # full sketch: grey; half-way: some colour left
