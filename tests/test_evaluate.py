"""``train/evaluate.py`` on the prepared London subset (64 px) with a tiny random model, the
thin-plate-spline and piecewise-affine warp baselines, mouth SSIM, and no-op fidelity at full
resolution. The identity descriptors and the metrics are in test_evaluate_metrics.py, the gates and
the report in test_evaluate_report.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_train_config import prepare_london

from portraitgan_hub import PortraitGAN, PortraitGANConfig
from portraitgan_hub.editor import FaceEditor
from portraitgan_hub.faces.alignment import template_in_crop
from portraitgan_hub.faces.expressions import apply_expression, move_points
from portraitgan_hub.image_tensors import pil_to_tensor
from portraitgan_hub.warp_guidance import warp_guidance
from train.dataset import PairedPortraitDataset, read_manifest
from train.evaluation.cli import main, parse_args
from train.evaluation.evaluator import Evaluator
from train.evaluation.gates import gates
from train.evaluation.no_op import no_op_evaluation, no_op_fidelity
from train.evaluation.pairs import METHODS, EvaluationConfig, build_pairs
from train.evaluation.piecewise_affine import _orientation, anchor_points, piecewise_affine_warp, triangulation
from train.evaluation.run import evaluate
from train.metrics import mouth_window, mse, ssim

SIZE = 64


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_london(tmp_path_factory)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = PortraitGANConfig(
        image_size=SIZE,
        base_channels=4,
        max_channels=16,
        num_residual_blocks=1,
        landmark_line_width=1,
        warp_guided=True,
    )
    folder = tmp_path_factory.mktemp("tiny_model")
    PortraitGAN(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def evaluation(data_dir: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("evaluation")
    config = EvaluationConfig(str(tiny_model), str(data_dir), out=str(out), best_worst=1, progress=False)
    with pytest.MonkeyPatch.context() as patch:  # the no-op fidelity must not go through edit()
        patch.setattr(FaceEditor, "edit", _no_edit_allowed)
        patch.setattr(PortraitGAN, "edit", _no_edit_allowed)
        return evaluate(config), out


def _no_edit_allowed(*args, **kwargs):
    raise AssertionError("the evaluation called edit(), which returns a no-op edit's photo unchanged")


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
    header = "| metric | PortraitGAN | TPS warp | piecewise-affine warp | no edit |"
    sections = [
        "## neutral->smiling",
        "## smiling->neutral",
        "## modality translation",
        "## photo->sketch",
        "## photo->cartoon",
        "## No-op fidelity (full resolution)",
        "## Gates",
    ]
    positions = [table.index(section) for section in sections]
    assert positions == sorted(positions)  # the task tables, then no-op fidelity, then the gates
    assert table.count(header) == 5  # one table per task
    for row in ("| MSE↓ |", "| SSIM↑ |", "| mouth SSIM↑ |", "| NME↓ |", "| identity distance↓ |"):
        assert table.count(row) == 5, row
    assert "| photo | size | PSNR in face box (dB)↑ | detail ratio↑ |" in table
    assert "| gate | value | threshold | result |" in table
    assert result["gates"] == gates(result) and len(result["gates"]) == 10
    for gate in result["gates"]:
        assert f"| {gate['name']} |" in table
    with Image.open(out / "best_worst.png") as grid:  # per direction best 1 (= worst): 2 rows, 6 columns
        assert grid.width > 6 * SIZE and 2 * SIZE < grid.height < 3 * SIZE
    assert not list(out.glob(".*.tmp"))


def test_both_expression_directions_are_separate_tasks(evaluation) -> None:
    result, _ = evaluation
    forward = {(r["input"], r["target"]) for r in result["pairs"] if r["task"] == "neutral->smiling"}
    backward = {(r["target"], r["input"]) for r in result["pairs"] if r["task"] == "smiling->neutral"}
    assert forward and forward == backward
    assert result["means"]["neutral->smiling"] != result["means"]["smiling->neutral"]
    for record in result["pairs"]:
        if record["kind"] == "expression":
            a, b = (record[key].split("/")[-1].split("_")[1] for key in ("input", "target"))
            assert record["task"] == f"{a.removesuffix('.png')}->{b.removesuffix('.png')}"


def test_tps_warp_is_the_warp_guided_generators_warp(data_dir: Path, tiny_model: Path, evaluation) -> None:
    model = PortraitGAN.from_pretrained(tiny_model)
    loader = PairedPortraitDataset(data_dir, model.config.modalities, split="val", image_size=SIZE, flip_probability=0)
    pairs = build_pairs(loader.rows, model.config.modalities, EvaluationConfig("", ""))
    batch = Evaluator(model, loader).outputs(pairs)
    source, target = (torch.from_numpy(np.stack(batch[k])) for k in ("points_a", "points_b"))
    expected = warp_guidance(batch["inputs"], source, target).warped
    assert torch.allclose(batch["tps_warp"], expected, atol=1e-6)
    moved = [i for i, p in enumerate(pairs) if p.kind == "expression"]
    assert moved and all((batch["tps_warp"][i] - batch["inputs"][i]).abs().max() > 0.1 for i in moved)
    result, _ = evaluation
    for record in result["pairs"]:
        tps, baseline = record["methods"]["tps_warp"], record["methods"]["no_edit"]
        if record["kind"] == "modality":  # same landmarks: the spline is the identity
            assert tps["mse"] == pytest.approx(baseline["mse"], abs=1e-6)
            assert tps["ssim"] == pytest.approx(baseline["ssim"], abs=1e-4)
    expression = result["means"]["neutral->smiling"]
    if expression["tps_warp"]["nme"] is not None:
        assert expression["tps_warp"]["nme"] < expression["no_edit"]["nme"]


def test_mouth_ssim_uses_one_window_of_the_target_landmarks_for_every_method(evaluation, data_dir: Path) -> None:
    result, _ = evaluation
    rows = {row["path"]: row for row in read_manifest(data_dir)}
    for record in result["pairs"]:
        x0, y0, x1, y1 = record["mouth_window"]
        assert [x0, y0, x1, y1] == list(mouth_window(np.asarray(rows[record["target"]]["landmarks"]), SIZE))
        image_a, image_b = (pil_to_tensor(Image.open(data_dir / record[key])) for key in ("input", "target"))
        crop = (..., slice(y0, y1), slice(x0, x1))
        assert record["methods"]["no_edit"]["mouth_ssim"] == pytest.approx(ssim(image_a[crop], image_b[crop]).item())
        for method in METHODS:
            assert -1 <= record["methods"][method]["mouth_ssim"] <= 1
    for by_method in result["means"].values():
        assert all("mouth_ssim" in summary for summary in by_method.values())


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
    only = ["--pairs", "neutral:smiling", "--no-modality-translation"]
    assert main([*base, "--out", str(tmp_path), *only, "--no-op-photos", "0"]) == 0
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert {record["task"] for record in result["pairs"]} == {"neutral->smiling"}
    assert set(result["means"]) == {"neutral->smiling"}
    assert result["config"]["no_op_photos"] == 0 and result["no_op"]["evaluated"] == 0
    assert "Not measured (`--no-op-photos 0`)" in (tmp_path / "metrics.md").read_text()
    no_op_gates = [g for g in result["gates"] if g["name"].startswith("no-op")]
    assert len(no_op_gates) == 2 and all(g["passed"] is None for g in no_op_gates)  # not evaluated, not passed
    assert not any("sketch" in g["name"] or "cartoon" in g["name"] for g in result["gates"])
    assert "gates pass" in capsys.readouterr().out
    assert parse_args(base).no_op_photos == EvaluationConfig("", "").no_op_photos == 8
    assert parse_args([*base, "--no-op-photos", "3"]).no_op_photos == 3
    with pytest.raises(SystemExit):
        parse_args([*base, "--no-op-photos", "-1"])
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


# --- no-op fidelity of the whole edit path ---------------------------------------------------------------
def _constant_model(mask_logit: float) -> PortraitGAN:
    """A 64 px model whose G returns ``A * input + (1 - A) * grey`` with A = sigmoid(``mask_logit``) everywhere:
    +20 copies the photo (A = 1 in float32), -20 paints the face mid grey."""
    config = PortraitGANConfig(
        image_size=SIZE, base_channels=4, max_channels=16, num_residual_blocks=1, attention_mask=True
    )
    model = PortraitGAN(config)
    with torch.no_grad():
        for head in (model.generator.to_rgb[-1], *(branch[-1] for branch in model.generator.aux_to_rgb)):
            head.weight.zero_()
            head.bias.copy_(torch.tensor([0.0, 0.0, 0.0, mask_logit]))
    return model


def test_no_op_fidelity_goes_through_render_and_compose_not_edit(london_photo, monkeypatch) -> None:
    monkeypatch.setattr(FaceEditor, "edit", _no_edit_allowed)
    monkeypatch.setattr(PortraitGAN, "edit", _no_edit_allowed)
    photo = london_photo("005", "neutral")
    copying = no_op_fidelity(_constant_model(20.0), photo)
    assert copying["psnr"] == float("inf") and copying["detail_ratio"] == pytest.approx(1.0)
    with Image.open(photo) as stored:
        assert copying["size"] == list(stored.size)
    left, top, right, bottom = copying["face_box"]
    assert 0 <= left < right <= copying["size"][0] and 0 <= top < bottom <= copying["size"][1]
    assert (right - left) > 0.2 * copying["size"][0]  # the face, not a sliver
    painting = no_op_fidelity(_constant_model(-20.0), photo)  # the result really is G's, composed into the photo
    assert painting["face_box"] == copying["face_box"]
    assert painting["psnr"] < 25 and painting["detail_ratio"] < 0.5


def test_no_op_fidelity_of_the_evaluation_run(evaluation, data_dir: Path) -> None:
    result, _ = evaluation
    no_op = result["no_op"]
    photos = [row["path"] for row in read_manifest(data_dir) if row["split"] == "val" and row["modality"] == "photo"]
    assert no_op["requested"] == 8 and no_op["evaluated"] == len(photos) == 2 and not no_op["skipped"]
    assert [p["input"] for p in no_op["photos"]] == photos
    for photo in no_op["photos"]:
        assert Path(photo["source"]).is_file() and photo["size"] == [450, 450]  # the original, not the crop
        assert 0 < photo["psnr"] < 100 and photo["detail_ratio"] > 0
    assert no_op["psnr"] == pytest.approx(np.mean([p["psnr"] for p in no_op["photos"]]))
    by_name = {g["name"]: g for g in result["gates"]}
    assert by_name["no-op: PSNR in the face box ≥ 40 dB"]["value"] == no_op["psnr"]
    assert by_name["no-op: detail ratio ≥ 0.8"]["value"] == no_op["detail_ratio"]


def test_no_op_fidelity_skips_photos_whose_original_is_missing(data_dir: Path, tmp_path: Path, capsys) -> None:
    rows = [row for row in read_manifest(data_dir) if row["split"] == "val" and row["modality"] == "photo"]
    (tmp_path / "landmarks").mkdir()
    stem = Path(rows[0]["path"]).stem
    (tmp_path / "landmarks" / f"{stem}.json").write_text((data_dir / "landmarks" / f"{stem}.json").read_text())
    config = json.loads((data_dir / "prepare_config.json").read_text())
    (tmp_path / "prepare_config.json").write_text(json.dumps({**config, "source_dir": str(tmp_path / "gone")}))
    model = _constant_model(20.0)
    result = no_op_evaluation(model, tmp_path, rows, limit=5)
    assert result["evaluated"] == 0 and result["psnr"] is None and result["requested"] == 5
    reasons = [s["reason"] for s in result["skipped"]]
    assert [s["input"] for s in result["skipped"]] == [row["path"] for row in rows]
    assert "not found" in reasons[0] and "gone" in reasons[0] and "is missing" in reasons[1]
    assert capsys.readouterr().err.count("note: no-op fidelity skips") == len(rows)
    assert no_op_evaluation(model, tmp_path, rows, limit=0)["skipped"] == []  # 0: nothing asked for
    statuses = [g["passed"] for g in gates({"pairs": [], "no_op": result}) if g["name"].startswith("no-op")]
    assert statuses == [None, None]  # skipped: not evaluated, and not passed
