"""``train/evaluate.py`` on the prepared London subset (64 px) with a tiny random model, the
piecewise-affine warp baseline and dlib identity descriptors on the real asset photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from test_train_config import prepare_london

from portraitgan_hub import PortraitGAN, PortraitGANConfig
from portraitgan_hub.errors import FaceRecognitionModelNotFoundError
from portraitgan_hub.faces import model_files
from portraitgan_hub.faces.alignment import template_in_crop
from portraitgan_hub.faces.expressions import apply_expression, move_points
from portraitgan_hub.faces.identity import (
    FACE_RECOGNITION_MODEL_ENV,
    SAME_PERSON_THRESHOLD,
    descriptor_distance,
    face_descriptor,
    find_face_recognition_model,
)
from portraitgan_hub.faces.landmarks import default_detector
from portraitgan_hub.faces.warp import _orientation, anchor_points, piecewise_affine_warp, triangulation
from portraitgan_hub.model import pil_to_tensor
from train.dataset import read_manifest
from train.evaluate import METHODS, EvaluationConfig, evaluate, main
from train.metrics import grey, laplacian_variance, mean_chroma, mouth_ssim, mouth_window, mse, psnr

SIZE = 64


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_london(tmp_path_factory)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = PortraitGANConfig(
        image_size=SIZE, base_channels=4, max_channels=16, num_residual_blocks=1, landmark_line_width=1
    )
    folder = tmp_path_factory.mktemp("tiny_model")
    PortraitGAN(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def evaluation(data_dir: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("evaluation")
    config = EvaluationConfig(str(tiny_model), str(data_dir), out=str(out), best_worst=1, progress=False)
    return evaluate(config), out


# --- the evaluation run --------------------------------------------------------------------------------
def test_writes_metrics_tables_and_grid_for_every_pair(evaluation, data_dir: Path) -> None:
    result, out = evaluation
    val = [row for row in read_manifest(data_dir) if row["split"] == "val"]
    identities = {row["identity"] for row in val}
    # per person: neutral->smiling, smiling->neutral, and 2 expressions x (sketch, cartoon)
    assert len(result["pairs"]) == 6 * len(identities) > 0
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(result))
    tasks = {record["task"] for record in result["pairs"]}
    assert tasks == {"neutral->smiling", "smiling->neutral", "photo->sketch", "photo->cartoon"}
    assert set(result["means"]) == tasks | {"modality translation"}
    for by_method in result["means"].values():
        assert set(by_method) == set(METHODS)
    for record in result["pairs"]:
        assert set(record["methods"]) == set(METHODS)
    table = (out / "metrics.md").read_text()
    for label in ("## neutral->smiling", "## modality translation", "PortraitGAN", "no edit", "piecewise-affine warp"):
        assert label in table
    assert "| method | MSE↓ | SSIM↑ | NME↓ | identity distance↓ | share under 0.6↑ | no face |" in table
    with Image.open(out / "best_worst.png") as grid:  # best 1 + worst 1 row, 5 columns of 64 px
        assert grid.width > 5 * SIZE and grid.height > 2 * SIZE
    assert not list(out.glob(".*.tmp"))


def test_no_edit_baseline_is_the_input_itself(evaluation, data_dir: Path) -> None:
    result, _ = evaluation
    for record in result["pairs"]:
        baseline = record["methods"]["no_edit"]
        image_a, image_b = (pil_to_tensor(Image.open(data_dir / record[key])) for key in ("input", "target"))
        assert baseline["mse"] == pytest.approx(mse(image_a, image_b).item(), rel=1e-6)
        if record["kind"] == "expression":
            assert baseline["face_found"] and baseline["nme"] > 0  # the expression did not change
        if baseline["face_found"]:
            assert baseline["identity_distance"] == pytest.approx(0.0, abs=1e-9)
        else:
            assert baseline["nme"] is None and baseline["identity_distance"] is None
    for method, summary in result["means"]["neutral->smiling"].items():
        assert 0 <= summary["mse"] <= 1 and -1 <= summary["ssim"] <= 1, method
        assert summary["no_face"] <= summary["pairs"]


def test_warp_moves_towards_the_target_landmarks_and_is_no_edit_without_a_landmark_change(evaluation) -> None:
    result, _ = evaluation
    for record in result["pairs"]:
        warp, baseline = record["methods"]["warp"], record["methods"]["no_edit"]
        if record["kind"] == "modality":  # same landmarks: the warp is the identity
            assert warp["mse"] == pytest.approx(baseline["mse"])
    expression = result["means"]["neutral->smiling"]
    if expression["warp"]["nme"] is not None:
        assert expression["warp"]["nme"] < expression["no_edit"]["nme"]


def test_command_line_pairs_filter_and_errors(data_dir: Path, tiny_model: Path, tmp_path: Path, capsys) -> None:
    base = ["--model", str(tiny_model), "--data", str(data_dir), "--no-progress"]
    assert main([*base, "--out", str(tmp_path), "--pairs", "neutral:smiling", "--no-modality-translation"]) == 0
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert {record["task"] for record in result["pairs"]} == {"neutral->smiling"}
    assert set(result["means"]) == {"neutral->smiling"}
    assert main([*base, "--out", str(tmp_path / "bad"), "--pairs", "happy:sad"]) == 1
    assert "happy" in capsys.readouterr().err and not (tmp_path / "bad").exists()


# --- piecewise-affine warp -----------------------------------------------------------------------------
def test_triangulation_tiles_the_crop_without_folds() -> None:
    triangles = triangulation()
    points = np.vstack([template_in_crop(256), anchor_points(256, 256)])
    areas = np.array([_orientation(points[t]) / 2 for t in triangles])
    assert (areas > 0).all() and areas.sum() == pytest.approx(256 * 256)
    assert set(triangles.ravel()) == set(range(len(points)))  # every landmark and anchor is a vertex


def test_warp_carries_a_dot_from_a_landmark_to_its_target() -> None:
    source = template_in_crop(SIZE)
    target = apply_expression(source, smile=2.0)  # a broad smile: the mouth corners move ~3 px at 64 px
    target = move_points(
        target, {8: (target[8, 0] + 1.0, target[8, 1] + 3.0), 19: (target[19, 0], target[19, 1] - 2.5)}
    )
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    for index in (48, 54, 8, 19):  # mouth corners, chin, right brow
        assert np.linalg.norm(target[index] - source[index]) > 1  # the test moves the point
        dot = np.exp(-((xs - source[index, 0]) ** 2 + (ys - source[index, 1]) ** 2) / (2 * 0.8**2))
        warped = piecewise_affine_warp(dot, source, target)
        centre = np.array([(warped * xs).sum(), (warped * ys).sum()]) / warped.sum()
        assert np.linalg.norm(centre - target[index]) < 1.0


def test_warp_with_unchanged_landmarks_returns_the_image(data_dir: Path) -> None:
    row = next(r for r in read_manifest(data_dir) if r["modality"] == "photo")
    with Image.open(data_dir / row["path"]) as stored:
        picture = stored.convert("RGB")
    points = np.asarray(row["landmarks"])
    same = piecewise_affine_warp(picture, points, points)
    assert isinstance(same, Image.Image) and np.array_equal(np.asarray(same), np.asarray(picture))
    with pytest.raises(ValueError, match="68, 2"):
        piecewise_affine_warp(picture, points[:10], points)


# --- identity descriptors ------------------------------------------------------------------------------
def test_identity_distance_separates_people_on_real_photos(london_photo) -> None:
    def describe(identity: str, expression: str) -> np.ndarray:
        path = london_photo(identity, expression)
        return face_descriptor(path, default_detector().landmarks(path))

    first, other = describe("001", "smiling"), describe("005", "smiling")
    assert first.shape == (128,)
    assert descriptor_distance(first, describe("001", "smiling")) < 1e-6
    assert descriptor_distance(first, other) > SAME_PERSON_THRESHOLD
    assert descriptor_distance(describe("005", "neutral"), other) < SAME_PERSON_THRESHOLD  # one person, two expressions


def test_face_recognition_model_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packaged = find_face_recognition_model()  # the face_recognition_models copy in this environment
    assert packaged.name == "dlib_face_recognition_resnet_model_v1.dat" and packaged.is_file()
    with pytest.raises(FaceRecognitionModelNotFoundError, match="does not exist"):
        find_face_recognition_model(tmp_path / "missing.dat")
    chosen = tmp_path / "mine.dat"
    chosen.write_bytes(b"x")
    monkeypatch.setenv(FACE_RECOGNITION_MODEL_ENV, str(chosen))
    assert find_face_recognition_model() == chosen
    monkeypatch.setenv(FACE_RECOGNITION_MODEL_ENV, str(tmp_path / "gone.dat"))
    monkeypatch.setattr(model_files, "packaged_model", lambda name: tmp_path / "pkg" / name)
    with pytest.raises(FaceRecognitionModelNotFoundError, match="gone.dat.*face_recognition_models"):
        find_face_recognition_model()


# --- metrics of the evaluation: mouth SSIM, PSNR, Laplacian variance, chroma --------------------------
def test_mouth_window_surrounds_the_mouth_inside_the_image() -> None:
    points = template_in_crop(SIZE)
    x0, y0, x1, y1 = mouth_window(points, SIZE)
    assert 0 <= x0 < x1 <= SIZE and 0 <= y0 < y1 <= SIZE
    mouth = points[48:68]
    assert (mouth[:, 0] >= x0).all() and (mouth[:, 0] <= x1 - 1).all()
    assert (mouth[:, 1] >= y0).all() and (mouth[:, 1] <= y1 - 1).all()
    width, height = np.ptp(mouth, axis=0)  # padded by 15 % of the mouth's size on each side
    assert mouth[:, 0].min() - x0 >= 0.15 * width and x1 - 1 - mouth[:, 0].max() >= 0.15 * width
    assert mouth[:, 1].min() - y0 >= 0.15 * height and y1 - 1 - mouth[:, 1].max() >= 0.15 * height
    assert (x1 - x0) < 2 * width and (y1 - y0) < 3 * height  # the mouth, not the face
    for outside in (*range(36, 48), 8, 30):  # eyes, chin, nose tip
        assert not (x0 <= points[outside, 0] < x1 and y0 <= points[outside, 1] < y1), outside
    low = points + [0, SIZE - 1 - points[57, 1]]  # lower lip on the bottom row: clamped to the image
    assert mouth_window(low, SIZE)[3] == SIZE
    assert mouth_window(points * 2, (2 * SIZE, 3 * SIZE)) == mouth_window(points * 2, 2 * SIZE)
    with pytest.raises(ValueError, match="outside"):
        mouth_window(points + 2 * SIZE, SIZE)


def test_mouth_ssim_sees_only_the_mouth() -> None:
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, SIZE, SIZE, generator=generator) * 2 - 1
    points = template_in_crop(SIZE)[None]
    x0, y0, x1, y1 = mouth_window(points[0], SIZE)
    outside, inside = image.clone(), image.clone()
    outside[..., :y0, :] = -1  # everything above the mouth box changes
    inside[..., y0:y1, x0:x1] = -inside[..., y0:y1, x0:x1]
    assert mouth_ssim(image, image, points).item() == pytest.approx(1.0)
    assert mouth_ssim(outside, image, points).item() == pytest.approx(1.0)
    assert mouth_ssim(inside, image, points).item() < 0.5
    both = mouth_ssim(torch.cat([outside, inside]), torch.cat([image, image]), np.repeat(points, 2, axis=0))
    assert both.shape == (2,) and both[0] > 0.99 > both[1]


def test_psnr_of_identical_and_of_known_noise() -> None:
    rng = np.random.default_rng(0)
    photo = rng.integers(10, 245, (40, 30, 3)).astype(np.uint8)
    assert psnr(photo, photo) == float("inf")
    assert psnr(photo, photo.astype(np.int16) + 5) == pytest.approx(10 * np.log10(255**2 / 25))  # 34.15 dB
    signs = np.where(rng.random(photo.shape) < 0.5, -4, 4)  # noise of exactly 4 grey levels: MSE 16
    assert psnr(photo, photo + signs) == pytest.approx(36.09, abs=0.01)  # 10 log10(255² / 16)
    assert psnr(np.zeros(4), np.ones(4), data_range=1.0) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        psnr(photo, photo[:10])


def test_laplacian_variance_of_a_checkerboard_and_of_a_blurred_photo(london_photo) -> None:
    checkerboard = np.indices((10, 12)).sum(axis=0) % 2 * 2.0 - 1  # +-1: Laplacian +-8 everywhere
    assert laplacian_variance(checkerboard) == pytest.approx(64.0)
    assert laplacian_variance(np.full((9, 9), 117.0)) == 0.0
    with Image.open(london_photo("005", "neutral")) as stored:
        photo = stored.convert("RGB").crop((200, 150, 440, 450))
    blurred = photo.filter(ImageFilter.GaussianBlur(1.5))
    sharp = laplacian_variance(grey(np.asarray(photo)))
    assert sharp > 0 and laplacian_variance(grey(np.asarray(blurred))) / sharp < 0.5
    assert grey(np.full((2, 2, 3), 200, np.uint8)) == pytest.approx(np.full((2, 2), 200.0))


def test_mean_chroma_is_zero_for_grey_and_the_channel_spread_in_grey_levels() -> None:
    grey_images = torch.rand(2, 1, 8, 8).expand(-1, 3, -1, -1) * 2 - 1
    assert mean_chroma(grey_images).tolist() == [0.0, 0.0]
    colour = torch.tensor([100.0, 110.0, 130.0])[None, :, None, None].expand(1, 3, 4, 4) / 127.5 - 1
    red = torch.tensor([1.0, -1.0, -1.0])[None, :, None, None].expand(1, 3, 4, 4)
    assert mean_chroma(torch.cat([colour, red])).tolist() == pytest.approx([30.0, 255.0], abs=1e-3)
