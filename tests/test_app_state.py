"""The app's pure state logic (space/session.py, parts of space/pipeline.py): no server, no model."""

import numpy as np
import pytest
from PIL import Image
from portraitgan_hub_space import pipeline
from portraitgan_hub_space.session import (
    PORTRAIT_ONLY,
    VIEW_CHOICES,
    WHOLE_PICTURE,
    LandmarkEdits,
    Session,
    control_label,
    control_range,
    controls_from_mapping,
    controls_from_values,
    crop_to_view,
    crop_view_scale,
    face_choices,
    nearest_landmark,
    portrait_view,
    preview_side,
    target_for_source,
    view_to_crop,
)

from portraitgan_hub.composition import scaled_alignment
from portraitgan_hub.editor import FaceEditor, PreparedPhoto
from portraitgan_hub.errors import FaceIndexError
from portraitgan_hub.faces.alignment import mean_face
from portraitgan_hub.faces.expressions import EXPRESSION_NAMES, ExpressionControls
from portraitgan_hub.faces.image_io import PhotoInfo
from portraitgan_hub.faces.landmarks import Face
from portraitgan_hub.picture_cache import PictureCache, photo_key
from portraitgan_hub.stages import align_face

POINTS = np.stack([np.arange(68, dtype=np.float32) * 3.0, np.full(68, 100.0, np.float32)], axis=1)


# --- sliders -> controls -------------------------------------------------------------------------
def test_slider_values_map_to_controls_by_expression_name():
    values = [0.1 * (i + 1) for i in range(len(EXPRESSION_NAMES))]
    controls = controls_from_values(values)
    assert isinstance(controls, ExpressionControls)
    assert controls.to_dict() == pytest.approx(dict(zip(EXPRESSION_NAMES, values)))


def test_empty_slider_counts_as_zero_and_wrong_counts_or_names_are_refused():
    assert controls_from_values([None] * len(EXPRESSION_NAMES)).is_neutral
    with pytest.raises(ValueError, match=f"expected {len(EXPRESSION_NAMES)} slider values"):
        controls_from_values([0.0])
    with pytest.raises(ValueError, match="valid: smile"):
        controls_from_mapping({"grin": 1.0})


def test_control_labels_come_from_the_names():
    assert control_label("left_eye_open") == "Left eye open"
    assert len({control_label(name) for name in EXPRESSION_NAMES}) == len(EXPRESSION_NAMES)
    assert control_label("aaa") == 'Mouth "aaa"' and control_label("roll") == "Head roll (\u00b0)"


def test_slider_ranges_follow_the_controls():
    assert control_range("smile") == (-2.0, 2.0, 0.05)  # the row of CONTROL_RANGES
    assert control_range("woo") == (0.0, 1.5, 0.05)  # a mouth shape has no negative
    assert control_range("roll") == (-20.0, 20.0, 1.0)  # degrees
    for name in EXPRESSION_NAMES:  # every end of every slider is a value the controls accept
        low, high, _ = control_range(name)
        ExpressionControls(**{name: low}).apply(mean_face())
        ExpressionControls(**{name: high}).apply(mean_face())


def test_preview_side_is_the_browser_view_clamped():
    assert preview_side(900.4) == 900 and preview_side(5000) == 1280 and preview_side(10) == 256
    assert preview_side(None) == preview_side(float("nan")) == preview_side("x") == 1024


def test_a_stylized_input_turns_the_target_to_photo_and_a_photo_keeps_it():
    modalities = ["photo", "sketch", "cartoon"]
    assert target_for_source("sketch", "cartoon", modalities) == "photo"
    assert target_for_source("photo", "cartoon", modalities) == "cartoon"
    assert target_for_source("photo", None, modalities) == "photo"
    assert target_for_source("ink", "ink", ["ink", "oil"]) == "ink"  # no photo modality at all


def test_the_result_shows_the_whole_picture_or_the_portrait_only():
    assert VIEW_CHOICES == (WHOLE_PICTURE, PORTRAIT_ONLY) == ("whole picture", "portrait only")
    assert portrait_view(PORTRAIT_ONLY) and not portrait_view(WHOLE_PICTURE) and not portrait_view(None)
    with pytest.raises(ValueError, match="one of 'whole picture', 'portrait only', got True"):
        portrait_view(True)


def test_pictures_are_made_once_per_key_and_only_the_newest_are_kept():
    cache = PictureCache(keep=2)
    made = []

    def make(colour):
        return lambda: made.append(colour) or Image.new("RGB", (2, 2), colour)

    first = cache.get("a", make((1, 1, 1)))
    assert cache.get("a", make((9, 9, 9))) is first and made == [(1, 1, 1)]
    cache.get("b", make((2, 2, 2)))
    cache.get("a", make((9, 9, 9)))  # "a" is the newest again
    cache.get("c", make((3, 3, 3)))  # "b" goes
    assert len(cache) == 2 and cache.made == 3
    cache.get("b", make((4, 4, 4)))
    assert made == [(1, 1, 1), (2, 2, 2), (3, 3, 3), (4, 4, 4)]


def _editor(crop_size: int = 64) -> FaceEditor:
    """An editor without a generator: stage 1 and the picture caches need only the crop size."""
    config = type("Config", (), {"image_size": crop_size})()
    return FaceEditor(type("Model", (), {"config": config})())


def _prepared(photo: Image.Image, faces: list[Face], crop_size: int = 64) -> PreparedPhoto:
    aligned = align_face(photo, faces[0], crop_size)
    return PreparedPhoto(photo, PhotoInfo(), "photo", photo_key(photo), tuple(faces), 0, aligned)


def test_sessions_of_one_photo_share_its_pictures_and_a_new_photo_starts_afresh():
    photo = Image.new("RGB", (800, 400), (120, 120, 120))
    editor = _editor()
    session = Session.start(_prepared(photo, [_face(0), _face(400, 150)]))
    editor.at_size(session.prepared, 200)
    later = session.with_face(editor.choose_face(session.prepared, 1)).with_edits(LandmarkEdits()).reset()
    editor.at_size(later.with_last(None).prepared, 200)
    assert editor._copies.made == 1  # the other face of the same photo: the same preview copy
    editor.at_size(_prepared(Image.new("RGB", (800, 400), (9, 9, 9)), [_face(0)]), 200)
    assert editor._copies.made == 2


# --- landmark click, move, undo ------------------------------------------------------------------
def test_first_click_picks_the_nearest_landmark_second_click_moves_it():
    edits, note = LandmarkEdits().click(POINTS, (31.0, 102.0), radius=5)
    assert edits.picked == 10 and "picked" in note and not edits.moves
    moved, note = edits.click(POINTS, (40.0, 150.0), radius=5)
    assert moved.picked is None and moved.moves == {10: (40.0, 150.0)} and "moved" in note
    assert moved.undo_stack == ({},)


def test_a_click_far_from_every_landmark_picks_nothing():
    edits = LandmarkEdits()
    same, note = edits.click(POINTS, (500.0, 500.0), radius=5)
    assert same is edits and "No landmark" in note
    assert nearest_landmark(POINTS, (30.0, 104.0), radius=5) == 10
    assert nearest_landmark(POINTS, (30.0, 106.0), radius=5) is None


def test_undo_walks_back_the_moves_one_at_a_time_and_first_cancels_a_pick():
    edits = LandmarkEdits()
    for index, target in ((10, (1.0, 1.0)), (20, (2.0, 2.0)), (10, (3.0, 3.0))):
        edits, _ = edits.click(POINTS, tuple(POINTS[index]), radius=1)
        edits, _ = edits.click(POINTS, target, radius=1)
    assert edits.moves == {10: (3.0, 3.0), 20: (2.0, 2.0)}
    picked, _ = edits.click(POINTS, tuple(POINTS[30]), radius=1)
    edits, note = picked.undo()
    assert note == "Pick cancelled." and edits.picked is None and len(edits.undo_stack) == 3
    edits, _ = edits.undo()
    assert edits.moves == {10: (1.0, 1.0), 20: (2.0, 2.0)}
    edits, _ = edits.undo()
    edits, _ = edits.undo()
    assert edits.moves == {} and edits.undo_stack == ()
    assert edits.undo() == (edits, "Nothing to undo.")


def test_crop_view_coordinates_round_trip():
    assert crop_view_scale(256) == 2 and crop_view_scale(512) == 1 and crop_view_scale(128) == 4
    points = np.array([[0.0, 0.0], [127.5, 200.25], [255.0, 255.0]])
    for scale in (1, 2, 4):
        back = np.array([view_to_crop(xy, scale) for xy in crop_to_view(points, scale)])
        assert np.allclose(back, points)
    assert view_to_crop((0, 0), 2) == (-0.25, -0.25) and view_to_crop((1, 1), 2) == (0.25, 0.25)  # pixel 0


def test_a_zoomed_crop_view_maps_clicks_back_through_its_offset_and_scale():
    points = np.array([[100.0, 150.0], [127.5, 170.25], [160.0, 181.0]])
    for scale, offset in ((6.7, (93.2, 140.8)), (3.25, (60.0, 70.5)), (2.0, (0.0, 0.0))):
        view = crop_to_view(points, scale, offset)
        assert np.allclose([view_to_crop(xy, scale, offset) for xy in view], points)
    # The view's top-left edge is the crop's ``offset`` as a pixel edge: crop pixel i spans i - 0.5 .. i + 0.5.
    assert np.allclose(view_to_crop((-0.5, -0.5), 6.7, (93.2, 140.8)), (92.7, 140.3))
    assert np.allclose(crop_to_view(np.array([[92.7, 140.3]]), 6.7, (93.2, 140.8)), [[-0.5, -0.5]])


# --- session --------------------------------------------------------------------------------------
def _face(offset: float, size: float = 200.0) -> Face:
    points = mean_face() * size / 2 + np.array([offset + 150.0, 200.0])
    left, top = points.min(0).astype(int)
    right, bottom = points.max(0).astype(int)
    return Face(box=(int(left), int(top), int(right), int(bottom)), landmarks=points.astype(np.float32))


def test_session_switches_faces_and_drops_moves_that_belonged_to_the_old_face():
    photo = Image.new("RGB", (800, 400), (120, 120, 120))
    editor = _editor()
    session = Session.start(_prepared(photo, [_face(0), _face(400, 150)]), name="x")
    assert session.face == 0 and session.aligned.crop.size == (64, 64)
    edits, _ = LandmarkEdits().click(session.aligned.landmarks, tuple(session.aligned.landmarks[8]), radius=1)
    edits, _ = edits.click(session.aligned.landmarks, (30.0, 60.0), radius=1)
    moved = session.with_edits(edits).with_reference(Image.new("RGB", (8, 8)))
    other = moved.with_face(editor.choose_face(moved.prepared, 1))
    assert other.face == 1 and other.edits == LandmarkEdits() and other.reference is not None
    assert not np.allclose(other.aligned.alignment.matrix, session.aligned.alignment.matrix)
    assert moved.with_face(editor.choose_face(moved.prepared, 0)) is moved
    assert moved.reset().edits == LandmarkEdits() and moved.reset().reference is None
    with pytest.raises(FaceIndexError, match="has 2"):
        editor.choose_face(session.prepared, 2)


def test_face_picker_labels_say_largest_and_where_the_others_are():
    labels = face_choices([_face(0), _face(400, 150), _face(-130, 100)], (800, 400))
    assert labels == [("face 1 (largest)", 0), ("face 2 (right)", 1), ("face 3 (left)", 2)]
    assert face_choices([_face(0), _face(0)], (300, 1200))[1][0] == "face 2 (upper centre)"


# --- files and geometry of the pipeline -----------------------------------------------------------
def test_png_download_is_lossless_and_old_files_are_pruned(tmp_path):
    files = pipeline.OutputFiles(tmp_path, keep=2)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
    paths = [files.save_png(image, "face") for _ in range(3)]
    assert paths[-1].name == "face-portraitgan.png"
    assert np.array_equal(np.asarray(Image.open(paths[-1])), np.asarray(image))
    assert not paths[0].exists() and paths[1].exists()
    assert not list(tmp_path.rglob("*.tmp"))  # written atomically, nothing left over


def test_a_temporary_output_folder_goes_with_its_owner():
    files = pipeline.OutputFiles()
    folder = files.save_png(Image.new("RGB", (4, 4)), "x").parents[1]
    assert folder.is_dir()
    del files
    assert not folder.exists()


def test_scaled_alignment_maps_the_same_face_in_a_resized_photo():
    face = _face(0)
    session = Session.start(_prepared(Image.new("RGB", (800, 400)), [face]))
    alignment = session.aligned.alignment
    small = scaled_alignment(alignment, 0.5)
    # a point at pixel centre (x, y) of the photo is at ((x + 0.5) * 0.5 - 0.5, ...) in the half-size photo
    points = face.landmarks.astype(np.float64)
    assert np.allclose(small.to_crop((points + 0.5) * 0.5 - 0.5), alignment.to_crop(points), atol=1e-6)


def test_gif_plays_forward_holds_and_plays_back(tmp_path):
    frames = []
    for step in range(4):  # a white block moving right, one block per frame
        frame = Image.new("RGB", (16, 4))
        frame.paste((255, 255, 255), (4 * step, 0, 4 * step + 4, 4))
        frames.append(frame)
    path = pipeline.save_gif(frames, tmp_path / "a.gif", frame_ms=50, hold_ms=500)
    positions, durations = [], []
    with Image.open(path) as gif:
        assert gif.info.get("loop") == 0
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
            positions.append(int(np.argmax(np.asarray(gif.convert("L"))[0])) // 4)
    assert positions == [0, 1, 2, 3, 2, 1]
    assert durations == [500, 50, 50, 500, 50, 50]


def test_animation_plan_gives_about_fps_times_length_frames():
    for fps, seconds in ((12, 2.0), (30, 1.0), (4, 8.0), (24, 4.0)):
        frames, hold = pipeline.animation_plan(fps, seconds)
        order = pipeline.loop_order(frames, hold)
        assert 2 <= frames <= pipeline.MAX_RENDERED_FRAMES and hold >= 1
        assert abs(len(order) - fps * seconds) <= 2 or frames == pipeline.MAX_RENDERED_FRAMES
    assert pipeline.loop_order(4, 2) == [0, 0, 0, 1, 2, 3, 3, 3, 2, 1]
    with pytest.raises(ValueError, match="frame rate must be 4..30"):
        pipeline.animation_plan(60, 2)
    with pytest.raises(ValueError, match="length must be 1..8 seconds"):
        pipeline.animation_plan(12, 0.1)


def test_mp4_plays_the_loop_at_the_given_rate_and_is_cropped_to_even_sides(tmp_path):
    import av

    frames = []
    for step in range(4):
        frame = Image.new("RGB", (65, 33))  # odd sides: H.264 in yuv420p needs even ones
        frame.paste((255, 255, 255), (16 * step, 0, 16 * step + 16, 33))
        frames.append(frame)
    path = pipeline.save_mp4(frames, tmp_path / "a.mp4", fps=8, hold=1)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [frame.to_ndarray(format="gray") for frame in container.decode(stream)]
        assert stream.average_rate == 8 and (stream.width, stream.height) == (64, 32)
    positions = [int(np.argmax(frame[16, ::16] > 128)) for frame in decoded]
    assert positions == [0, 0, 1, 2, 3, 3, 2, 1]
    assert not list(tmp_path.glob("*.tmp"))
