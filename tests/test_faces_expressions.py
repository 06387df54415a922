from __future__ import annotations

import numpy as np
import pytest

from portraitgan_hub.faces.alignment import template_in_crop
from portraitgan_hub.faces.expression_transfer import transfer_expression
from portraitgan_hub.faces.expressions import (
    EXPRESSION_NAMES,
    ExpressionControls,
    apply_expression,
    interpolate,
    move_points,
)
from portraitgan_hub.faces.landmarks import default_detector


@pytest.fixture(scope="module")
def faces(london_pairs) -> dict[str, np.ndarray]:
    detector = default_detector()
    (n1, s1), (n5, s5) = london_pairs
    return {name: detector.landmarks(path) for name, path in (("n1", n1), ("s1", s1), ("n5", n5), ("s5", s5))}


def eye_distance(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[36:42].mean(axis=0) - points[42:48].mean(axis=0)))


def corner_lift(points: np.ndarray) -> float:
    """How far the mouth corners sit above the middle of the lips, in eye distances (y points down)."""
    return float(points[[51, 57], 1].mean() - points[[48, 54], 1].mean()) / eye_distance(points)


def lid_gap(points: np.ndarray, eye: str) -> float:
    """Mean distance between the upper and lower lid, across the line between the eye's corners."""
    corners, top, bottom = ((36, 39), [37, 38], [41, 40]) if eye == "right" else ((42, 45), [43, 44], [47, 46])
    axis = points[corners[1]] - points[corners[0]]
    normal = np.array([-axis[1], axis[0]]) / np.linalg.norm(axis)
    return float(np.mean((points[bottom] - points[top]) @ normal))


def inner_lip_gap(points: np.ndarray) -> float:
    return float(np.mean(points[[67, 66, 65], 1] - points[[61, 62, 63], 1]))


def rotate(points: np.ndarray, degrees: float, centre=(300.0, 300.0)) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return (points - centre) @ np.array([[c, -s], [s, c]]).T + centre


def test_names():
    required = {"smile", "mouth_open", "eye_open", "left_eye_open", "right_eye_open", "brow_raise", "face_slim"}
    assert required <= set(EXPRESSION_NAMES)
    assert len(set(EXPRESSION_NAMES)) == len(EXPRESSION_NAMES) >= 10


def test_zero_changes_nothing(faces):
    points = faces["n5"]
    assert np.array_equal(apply_expression(points), points)
    assert np.array_equal(ExpressionControls().apply(points), points)
    assert np.array_equal(apply_expression(points, **{name: 0.0 for name in EXPRESSION_NAMES}), points)


def test_unknown_or_bad_controls():
    with pytest.raises(ValueError, match="grin") as error:
        apply_expression(template_in_crop(256), grin=1.0)
    assert all(name in str(error.value) for name in EXPRESSION_NAMES)
    with pytest.raises(ValueError):
        ExpressionControls(smile=float("nan"))
    with pytest.raises(TypeError, match="smile must be a number"):
        ExpressionControls(smile="a lot")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        apply_expression(np.zeros((67, 2)), smile=1.0)


def test_smile_lifts_the_mouth_corners_monotonically(faces):
    for points in (faces["n1"], faces["n5"], template_in_crop(256)):
        lifts = [corner_lift(apply_expression(points, smile=v)) for v in (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5)]
        assert all(b > a for a, b in zip(lifts, lifts[1:])), lifts
        assert lifts[4] - lifts[2] > 0.05


def test_smile_of_one_is_a_real_smile(faces):
    """smile=1 moves a neutral face's corners about as much as the person's own smile did."""
    for neutral, smiling in (("n1", "s1"), ("n5", "s5")):
        real = corner_lift(faces[smiling]) - corner_lift(faces[neutral])
        synthetic = corner_lift(apply_expression(faces[neutral], smile=1.0)) - corner_lift(faces[neutral])
        assert 0.25 * real < synthetic < 4 * real, (real, synthetic)


def test_controls_follow_the_face_frame(faces):
    """The same control gives the same edit on a tilted, scaled copy of the face."""
    points = faces["n5"].astype(np.float64)
    tilted = rotate(points * 1.7, 25.0)
    controls = dict(smile=0.8, mouth_open=0.6, left_eye_open=-0.5, brow_raise=0.7, face_slim=0.5, brow_furrow=0.4)
    expected = rotate(apply_expression(points, **controls).astype(np.float64) * 1.7, 25.0)
    assert np.abs(apply_expression(tilted, **controls) - expected).max() < 1e-2


def test_wink_closes_one_eye_only(faces):
    points = faces["n1"]
    winked = apply_expression(points, left_eye_open=-1.0)
    assert abs(lid_gap(winked, "left")) < 1e-3 * eye_distance(points)
    assert lid_gap(points, "left") > 0.05 * eye_distance(points)
    untouched = [i for i in range(68) if i not in range(42, 48)]
    assert np.allclose(winked[untouched], points[untouched], atol=1e-3)
    right = apply_expression(points, right_eye_open=-1.0)
    assert abs(lid_gap(right, "right")) < 1e-3 * eye_distance(points)
    assert np.allclose(right[42:48], points[42:48], atol=1e-3)


def test_eye_open_both_and_composition(faces):
    points = faces["n5"]
    opened = apply_expression(points, eye_open=1.0)
    for eye in ("left", "right"):
        assert lid_gap(opened, eye) > 1.3 * lid_gap(points, eye)
    closed = apply_expression(points, eye_open=-1.0, smile=1.0)
    assert abs(lid_gap(closed, "left")) < 1e-3 * eye_distance(points)
    assert corner_lift(closed) > corner_lift(points)
    mixed = apply_expression(points, eye_open=0.5, left_eye_open=-1.5)  # -1 left, +0.5 right
    assert abs(lid_gap(mixed, "left")) < 1e-3 * eye_distance(points)
    assert lid_gap(mixed, "right") > lid_gap(points, "right")
    over = apply_expression(points, eye_open=-1.5)  # cannot close further than closed (-1.5: the range end)
    assert abs(lid_gap(over, "right")) < 1e-3 * eye_distance(points)
    reopened = apply_expression(closed, eye_open=1.0)  # a closed eye opens again
    assert lid_gap(reopened, "left") > 0.03 * eye_distance(points)


def test_mouth_open_and_close(faces):
    points = faces["s1"]
    width = np.linalg.norm(points[54] - points[48])
    opened = apply_expression(points, mouth_open=1.0)
    assert inner_lip_gap(opened) - inner_lip_gap(points) == pytest.approx(0.5 * width, rel=0.05)
    assert opened[8, 1] > points[8, 1]  # the chin drops
    assert np.allclose(opened[:3], points[:3], atol=1e-3)  # the top of the jaw stays
    closed = apply_expression(opened, mouth_open=-1.0)
    assert abs(inner_lip_gap(closed)) < 1e-3 * width


def test_brows_mouth_width_and_slim(faces):
    points = faces["n5"]
    raised = apply_expression(points, brow_raise=1.0)
    assert (raised[17:27, 1] < points[17:27, 1] - 0.02 * eye_distance(points)).all()
    one = apply_expression(points, left_brow_raise=1.0)
    assert (one[22:27, 1] < points[22:27, 1]).all() and np.allclose(one[17:22], points[17:22], atol=1e-3)
    furrowed = apply_expression(points, brow_furrow=1.0)
    assert furrowed[22, 0] - furrowed[21, 0] < points[22, 0] - points[21, 0]
    assert furrowed[21, 1] > points[21, 1]
    wide = apply_expression(points, mouth_width=1.0)
    assert np.linalg.norm(wide[54] - wide[48]) == pytest.approx(
        1.25 * np.linalg.norm(points[54] - points[48]), rel=0.02
    )
    slim = apply_expression(points, face_slim=1.0)
    for a, b in ((4, 12), (5, 11), (6, 10)):
        assert np.linalg.norm(slim[a] - slim[b]) < 0.9 * np.linalg.norm(points[a] - points[b])
    assert np.allclose(slim[17:], points[17:], atol=1e-3)


def test_interpolate_and_move_points(faces):
    a, b = faces["n5"], faces["s5"]
    assert np.allclose(interpolate(a, b, 0.0), a) and np.allclose(interpolate(a, b, 1.0), b)
    assert np.allclose(interpolate(a, b, 0.5), (a + b) / 2)
    moved = move_points(a, {48: (1.0, 2.0), 54: np.array([3.0, 4.0])})
    assert moved[48].tolist() == [1.0, 2.0] and moved[54].tolist() == [3.0, 4.0]
    assert np.array_equal(np.delete(moved, [48, 54], axis=0), np.delete(a, [48, 54], axis=0))
    assert a[48].tolist() != [1.0, 2.0]  # the input is not modified
    with pytest.raises(ValueError, match="0..67"):
        move_points(a, {68: (0, 0)})
    with pytest.raises(ValueError):
        move_points(a, {3: (0, np.nan)})


def test_transfer_expression(faces):
    subject = faces["n5"]
    smiled = transfer_expression(subject, faces["s1"], reference_neutral=faces["n1"])
    assert corner_lift(smiled) > corner_lift(subject) + 0.03
    same = transfer_expression(subject, faces["n1"], reference_neutral=faces["n1"])
    assert np.abs(same - subject).max() < 1e-3
    # Transferring a person's own smile onto their neutral face gives their smile (in face frame).
    own = transfer_expression(faces["n1"], faces["s1"], reference_neutral=faces["n1"])
    assert corner_lift(own) - corner_lift(faces["n1"]) == pytest.approx(
        corner_lift(faces["s1"]) - corner_lift(faces["n1"]), rel=0.15
    )
    without_neutral = transfer_expression(subject, faces["s1"])
    assert corner_lift(without_neutral) > corner_lift(subject)
