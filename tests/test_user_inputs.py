"""Inputs that real users bring (issue #14, items 1-5): small faces in large photos, multi-face landmark
files, absurd control values, garbage JSON, and wrong argument types. Every input is rebuilt from the
London test photos (see conftest.py)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import LONDON_DIR, paste_faces
from PIL import Image

import portraitgan_hub.editor as editor
from portraitgan_hub import PortraitGAN
from portraitgan_hub.cli import build_parser, main
from portraitgan_hub.errors import CheckpointError, NoFaceError
from portraitgan_hub.faces.expressions import CONTROL_RANGES, EXPRESSION_NAMES, ExpressionControls
from portraitgan_hub.faces.image_io import load_image
from portraitgan_hub.faces.landmarks import DLIB_MIN_FACE, LandmarkDetector, select_face
from portraitgan_hub.io_utils import save_photo
from portraitgan_hub.stages import AlignedFace


@pytest.fixture(scope="module")
def detector() -> LandmarkDetector:
    return LandmarkDetector()


# --- 1. small faces -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("canvas", "side", "where"),
    [((4000, 3000), 700, (900, 1100)), ((3000, 2000), 520, (600, 700)), ((2000, 4000), 520, (700, 2500))],
    ids=["12MP-landscape", "6MP", "8MP-portrait"],
)
def test_a_small_face_in_a_large_photo_is_found(detector, canvas, side, where) -> None:
    photo = paste_faces(canvas, [(LONDON_DIR / "001_neutral.jpg", side, where)])
    coarse_only = LandmarkDetector(max_detect_pixels=1)  # the 640 px copy alone, as before
    assert coarse_only.detect(photo) == []
    found = detector.detect(photo)
    assert len(found) == 1 and len(found.levels) >= 2
    points = found[0].landmarks
    assert (points.min(axis=0) >= where).all() and (points.max(axis=0) <= np.add(where, side)).all()


@pytest.mark.parametrize("size", [(1224, 816), (4000, 3000), (6000, 4000)], ids=["1MP", "12MP", "24MP"])
def test_detection_levels_grow_coarse_to_fine_within_the_budget(detector, size) -> None:
    levels = detector.levels(size)
    assert max(levels[0].size) == min(640, max(size))
    scales = [level.scale for level in levels]
    assert scales == sorted(scales) and scales[-1] <= 1.0
    assert math.prod(levels[-1].size) <= detector.max_detect_pixels * 1.01
    # an explicit min_face goes as fine as it takes (past the budget, and past full resolution)
    assert detector.levels(size, min_face=100)[-1].min_face <= 100
    assert detector.levels((640, 480), min_face=40)[-1].size == (1280, 960)
    assert detector.levels(size, min_face=2000)[-1].min_face <= 2000  # large faces only: one coarse copy


def test_min_face_reaches_a_face_the_budget_does_not(small_face_photo) -> None:
    tight = LandmarkDetector(max_detect_pixels=640 * 480)
    assert tight.detect(small_face_photo) == []
    assert len(tight.detect(small_face_photo, min_face=200)) == 1


def test_the_no_face_message_states_the_smallest_face_searched(detector, small_face_photo, capsys) -> None:
    empty = Image.new("RGB", (4000, 3000), (118, 124, 130))
    found = detector.detect(empty)
    assert found.smallest_face_searched == math.ceil(DLIB_MIN_FACE / found.levels[-1].scale)
    with pytest.raises(NoFaceError, match=f"searched for faces of {found.smallest_face_searched} px and larger"):
        select_face(found, 0, "empty.jpg")
    assert main(["landmarks", str(small_face_photo), "--min-face", "1000"]) == 2
    err = capsys.readouterr().err
    assert "no face found in" in err and "1000 px" in err and "--min-face" in err


def test_the_apps_no_face_message_states_it_too(lite_model, tmp_path) -> None:
    from space import pipeline

    wall = tmp_path / "wall.png"
    Image.new("RGB", (4000, 3000), (118, 124, 130)).save(wall)
    with pytest.raises(NoFaceError, match="no face found in wall.png: .*searched for faces of 196 px and larger"):
        pipeline.open_photo(lite_model.face_editor, str(wall))
    with pytest.raises(NoFaceError, match="reference photo wall.png: .*196 px"):
        lite_model.face_editor.reference_landmarks(str(wall))


def test_cli_finds_the_small_face_and_takes_min_face(small_face_photo, lite_model_dir, tmp_path, capsys) -> None:
    points = tmp_path / "points.json"
    assert main(["landmarks", str(small_face_photo), "-o", str(points)]) == 0
    assert len(json.loads(points.read_text())["faces"]) == 1
    out = tmp_path / "edited.jpg"
    assert (
        main(
            [
                "edit",
                str(small_face_photo),
                "-o",
                str(out),
                "--model",
                str(lite_model_dir),
                "--smile",
                "0.5",
                "--min-face",
                "150",
            ]
        )
        == 0
    ), capsys.readouterr().err
    assert Image.open(out).size == (4000, 3000)
    with pytest.raises(SystemExit) as exit_info:  # argparse: a usage error
        main(["edit", str(small_face_photo), "-o", str(out), "--min-face", "0"])
    assert exit_info.value.code == 2 and "--min-face: invalid positive integer value: '0'" in capsys.readouterr().err


@pytest.mark.slow
def test_detection_of_a_12_megapixel_photo_takes_under_a_second(detector, small_face_photo) -> None:
    photo = load_image(small_face_photo)
    empty = Image.new("RGB", photo.size, (118, 124, 130))
    detector.detect(photo)
    for picture in (photo, empty):
        start = time.perf_counter()
        detector.detect(picture)
        assert time.perf_counter() - start < 1.0


# --- 2. multi-face landmark files -----------------------------------------------------------------------
def _capture_targets(monkeypatch) -> list[tuple[np.ndarray, AlignedFace]]:
    """Record the target landmarks and the aligned face of every edit (``is_no_op`` sees both, always)."""
    seen = []
    original = editor.is_no_op

    def spy(aligned, landmarks, modality, model, *rest):
        seen.append((np.asarray(landmarks), aligned))
        return original(aligned, landmarks, modality, model, *rest)

    monkeypatch.setattr(editor, "is_no_op", spy)
    return seen


def test_landmarks_file_gives_each_face_its_own_points(
    three_faces_photo, lite_model_dir, tmp_path, monkeypatch, capsys
) -> None:
    points = tmp_path / "pts.json"
    assert main(["landmarks", str(three_faces_photo), "-o", str(points)]) == 0
    faces = json.loads(points.read_text())["faces"]
    assert len(faces) == 3
    seen = _capture_targets(monkeypatch)
    for face in (1, 2, 0):
        out = tmp_path / f"face{face}.png"
        code = main(
            [
                "edit",
                str(three_faces_photo),
                "--face",
                str(face),
                "--landmarks",
                str(points),
                "-o",
                str(out),
                "--model",
                str(lite_model_dir),
            ]
        )
        assert code == 0, capsys.readouterr().err
        target, aligned = seen[-1]
        assert aligned.face.box == tuple(faces[face]["box"])
        # the file's points of this face, which are this face's own (rounded to 0.01 px in the file)
        np.testing.assert_allclose(target, aligned.landmarks, atol=0.05)


def test_points_of_another_face_are_refused(three_faces_photo, lite_model, detector, tmp_path, capsys) -> None:
    faces = detector.detect(three_faces_photo)
    stacked = np.stack([face.landmarks for face in faces])
    result = lite_model.edit(three_faces_photo, face=2, landmarks=stacked)  # (N, 68, 2): face 2's row is used
    assert result.size == Image.open(three_faces_photo).size
    with pytest.raises(ValueError, match="inside the crop of the face being edited"):
        lite_model.edit(three_faces_photo, face=1, landmarks=faces[0].landmarks)
    with pytest.raises(ValueError, match="no points for face 5"):
        lite_model.edit(three_faces_photo, face=5, landmarks=stacked)
    wrong = tmp_path / "face0.json"
    wrong.write_text(json.dumps(faces[0].landmarks.tolist()))  # a bare 68x2 list: used for whichever face
    assert (
        main(["edit", str(three_faces_photo), "--face", "1", "--landmarks", str(wrong), "-o", str(tmp_path / "o.png")])
        == 2
    )
    assert "inside the crop" in capsys.readouterr().err


# --- 3. control ranges ----------------------------------------------------------------------------------
def test_every_control_has_one_range_shared_by_api_cli_and_app(lite_model, london_photo, capsys) -> None:
    from space.session import control_range

    assert set(CONTROL_RANGES) == set(EXPRESSION_NAMES)
    help_text = build_parser()._subparsers._group_actions[0].choices["edit"].format_help()
    photo = london_photo("005", "neutral")
    for name in EXPRESSION_NAMES:
        row = CONTROL_RANGES[name]
        assert row.minimum <= 0 < row.maximum  # 0 = unchanged is always valid (mouth shapes start there)
        assert control_range(name)[:2] == (row.minimum, row.maximum)  # the app's slider
        assert f"{row.minimum:g} to {row.maximum:g}" in help_text
        ExpressionControls(**{name: row.maximum})
        ExpressionControls(**{name: row.minimum})
        for value in (row.maximum + 0.01, row.minimum - 0.01, 1e9, -1e9):
            with pytest.raises(ValueError, match=rf"{name}=.* valid range \[{row.minimum:g}, {row.maximum:g}\]"):
                lite_model.edit(photo, **{name: value})
        assert main(["edit", str(photo), "-o", "unused.png", f"--{name.replace('_', '-')}", "1e9"]) == 2
        err = capsys.readouterr().err
        assert name in err and f"[{row.minimum:g}, {row.maximum:g}]" in err
    assert not Path("unused.png").exists()


@pytest.mark.parametrize("text", ["-1", "-0.5", "-.5", "-5e-1", "-1E-1", "-1e+0", "-1e9", "-inf", "-2.5E3"])
def test_negative_numbers_parse_in_any_notation(text: str) -> None:
    args = build_parser().parse_args(["edit", "photo.jpg", "-o", "out.png", "--smile", text, "--brow-raise", text])
    assert args.smile == float(text) and args.brow_raise == float(text)


def test_a_huge_negative_value_is_a_range_error_not_a_parse_error(london_photo, capsys) -> None:
    assert main(["edit", str(london_photo("005", "neutral")), "-o", "unused.png", "--smile", "-1e9"]) == 2
    err = capsys.readouterr().err
    assert "expected one argument" not in err and "outside its valid range" in err


# --- 4. garbage files are named ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("garbage{", "not valid JSON"),
        ("[1, 2]", "got a JSON list"),
        ('{"image_size": "x"}', "image_size"),
        ('{"colour": 1}', "colour"),
    ],
)
def test_a_garbage_config_json_names_the_file(lite_model_dir, tmp_path, london_photo, capsys, content, says) -> None:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(lite_model_dir, folder)
    (folder / "config.json").write_text(content)
    with pytest.raises(CheckpointError, match=says) as error:
        PortraitGAN.from_pretrained(folder)
    assert str(folder / "config.json") in str(error.value)
    assert (
        main(["edit", str(london_photo("005", "neutral")), "-o", str(tmp_path / "o.png"), "--model", str(folder)]) == 2
    )
    err = capsys.readouterr().err
    assert str(folder / "config.json") in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{garbage", "not valid JSON"),
        ('{"faces": []}', "holds no faces"),
        ("[[1, 2]]", "68 finite"),
        ('{"faces": [{"landmarks": "x"}]}', "68 finite"),
        ('{"faces": [{"box": [1, 2, 3, 4]}]}', "68 finite"),
    ],
)
def test_a_garbage_landmarks_json_names_the_file(tmp_path, london_photo, capsys, content, says) -> None:
    points = tmp_path / "points.json"
    points.write_text(content)
    assert (
        main(["edit", str(london_photo("005", "neutral")), "-o", str(tmp_path / "o.png"), "--landmarks", str(points)])
        == 2
    )
    err = capsys.readouterr().err
    assert str(points) in err and says in err and "landmarks" in err and err.count("\n") == 1


def test_a_landmarks_file_without_the_chosen_face_says_so(three_faces_photo, tmp_path, capsys) -> None:
    points = tmp_path / "pts.json"
    assert main(["landmarks", str(three_faces_photo), "-o", str(points)]) == 0
    assert (
        main(["edit", str(three_faces_photo), "--face", "3", "--landmarks", str(points), "-o", str(tmp_path / "o.png")])
        == 2
    )
    assert "holds 3 face(s)" in capsys.readouterr().err


def test_a_garbage_training_config_names_the_file(tmp_path) -> None:
    from train.training_config import read_yaml

    config = tmp_path / "bad.yaml"
    config.write_text("model: [unclosed\n")
    with pytest.raises(ValueError, match=f"{config} is not valid YAML"):
        read_yaml(config)


# --- 5. wrong argument types ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "kwargs", "error", "name"),
    [
        ((None,), {}, TypeError, "photo"),
        ((12,), {}, TypeError, "photo"),
        ((3.5,), {}, TypeError, "photo"),
        (("PHOTO",), {"face": 2.0}, TypeError, "face"),
        (("PHOTO",), {"face": "1"}, TypeError, "face"),
        (("PHOTO",), {"face": True}, TypeError, "face"),
        (("PHOTO",), {"face": -1}, ValueError, "face"),
        (("PHOTO",), {"modality": 1.5}, TypeError, "modality"),
        (("PHOTO",), {"modality": "oil"}, ValueError, "modality"),
        (("PHOTO",), {"reference": 12}, TypeError, "reference"),
        (("PHOTO",), {"min_face": "3"}, TypeError, "min_face"),
        (("PHOTO",), {"min_face": 0}, ValueError, "min_face"),
        (("PHOTO",), {"moves": [(1, 2)]}, TypeError, "moves"),
        (("PHOTO",), {"landmarks": "points"}, TypeError, "landmarks"),
        (("PHOTO",), {"landmarks": np.zeros((5, 2))}, ValueError, "landmarks"),
        (("PHOTO",), {"smile": "wide"}, TypeError, "smile"),
        (("PHOTO",), {"smile": None}, TypeError, "smile"),
        (("PHOTO",), {"grin": 1.0}, ValueError, "grin"),
    ],
)
def test_wrong_arguments_to_edit_name_the_parameter(lite_model, london_photo, args, kwargs, error, name) -> None:
    args = tuple(str(london_photo("005", "neutral")) if a == "PHOTO" else a for a in args)
    with pytest.raises(error, match=name):
        lite_model.edit(*args, **kwargs)
    if name == "photo":  # edit_many reports the photo and goes on
        (outcome,) = lite_model.edit_many([args[0]], **kwargs)
        assert isinstance(outcome.error, error) and name in str(outcome.error) and outcome.image is None
    else:  # and checks the options at once, before any photo
        with pytest.raises(error, match=name):
            lite_model.edit_many([args[0]], **kwargs)


def test_other_entry_points_check_their_arguments(lite_model, detector, tmp_path) -> None:
    with pytest.raises(TypeError, match="source"):
        load_image(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="source"):
        detector.detect(12)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="min_face"):
        detector.detect(Image.new("RGB", (64, 64)), min_face=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="face"):
        detector.landmarks(LONDON_DIR / "005_neutral.jpg", face="0")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pretrained_model_name_or_path"):
        PortraitGAN.from_pretrained(12)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="photos"):
        lite_model.edit_many("one.jpg")
    with pytest.raises(TypeError, match="images"):
        lite_model.generate(None, np.zeros((256, 256)), "photo")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="landmark_maps"):
        lite_model.generate(Image.new("RGB", (256, 256)), "map", "photo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="modality"):
        lite_model.generate(Image.new("RGB", (256, 256)), np.zeros((256, 256)), 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="landmarks"):
        ExpressionControls(smile=0.5).apply("points")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="quality"):
        save_photo(Image.new("RGB", (8, 8)), tmp_path / "x.jpg", quality=0)
    with pytest.raises(TypeError, match="quality"):
        save_photo(Image.new("RGB", (8, 8)), tmp_path / "x.jpg", quality=9.5)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())
