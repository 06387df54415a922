"""Source layouts: London faces, RaFD file names, the generic identity/expression tree."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from train.sources import detect_layout, load_records, parse_generic, parse_rafd


def _touch_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (120, 100, 90)).save(path)


def test_london_layout(tmp_path: Path) -> None:
    for expression in ("neutral", "smiling"):
        for identity in ("001", "002"):
            _touch_image(tmp_path / expression / f"{identity}.jpg")
    (tmp_path / "README.md").write_text("not an image")
    layout, records = load_records(tmp_path)
    assert layout == "london"
    assert [(r.identity, r.expression, r.modality) for r in records] == [
        ("001", "neutral", "photo"),
        ("001", "smiling", "photo"),
        ("002", "neutral", "photo"),
        ("002", "smiling", "photo"),
    ]


def test_rafd_keeps_one_angle_and_frontal_gaze(tmp_path: Path) -> None:
    for angle in ("090", "045"):
        for gaze in ("frontal", "left"):
            for expression in ("happy", "angry"):
                _touch_image(tmp_path / "sub" / f"Rafd{angle}_07_Caucasian_female_{expression}_{gaze}.jpg")
    _touch_image(tmp_path / "Rafd090_12_Moroccan_male_neutral_frontal.png")
    assert detect_layout(tmp_path) == "rafd"
    records = parse_rafd(tmp_path)
    expected = [("07", "angry"), ("07", "happy"), ("12", "neutral")]
    assert [(r.identity, r.expression) for r in records] == expected
    every_gaze = parse_rafd(tmp_path, angle="045", gaze=None)
    expected_gazes = {"angry-frontal", "angry-left", "happy-frontal", "happy-left"}
    assert {r.expression for r in every_gaze} == expected_gazes


def test_generic_layout_with_modalities(tmp_path: Path) -> None:
    _touch_image(tmp_path / "alice" / "neutral.jpg")
    _touch_image(tmp_path / "alice" / "smile.png")
    _touch_image(tmp_path / "alice" / "sketch" / "neutral.jpg")
    _touch_image(tmp_path / "bob" / "neutral.jpg")
    layout, records = load_records(tmp_path)
    assert layout == "generic"
    assert {(r.identity, r.expression, r.modality) for r in records} == {
        ("alice", "neutral", "photo"),
        ("alice", "smile", "photo"),
        ("alice", "neutral", "sketch"),
        ("bob", "neutral", "photo"),
    }


def test_duplicates_and_empty_folders_are_clear_errors(tmp_path: Path) -> None:
    _touch_image(tmp_path / "alice" / "neutral.jpg")
    _touch_image(tmp_path / "alice" / "neutral.png")
    with pytest.raises(ValueError, match="more than once"):
        parse_generic(tmp_path)
    with pytest.raises(ValueError, match="cannot tell the layout"):
        detect_layout(_empty(tmp_path))
    with pytest.raises(ValueError, match="unknown source layout"):
        load_records(tmp_path, "celeba")


def _empty(tmp_path: Path) -> Path:
    empty = tmp_path / "empty"
    empty.mkdir()
    return empty
