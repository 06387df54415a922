"""Warnings where the result will be poor (portraitgan_hub/edit_warnings.py): a face too small to
draw on is edited by the warp alone, a line drawing edited as a photo and a drawn reference are
named; in ``EditOutcome.warnings``, on the CLI's stderr and on the app's status line. Ordinary
London photos, in colour or grey, give no warning.

Every input is made here from the London photos of tests/assets: a 160 px JPEG at quality 25 (a
61 px face), an edge map of a photo (Pillow's FIND_EDGES, inverted: dark lines on white) and a
line doodle drawn with PIL.
"""

from __future__ import annotations

import dataclasses
import io
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from portraitgan_hub import DEFAULT_MODEL, PortraitGAN
from portraitgan_hub.cli import main
from portraitgan_hub.composition import compose, finish_colours
from portraitgan_hub.edit_request import EditRequest
from portraitgan_hub.edit_warnings import (
    MIN_DRAWN_FACE_PX,
    PoorResultWarning,
    app_wording,
    cli_wording,
    drawing_measure,
    face_side_px,
)
from portraitgan_hub.faces.expressions import EXPRESSION_NAMES, ExpressionControls

SMALL = re.compile(r"the face is only (\d+) px wide: ")
WARP_ALONE = "edited by the warp alone, nothing drawn (give a larger face for a drawn mouth)"
SKETCH_HINT = 'looks like a sketch (almost no colour, mostly lines): add input_modality="sketch"'
LONDON = [("001", "neutral"), ("001", "smiling"), ("005", "neutral"), ("005", "smiling"), ("019", "neutral")]


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


@pytest.fixture(scope="module")
def demo() -> PortraitGAN:
    """The embedded, trained, warp-guided demo model: its G really draws an opened mouth."""
    return PortraitGAN.from_pretrained(DEFAULT_MODEL).eval()


@pytest.fixture(scope="module")
def tiny_face(london_photo) -> Image.Image:
    """A London portrait at 160 px, JPEG quality 25: a face 61 px wide, as in a compressed thumbnail."""
    with Image.open(london_photo("005", "neutral")) as photo:
        return _jpeg(photo.convert("RGB").resize((160, 160), Image.Resampling.LANCZOS), 25)


@pytest.fixture(scope="module")
def edge_drawing(london_photo, tmp_path_factory) -> Path:
    """A London photo as a line drawing: its edges (Pillow's FIND_EDGES), inverted to dark on white."""
    with Image.open(london_photo("019", "neutral")) as photo:
        drawing = ImageOps.invert(photo.convert("L").filter(ImageFilter.FIND_EDGES))
    path = tmp_path_factory.mktemp("drawings") / "edges.png"
    drawing.convert("RGB").save(path)
    return path


@pytest.fixture(scope="module")
def doodle() -> Image.Image:
    """A face drawn with black strokes on white paper (head, eyes, nose, smile)."""
    image = Image.new("RGB", (600, 600), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((150, 100, 450, 500), outline="black", width=5)
    draw.ellipse((220, 230, 270, 260), outline="black", width=4)
    draw.ellipse((330, 230, 380, 260), outline="black", width=4)
    draw.line((300, 260, 290, 340, 310, 345), fill="black", width=4)
    draw.arc((230, 360, 370, 440), 20, 160, fill="black", width=5)
    return image


def _plan(model: PortraitGAN, photo, **options):
    """(plan, the PoorResultWarnings' texts) of one edit."""
    editor, request = model.face_editor, EditRequest.from_options(**options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = editor.plan(editor.prepare(photo, request), request)
    return plan, [str(w.message) for w in caught if issubclass(w.category, PoorResultWarning)]


def _london_variants(london_photo):
    for identity, expression in LONDON:
        with Image.open(london_photo(identity, expression)) as photo:
            colour = photo.convert("RGB")
        grey = colour.convert("L").convert("RGB")
        yield f"{identity}_{expression}", colour
        yield f"{identity}_{expression} grey", grey
        yield f"{identity}_{expression} grey high-key", ImageEnhance.Brightness(grey).enhance(1.3)


# --- no false alarms ---------------------------------------------------------------------------------
def test_ordinary_london_photos_give_no_warning(lite_model, london_photo):
    """Colour, grey and high-key grey (brightness x1.3, half the face near white) London photos: a
    smile and a conversion to sketch plan without a warning, and G may draw (faces of 180 px and up)."""
    for name, photo in _london_variants(london_photo):
        for options in ({"smile": 1.0}, {"modality": "sketch"}):
            plan, notes = _plan(lite_model, photo, **options)
            assert notes == [] and plan.warnings == () and not plan.warp_only, (name, options, notes)


def test_the_measure_keeps_photos_and_drawings_apart(lite_model, london_photo, edge_drawing, doodle):
    editor = lite_model.face_editor
    photos = [editor.prepare(photo).aligned for _, photo in _london_variants(london_photo)]
    drawings = [editor.prepare(drawing).aligned for drawing in (edge_drawing, doodle, _jpeg(doodle, 60))]
    photo_measures = [drawing_measure(face.crop, face.landmarks) for face in photos]
    drawing_measures = [drawing_measure(face.crop, face.landmarks) for face in drawings]
    assert not any(m.looks_like_drawing for m in photo_measures)
    assert all(m.looks_like_drawing for m in drawing_measures)
    # with a margin: the photos' darkness lies in broad tones, the drawings' in thin lines
    assert max(m.line_share for m in photo_measures) < 0.2 < 0.8 < min(m.line_share for m in drawing_measures)


# --- a face too small to draw on ----------------------------------------------------------------------
def test_a_tiny_face_is_edited_by_the_warp_alone(demo, tiny_face):
    """A 61 px face: G's colour is not used (any colour gives the same picture), the warp still
    opens the mouth, and the warning says so."""
    editor = demo.face_editor
    request = EditRequest(controls=ExpressionControls(smile=1.0, mouth_open=1.0))
    prepared = editor.prepare(tiny_face, request)
    with pytest.warns(PoorResultWarning, match=SMALL.pattern + re.escape(WARP_ALONE)) as caught:
        plan = editor.plan(prepared, request)
    side = int(SMALL.search(str(caught[0].message)).group(1))
    assert side == round(face_side_px(prepared.aligned.alignment, editor.margin)) < MIN_DRAWN_FACE_PX
    rendering = editor.render(prepared, plan)
    assert plan.warp_only and bool((rendering.mask == 1).all())
    result = editor.compose(prepared, plan, rendering)
    painted = dataclasses.replace(rendering, colour=torch.full_like(rendering.colour, 0.8))  # pink-white
    alignment = prepared.aligned.alignment
    assert np.array_equal(np.asarray(compose(tiny_face, alignment, painted, editor.feather)), np.asarray(result))
    moved = np.abs(np.asarray(result, np.int16) - np.asarray(tiny_face, np.int16)).max(axis=2)
    assert (moved > 20).sum() > 200  # the warp did move the lips and chin


def test_a_face_of_normal_size_is_still_drawn(demo, london_photo):
    plan, notes = _plan(demo, london_photo("005", "neutral"), smile=1.0, mouth_open=1.0)
    rendering = demo.face_editor.render(demo.face_editor.prepare(london_photo("005", "neutral")), plan)
    assert notes == [] and not plan.warp_only and float(rendering.mask.min()) < 0.5  # G draws the mouth


def test_a_tiny_face_converted_keeps_the_conversion(demo, tiny_face):
    """A change of modality on a 61 px face: the face is the converted picture, warped; nothing is
    left unconverted and the warning says the face is converted with the rest of the picture."""
    editor = demo.face_editor
    request = EditRequest(modality="sketch")
    prepared = editor.prepare(tiny_face, request)
    with pytest.warns(PoorResultWarning, match=r"nothing drawn on it .*converted with the rest of the picture"):
        plan = editor.plan(prepared, request)
    result = editor.compose(prepared, plan, editor.render(prepared, plan))
    converted = editor.converted_picture(prepared, plan, prepared.picture, prepared.aligned.alignment)
    expected = finish_colours(converted, prepared.picture, demo, plan.condition, True)
    difference = np.abs(np.asarray(result, np.int16) - np.asarray(expected, np.int16))
    assert difference.max() <= 1  # the landmarks do not move: the converted picture itself
    assert editor.compose(prepared, plan, editor.render(prepared, plan), "crop").size == (256, 256)


def test_a_tiny_face_warns_in_edit_many_the_cli_and_the_app(lite_model, lite_model_dir, tiny_face, tmp_path, capsys):
    """The random-weight lite G has no warp: the expression is left as it is, and every front end says so."""
    path = tmp_path / "tiny.jpg"
    tiny_face.save(path, quality=95)
    (outcome,) = lite_model.edit_many([path], smile=1.0)
    assert outcome.ok and len(outcome.warnings) == 1
    assert SMALL.match(outcome.warnings[0]) and "this model has no warp" in outcome.warnings[0]
    assert np.array_equal(np.asarray(outcome.image), np.asarray(Image.open(path).convert("RGB")))

    cli = ["edit", str(path), "-o", str(tmp_path / "out.png"), "--model", str(lite_model_dir), "--smile", "1"]
    assert main(cli) == 0
    assert re.search(r"portraitgan edit: warning: the face is only \d+ px wide: ", capsys.readouterr().err)

    status = _app_status(lite_model, path, smile=1.0)
    assert re.search(r"\n" + SMALL.pattern, status)


# --- a drawing edited as a photo ------------------------------------------------------------------------
def test_a_line_drawing_edited_as_a_photo_is_named(lite_model, edge_drawing, doodle):
    """Returned unchanged by a no-op "photo" edit, an edge map or a doodle now comes with a word."""
    for drawing in (edge_drawing, doodle):
        (outcome,) = lite_model.edit_many([drawing])
        assert outcome.ok and any(SKETCH_HINT in note for note in outcome.warnings), outcome.warnings
    plan, notes = _plan(lite_model, doodle, input_modality="sketch")
    assert not any("looks like" in note for note in notes)


def test_the_cli_and_the_app_word_the_sketch_hint_their_way(lite_model, lite_model_dir, edge_drawing, tmp_path, capsys):
    assert main(["edit", str(edge_drawing), "-o", str(tmp_path / "out.png"), "--model", str(lite_model_dir)]) == 0
    err = capsys.readouterr().err
    assert "portraitgan edit: warning: edges.png looks like a sketch" in err and err.rstrip().endswith("--from sketch")
    assert 'say "Input is: sketch"' in _app_status(lite_model, edge_drawing)
    assert "looks like" not in _app_status(lite_model, edge_drawing, source="sketch")


def test_the_closing_is_pillows():
    from portraitgan_hub.edit_warnings import LINE_KERNEL, _square_filter

    grey = Image.open(Path(__file__).parent / "assets" / "london" / "019_neutral.jpg").convert("L").reduce(4)
    pixels = np.asarray(grey, np.float32)
    ours = _square_filter(_square_filter(pixels, LINE_KERNEL, np.maximum), LINE_KERNEL, np.minimum)
    pillows = grey.filter(ImageFilter.MaxFilter(LINE_KERNEL)).filter(ImageFilter.MinFilter(LINE_KERNEL))
    assert np.array_equal(ours, np.asarray(pillows, np.float32))


def test_wording():
    note = 'x.png looks like a sketch (...): add input_modality="sketch"'
    assert cli_wording(note) == "x.png looks like a sketch (...): add --from sketch"
    assert app_wording(note) == 'x.png looks like a sketch (...): say "Input is: sketch"'
    assert cli_wording("the face is only 61 px wide") == app_wording("the face is only 61 px wide")


# --- a drawn reference ----------------------------------------------------------------------------------
def test_a_drawn_reference_is_named(lite_model, london_photo, edge_drawing):
    photo = london_photo("005", "neutral")
    _, notes = _plan(lite_model, photo, reference=edge_drawing)
    assert any(note.startswith("the reference photo edges.png looks like a drawing") for note in notes), notes
    assert "may be wrong" in notes[0]
    _, notes = _plan(lite_model, photo, reference=london_photo("005", "smiling"))
    assert notes == []


# --- the app's status line ----------------------------------------------------------------------------
def test_the_status_line_also_says_when_the_sliders_reach_their_combined_limit(lite_model, london_photo):
    from portraitgan_hub.editor import LIMIT_REACHED
    from portraitgan_hub.faces.expressions import CONTROL_RANGES

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        status = _app_status(
            lite_model, london_photo("005", "neutral"), **{n: CONTROL_RANGES[n].maximum for n in EXPRESSION_NAMES}
        )
    assert status.endswith("\n" + LIMIT_REACHED)


def _app_status(model: PortraitGAN, photo: Path, source: str = "photo", **sliders: float) -> str:
    from portraitgan_hub_space import app

    values = tuple(float(sliders.get(name, 0.0)) for name in EXPRESSION_NAMES)
    options = (source, source, 1.0, False, "whole picture", 1.0, "all", 1024)
    with warnings.catch_warnings():  # the app's log gets them too; the status line is what is tested
        warnings.simplefilter("ignore", PoorResultWarning)
        *_, status = app.Handlers(model).photo_changed(str(photo), None, *options, *values)
    return status
