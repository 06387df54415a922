"""The crop view to click points on (space/crop_zoom.py, pipeline.crop_view, the handlers' clicks) and
the slider wiring that renders a drag once (compat.slider_renders), without a browser."""

import itertools

import gradio as gr
import numpy as np
import pytest
import torch
from portraitgan_hub_space import app, compat, crop_zoom, pipeline
from portraitgan_hub_space.session import ZOOM_CHOICES, LandmarkEdits
from test_app_handlers import SKIP, SMILE, ZEROS, _select, opts

from portraitgan_hub import PortraitGAN, PortraitGANConfig
from portraitgan_hub.faces.alignment import Alignment, template_in_crop
from portraitgan_hub.faces.landmarks import INNER_LIPS


@pytest.fixture(scope="module")
def handlers() -> app.Handlers:
    torch.manual_seed(0)
    return app.Handlers(PortraitGAN(PortraitGANConfig.preset("lite")).eval())


def _closed_mouth(crop_size: int = 256) -> np.ndarray:
    """The mean face in a crop, its inner lips shut: the lower inner lip on the upper one."""
    points = template_in_crop(crop_size).copy()
    points[[65, 66, 67]] = points[[63, 62, 61]]
    return points


def _distances(points: np.ndarray) -> np.ndarray:
    return np.array([np.hypot(*(a - b)) for a, b in itertools.combinations(points, 2)])


@pytest.mark.parametrize("zoom", [z for z in ZOOM_CHOICES if z != "whole face"])
def test_a_zoomed_view_frames_its_part_and_every_dot_is_a_tap_apart_and_picks_its_point(zoom):
    points = _closed_mouth()
    view = crop_zoom.zoom_for(zoom, 256, (points,))
    shown = view.to_view(points[list(view.indices)])
    assert (shown > 0).all() and (shown < np.array(view.size) - 1).all()  # the whole part is in view
    assert view.scale > 2 * crop_zoom.zoom_for(None, 256).scale  # enlarged beyond the whole face's view
    dots = crop_zoom.dot_positions(view, points)
    assert _distances(dots).min() >= view.spacing == crop_zoom.TAP_SPACING * view.size[0]
    assert np.abs(dots - shown).max() < view.spacing  # each dot near its point
    picks, radius = crop_zoom.pick_points(view, points)
    for index, dot in zip(view.indices, dots):
        edits, note = LandmarkEdits().click(picks, view.to_crop(dot), radius)
        assert edits.picked == index, (zoom, index, note)
    outside = next(i for i in range(68) if i not in view.indices)
    far, _ = LandmarkEdits().click(picks, tuple(points[outside]), radius)
    assert far.picked in (None, *view.indices)  # a point the view does not show cannot be picked


def test_points_on_each_other_are_drawn_apart_the_way_the_face_goes_and_spaced_points_stay():
    points = _closed_mouth()
    mouth = crop_zoom.zoom_for("mouth", 256, (points,))
    dots = dict(zip(mouth.indices, crop_zoom.dot_positions(mouth, points)))
    assert np.allclose(mouth.to_view(points[[62]])[0], mouth.to_view(points[[66]])[0])  # shut: one place
    assert dots[62][1] < dots[66][1] - mouth.spacing * 0.9  # the upper inner lip goes up, the lower down
    spaced = np.array([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]])
    assert np.array_equal(crop_zoom.spread(spaced, 40.0, spaced), spaced)
    with pytest.raises(ValueError, match="'whole face', 'mouth'"):
        crop_zoom.zoom_for("nose", 256, (points,))


def test_the_crop_view_shows_the_current_result_not_the_uploaded_face(handlers, london_photo):
    photo = str(london_photo("005", "neutral"))
    session = handlers.photo_changed(photo, None, *opts(), *ZEROS)[3]
    for view in ("whole picture", "portrait only"):
        session, _, crop, *_ = handlers.rerender(session, *opts(target="sketch", view=view), *SMILE)
        geometry = pipeline.crop_zoom_of(session, session.last.target)
        result = np.asarray(crop_zoom.view_picture(session.last.shown, geometry), np.int16)
        identity = Alignment(np.eye(3)[:2], session.aligned.crop.width)
        upload = crop_zoom.view_picture(crop_zoom.ShownResult(session.aligned.crop, identity), geometry)
        shown = np.asarray(crop, np.int16)
        assert crop.size == (512, 512)
        assert np.median(np.abs(shown - result)) <= 1  # the result, but where the dots and lines are
        assert np.abs(shown - np.asarray(upload, np.int16)).mean() > 10  # the random model's sketch is not the photo


def test_a_click_on_a_zoomed_view_picks_by_its_dot_and_moves_to_the_crop_point_under_it(handlers, london_photo):
    photo = str(london_photo("005", "neutral"))
    session = handlers.photo_changed(photo, None, *opts(zoom="mouth"), *ZEROS)[3]
    target = session.last.target
    view = pipeline.crop_zoom_of(session, target, "mouth")
    dots = dict(zip(view.indices, crop_zoom.dot_positions(view, target)))
    assert np.hypot(*(target[63] - target[65])) < 1 and np.hypot(*(dots[63] - dots[65])) >= view.spacing
    picked = handlers.crop_clicked(_select(dots[65].round()), session, *opts(zoom="mouth"), *ZEROS)
    assert picked[0].edits.picked == 65 and isinstance(picked[1], SKIP) and picked[2].size == view.size
    cancelled = handlers.undo(picked[0], *opts(zoom="mouth"), *ZEROS)  # a pick cancelled: no render
    assert cancelled[0].edits.picked is None and isinstance(cancelled[1], SKIP) and "Pick cancelled" in cancelled[4]
    picked = handlers.crop_clicked(_select(dots[65].round()), session, *opts(zoom="mouth"), *ZEROS)
    destination = (dots[65] + [0, 60]).round()
    moved = handlers.crop_clicked(_select(destination), picked[0], *opts(zoom="mouth"), *ZEROS)
    assert np.allclose(moved[0].edits.moves[65], view.to_crop(destination)) and "1 point(s) moved" in moved[4]
    assert set(INNER_LIPS) >= set(moved[0].edits.moves)
    whole = handlers.zoom_changed(moved[0], "whole face")[0]
    assert whole.size == (512, 512) and handlers.zoom_changed(moved[0], "left eye")[0].size[0] == 512


def test_a_slider_renders_on_release_and_skips_its_input_events_during_a_drag():
    calls = []

    def render(value):
        calls.append(value)
        return value * 2, "rendered"

    with gr.Blocks() as demo:
        slider, dragging = gr.Slider(0, 1), gr.Checkbox(False, visible=False)
        outputs = [gr.Number(), gr.Markdown()]
        events = compat.slider_renders(slider, render, [slider], outputs, dragging=dragging)
    fns = list(demo.fns.values())
    triggers = {target[1]: fn for fn in fns for target in fn.targets if target[0] == slider._id}
    assert set(triggers) == {"input", "release"} and len(events) == 2
    assert triggers["input"].js == compat.DRAGGING_JS and "portraitganPointer" in compat.POINTER_JS
    assert all(isinstance(out, SKIP) for out in triggers["input"].fn(0.5, True)) and calls == []  # dragged
    assert triggers["input"].fn(0.5, False) == (1.0, "rendered")  # an arrow key, a typed value
    assert triggers["release"].fn(0.7) == (1.4, "rendered") and calls == [0.5, 0.7]


def test_the_editor_shows_a_zoom_and_renders_the_sliders_on_release(handlers):
    demo = app.build_demo(handlers.model)
    ids = {block._id: getattr(block, "elem_id", None) for block in demo.blocks.values()}
    smile_release = [
        fn
        for fn in demo.fns.values()
        for target, event in fn.targets
        if ids.get(target) == "slider-smile" and event == "release"
    ]
    assert smile_release and smile_release[0].fn.__name__ == "rerender"
    zoom = [fn for fn in demo.fns.values() for target, event in fn.targets if ids.get(target) == "crop-zoom"]
    assert zoom and zoom[0].fn.__name__ == "zoom_changed"
