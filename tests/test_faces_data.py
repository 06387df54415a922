"""The shipped face data and the script that regenerates it (run here on synthetic shapes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from portraitgan_hub.faces.alignment import DATA_DIR, mean_face
from portraitgan_hub.faces.derive_directions import (
    HELD_OUT_IDS,
    load_or_detect_pairs,
    mean_shape,
    mirror,
    smile_direction,
    split_held_out,
    to_eye_units,
)


def _random_similarity(rng: np.random.Generator, points: np.ndarray) -> np.ndarray:
    angle, scale = rng.uniform(-0.4, 0.4), rng.uniform(50, 300)
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    return points @ np.array([[c, -s], [s, c]]).T + rng.uniform(0, 1000, size=2)


def test_shipped_data_files_are_consistent():
    template = json.loads((DATA_DIR / "mean_face_68.json").read_text())
    directions = json.loads((DATA_DIR / "expression_directions.json").read_text())
    for data in (template, directions):
        assert "CC-BY 4.0" in data["source"] and "DeBruine" in data["source"]
    # fitted on the 72 training people: the 8 held-out ones the evaluation scores are left out
    assert template["num_faces"] == 72 and directions["directions"]["smile"]["num_pairs"] == 72
    smile_held_out = directions["directions"]["smile"]["held_out_identities"]
    assert set(template["held_out_identities"]) == set(HELD_OUT_IDS) == set(smile_held_out)
    smile = np.array(directions["directions"]["smile"]["displacement"])
    assert smile.shape == (68, 2)
    assert np.allclose(mirror(smile), smile, atol=1e-4)
    assert smile[48, 1] < 0 and smile[54, 1] < 0  # corners go up ...
    assert smile[48, 0] < 0 < smile[54, 0]  # ... and outwards
    assert np.allclose(to_eye_units(mean_face()), mean_face(), atol=1e-4)


def test_mean_shape_undoes_pose_and_scale():
    rng = np.random.default_rng(0)
    truth = mean_face()
    shapes = [_random_similarity(rng, truth + rng.normal(scale=0.01, size=truth.shape)) for _ in range(30)]
    assert np.abs(mean_shape(shapes) - truth).max() < 0.02


def test_smile_direction_recovers_a_known_displacement():
    rng = np.random.default_rng(1)
    template = mean_face()
    true_direction = np.zeros_like(template)
    true_direction[[48, 54], 1] = -0.1  # a symmetric corner lift, leaving eyes and nose still
    true_direction[48, 0], true_direction[54, 0] = -0.05, 0.05
    neutral, smiling = [], []
    amounts = rng.uniform(0.5, 2.0, size=20)
    for amount in amounts:
        face = template + rng.normal(scale=0.01, size=template.shape)
        neutral.append(_random_similarity(rng, face))
        smiling.append(_random_similarity(rng, face + amount * true_direction))
    direction, coefficients = smile_direction(neutral, smiling, template)
    assert np.abs(direction - amounts.mean() * true_direction).max() < 0.005
    assert np.isclose(coefficients.mean(), 1.0)
    assert np.corrcoef(coefficients, amounts)[0, 1] > 0.95


def test_split_held_out_leaves_out_the_given_identities():
    ids = ["001", "019", "020", "131"]
    assert split_held_out(ids, HELD_OUT_IDS).tolist() == [True, False, True, False]
    assert split_held_out(ids, []).all()


def test_the_landmark_cache_of_derive_directions_is_tied_to_its_folder(tmp_path: Path) -> None:
    folder, other, cache = tmp_path / "london", tmp_path / "elsewhere", tmp_path / "pairs.npz"
    folder.mkdir(), other.mkdir()
    points = np.zeros((1, 68, 2))
    np.savez(cache, folder=np.array(str(folder.resolve())), ids=np.array(["001"]), neutral=points, smiling=points + 1)
    ids, neutral, smiling = load_or_detect_pairs(folder, cache)  # read back, nothing detected
    assert ids == ["001"] and float(smiling[0].mean() - neutral[0].mean()) == 1.0
    with pytest.raises(ValueError, match="written for .*london, not .*elsewhere"):
        load_or_detect_pairs(other, cache)
    np.savez(cache, ids=np.array(["001"]), neutral=points, smiling=points)  # an old cache names no folder
    with pytest.raises(ValueError, match="an unnamed folder"):
        load_or_detect_pairs(folder, cache)
