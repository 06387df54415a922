"""The expression/shape split of the 68 points (issue #25): a reference gives its expression, not its face shape.

On the dlib landmarks of the demo model's 8 held-out London people
(``assets/london/landmarks_held_out.json``; the expression model was fitted on the other 72), and on
one held-out photo through the editor. Moves are mean point distances divided by the subject's
eye-centre distance. The transfer before this model (the reference's displacement from the mean
face) fails the first three of these tests: 6 % for an own neutral photo, 6 % for another person's, and mouth
corners off by 35 % of the reference's own smile on average (69 % at worst).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from portraitgan_hub.faces.expression_model import (
    MODEL_FILE,
    ExpressionModel,
    estimate_expression,
    estimate_neutral,
    expression_model,
    to_canonical,
)
from portraitgan_hub.faces.expression_transfer import REFERENCE_PARTS, transfer_expression
from portraitgan_hub.faces.landmarks import LEFT_EYE, RIGHT_EYE

LANDMARKS_FILE = Path(__file__).resolve().parent / "assets" / "london" / "landmarks_held_out.json"
#: Held-out people whose smile is clear: the mouth corners move at least 10 % of the eye distance.
CLEAR_SMILES = ("038", "063", "096", "118")
CORNERS = [48, 54]


@pytest.fixture(scope="module")
def people() -> dict[str, dict[str, np.ndarray]]:
    data = json.loads(LANDMARKS_FILE.read_text(encoding="utf-8"))["identities"]
    return {i: {e: np.asarray(points, dtype=np.float64) for e, points in faces.items()} for i, faces in data.items()}


def eye_distance(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[list(LEFT_EYE)].mean(axis=0) - points[list(RIGHT_EYE)].mean(axis=0)))


def mean_move(before: np.ndarray, after: np.ndarray) -> float:
    """Mean point move, as a share of the eye-centre distance of ``before``."""
    return float(np.linalg.norm(after - before, axis=1).mean()) / eye_distance(before)


def test_the_model_was_fitted_without_the_held_out_people(people) -> None:
    data = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    assert set(data["held_out_identities"]) == set(people) and not set(data["training_identities"]) & set(people)
    assert len(data["training_identities"]) == 72
    assert expression_model().identity_basis.shape[1] == 136


def test_own_neutral_photo_as_reference_changes_nothing(people) -> None:
    moves = {
        i: mean_move(faces["neutral"], transfer_expression(faces["neutral"], faces["neutral"]))
        for i, faces in people.items()
    }
    # 0.05-0.4 % for seven people; 092's "neutral" photo is read as a slight smile (0.7 %)
    assert np.mean(list(moves.values())) < 0.005, moves
    assert max(moves.values()) < 0.01, moves


def test_own_neutral_photo_through_the_editor_changes_nothing(london_photo) -> None:
    from portraitgan_hub.faces.image_io import load_image
    from portraitgan_hub.faces.landmarks import default_detector
    from portraitgan_hub.stages import align_face, target_landmarks

    photo = load_image(london_photo("019", "neutral"))  # a held-out person
    aligned = align_face(photo, default_detector().detect(photo)[0], 256)
    target = target_landmarks(aligned, reference=aligned.landmarks)
    assert mean_move(aligned.landmarks, target) < 0.005


def test_another_persons_neutral_photo_barely_changes_the_expression(people) -> None:
    for subject, reference in itertools.permutations(people, 2):
        before = people[subject]["neutral"]
        move = mean_move(before, transfer_expression(before, people[reference]["neutral"]))
        assert move < 0.015, (subject, reference, move)  # at most 0.73 %; the mean-face transfer moved 5.8 % on average


def expected_corner_move(subject: np.ndarray, neutral: np.ndarray, smiling: np.ndarray) -> np.ndarray:
    """The reference's own neutral -> smile move of the mouth corners, rescaled to the subject's mouth
    (the explicit-neutral transfer), in the subject's pixels: ``(2, 2)``."""
    return (transfer_expression(subject, smiling, reference_neutral=neutral, parts="mouth") - subject)[CORNERS]


def test_reference_smile_moves_the_mouth_corners_as_its_own_smile_does(people) -> None:
    """Tolerance: every corner move within 40 % of the reference's own (rescaled) move, 30 % on average.
    Measured: 22 % on average, 32 % at worst (28 subject-reference pairs)."""
    errors = []
    for reference, subject in itertools.product(CLEAR_SMILES, people):
        if subject == reference:
            continue
        before, faces = people[subject]["neutral"], people[reference]
        want = expected_corner_move(before, faces["neutral"], faces["smiling"])
        got = (transfer_expression(before, faces["smiling"]) - before)[CORNERS]
        error = float(np.linalg.norm(got - want, axis=1).mean() / np.linalg.norm(want, axis=1).mean())
        assert error < 0.4, (subject, reference, error)
        errors.append(error)
    assert np.mean(errors) < 0.3, np.mean(errors)


def test_strength_and_parts_keep_their_meaning_and_an_explicit_neutral_wins(people) -> None:
    subject, smiling, neutral = people["019"]["neutral"], people["063"]["smiling"], people["063"]["neutral"]
    full = transfer_expression(subject, smiling) - subject
    half = transfer_expression(subject, smiling, strength=0.5) - subject
    assert np.allclose(half, full / 2, atol=1e-3)
    eyes = transfer_expression(subject, smiling, parts="eyes") - subject
    others = np.setdiff1d(np.arange(68), REFERENCE_PARTS["eyes"])
    assert np.abs(eyes[others]).max() < 1e-3 and np.abs(eyes[list(REFERENCE_PARTS["eyes"])]).max() > 0.1
    explicit = transfer_expression(subject, smiling, reference_neutral=neutral)
    assert not np.allclose(explicit, transfer_expression(subject, smiling), atol=0.5)
    assert np.allclose(transfer_expression(subject, neutral, reference_neutral=neutral), subject, atol=1e-3)


def test_estimate_neutral_and_expression(people) -> None:
    neutral, smiling = people["118"]["neutral"], people["118"]["smiling"]
    displacement, probability = estimate_expression(smiling)
    assert probability > 0.9 and estimate_expression(neutral)[1] < 0.5
    estimated = estimate_neutral(smiling)
    assert estimated.shape == (68, 2) and estimated.dtype == np.float32
    canonical, _ = to_canonical(smiling)
    # the same shape, up to the slightly different similarity that aligning it again finds
    assert np.allclose(to_canonical(estimated)[0], expression_model().neutral(canonical), atol=5e-3)
    assert np.allclose(expression_model().neutral(canonical) + displacement, canonical)
    # the estimated neutral mouth corners are nearer the real neutral ones (canonical frame: the two
    # photos are framed differently) than the smile's are
    real = to_canonical(neutral)[0][CORNERS]
    distance = np.linalg.norm
    assert distance(expression_model().neutral(canonical)[CORNERS] - real) < 0.5 * distance(canonical[CORNERS] - real)
    with pytest.raises(ValueError):
        estimate_neutral(np.zeros((5, 2)))


def test_a_malformed_model_is_refused() -> None:
    model = expression_model()
    with pytest.raises(ValueError, match="identity basis"):
        ExpressionModel(
            model.mean,
            model.identity_basis[:, :10],
            model.identity_variance,
            model.expression_basis,
            model.expression_variance,
            model.noise_variance,
            model.expression_prior,
        )
    with pytest.raises(ValueError, match="expression_prior"):
        ExpressionModel(
            model.mean,
            model.identity_basis,
            model.identity_variance,
            model.expression_basis,
            model.expression_variance,
            model.noise_variance,
            1.0,
        )


def _reference_benchmark():
    """``benchmarks/reference_transfer.py`` as a module (the benchmarks folder is not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "reference_transfer.py"
    spec = importlib.util.spec_from_file_location("reference_transfer_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmarks_head_pose_fit_recovers_a_known_turn() -> None:
    """The pose-free row of the benchmark: a weak-perspective fit finds a known yaw/pitch/roll of a 3D
    shape, and taking out the turn between two images of the same shape gives the other image back."""
    bench = _reference_benchmark()
    flat = expression_model().mean
    depth = 0.4 * (flat[:, 0] ** 2 + 0.3 * flat[:, 1] ** 2)  # a curved face: farther at the sides
    depth[27:36] -= np.linspace(0.0, 0.3, 9)  # and a nose that comes forward
    shape_3d = np.column_stack([flat, depth])
    turned = np.array([np.radians(6.0), np.radians(-9.0), np.radians(4.0), 80.0, 300.0, 200.0])
    frontal = np.array([0.0, 0.0, np.radians(4.0), 80.0, 300.0, 200.0])
    found = bench.fit_pose(bench.project(turned, shape_3d), shape_3d)
    assert np.allclose(np.degrees(found[:3]), [6.0, -9.0, 4.0], atol=0.01) and np.isclose(found[3], 80.0, rtol=1e-4)
    back = bench.without_pose_change(bench.project(turned, shape_3d), bench.project(frontal, shape_3d), shape_3d)
    from train.metrics import landmark_nme

    target = bench.project(frontal, shape_3d)
    # the same face at the other pose, up to the similarity that puts it back on the turned image's eyes and nose
    assert landmark_nme(bench._similarity_onto(back.astype(np.float64), target), target) < 1e-4
    assert landmark_nme(bench.project(turned, shape_3d), target) > 0.02  # the turn itself moves the points 0.027


def test_the_benchmarks_breakdown_adds_up() -> None:
    from train.metrics import landmark_nme

    bench = _reference_benchmark()
    rng = np.random.default_rng(3)
    target = expression_model().mean * 60.0 + 128.0
    found = target + rng.normal(scale=1.5, size=target.shape)
    parts = bench.breakdown(found, target)
    shares = sum(parts[name] for name in bench.GROUPS)
    assert np.isclose(shares, landmark_nme(found, target)) and np.isclose(
        parts["similarity_part"] + parts["after_similarity_nme"], shares
    )
    angle = 0.1  # a rotated, scaled, shifted copy is all rigid
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    similar = bench.breakdown((target - 128.0) @ rotation.T * 1.05 + 131.0, target)
    assert similar["after_similarity_nme"] < 1e-9 and similar["similarity_part"] > 0.01
