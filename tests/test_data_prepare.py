"""``train.prepare`` end to end on the 4-identity London subset: crops, landmarks, modalities, split,
failure report, resume, and a run killed with SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from portraitgan_hub.faces.landmarks import LandmarkDetector
from train.prepare import PrepareConfig, parse_args, prepare

ASSETS = Path(__file__).parent / "assets" / "london_subset"
REPO = Path(__file__).resolve().parents[1]
IDS = ("001", "005", "006", "017")


def _source_with_bad_files(root: Path) -> Path:
    """The asset subset plus a truncated JPEG, a text file named .jpg and a photo without a face."""
    src = root / "src"
    shutil.copytree(ASSETS, src)
    data = (ASSETS / "neutral" / "001.jpg").read_bytes()
    (src / "neutral" / "901.jpg").write_bytes(data[: len(data) // 3])
    (src / "smiling" / "902.jpg").write_text("this is not an image")
    gradient = np.linspace(0, 255, 450 * 450 * 3).reshape(450, 450, 3).astype(np.uint8)
    Image.fromarray(gradient).save(src / "neutral" / "903.jpg", quality=90)
    return src


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    root = tmp_path_factory.mktemp("prepare")
    src = _source_with_bad_files(root)
    out = root / "out"
    config = PrepareConfig(str(src), str(out), source="london", size=128, val_fraction=0.25, seed=3, workers=2)
    summary = prepare(config, progress=False)
    return out, summary, src


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_manifest_counts_split_and_files(prepared: tuple[Path, dict, Path]) -> None:
    out, summary, _ = prepared
    rows = _rows(out)
    assert len(rows) == 4 * 2 * 3 and summary["rows"] == 24
    assert {r["identity"] for r in rows} == set(IDS)
    assert {(r["modality"]) for r in rows} == {"photo", "sketch", "cartoon"}
    for row in rows:
        assert set(row) == {"identity", "expression", "modality", "split", "path", "landmarks"} | {
            "context_path",
            "context_size",
        }
        with Image.open(out / row["path"]) as image:
            assert image.size == (128, 128) and image.mode == "RGB"
        assert row["path"] == f"{row['modality']}/{row['identity']}_{row['expression']}.png"
        assert row["context_path"] == f"context/{row['path']}" and row["context_size"] == 192
        with Image.open(out / row["context_path"]) as image:
            assert image.size == (192, 192) and image.mode == "RGB"
    split_of = {}
    for row in rows:
        assert split_of.setdefault(row["identity"], row["split"]) == row["split"], "an identity in both splits"
    assert sorted(split_of.values()).count("val") >= 1 and "train" in split_of.values()
    config = json.loads((out / "prepare_config.json").read_text())
    assert config["size"] == 128 and config["modalities"] == ["sketch", "cartoon"]
    card = (out / "README.md").read_text()
    assert "CC-BY 4.0" in card and "doi:10.6084/m9.figshare.5047666.v5" in card
    assert "python -m train.prepare --source london" in card


def test_context_crop_is_the_face_crop_with_its_surroundings(prepared: tuple[Path, dict, Path]) -> None:
    """Issue #12: the context crop has the face crop in its middle, at the same scale, and a stylized
    context crop is the whole wider picture restyled (no crop box inside it)."""
    out, _, _ = prepared
    rows = [r for r in _rows(out) if r["identity"] == "001" and r["expression"] == "neutral"]
    by_modality = {r["modality"]: r for r in rows}
    with (
        Image.open(out / by_modality["photo"]["path"]) as crop,
        Image.open(out / by_modality["photo"]["context_path"]) as context,
    ):
        face = np.asarray(crop, np.float32)
        middle = np.asarray(context, np.float32)[32:160, 32:160]
    assert np.abs(face - middle).mean() < 4.0  # same pixels up to resampling
    with Image.open(out / by_modality["sketch"]["context_path"]) as sketch:
        grey = np.asarray(sketch, np.int16)
    assert (grey.max(axis=2) - grey.min(axis=2)).max() <= 1  # a sketch everywhere, not only on the face
    rims = [grey[:4], grey[-4:], grey[:, :4], grey[:, -4:]]
    assert min(float(rim.mean()) for rim in rims) > 100, "no black fill where the crop passes the photo's edge"


def test_context_crop_is_stylized_with_the_face_crops_strokes(prepared: tuple[Path, dict, Path]) -> None:
    """The stylizers' filters follow the face's scale, not the canvas: the middle of a stylized
    context crop is the stylized face crop (a 1.5x wider canvas drawn with 1.5x wider filters was not).
    Shown on the sketch; the cartoon's palette is chosen per picture, so its crops differ anyway."""
    from train.stylize import get_stylizer

    modality = "sketch"
    out, _, _ = prepared
    rows = [r for r in _rows(out) if r["identity"] == "001" and r["expression"] == "neutral"]
    by_modality = {r["modality"]: r for r in rows}
    with (
        Image.open(out / by_modality[modality]["path"]) as crop,
        Image.open(out / by_modality[modality]["context_path"]) as context,
    ):
        face = np.asarray(crop, np.float32)[16:-16, 16:-16]  # away from the crop's edge, where filters differ
        middle = np.asarray(context, np.float32)[48:144, 48:144]
    with Image.open(out / by_modality["photo"]["context_path"]) as photo:
        canvas_scaled = np.asarray(get_stylizer(modality)(photo.convert("RGB")), np.float32)[48:144, 48:144]
    # The crops differ by resampling alone (about 4 levels); the canvas-scaled strokes twice as much.
    assert np.abs(face - middle).mean() < 0.75 * np.abs(face - canvas_scaled).mean()


def test_landmarks_are_in_crop_coordinates(prepared: tuple[Path, dict, Path]) -> None:
    out, _, _ = prepared
    detector = LandmarkDetector()
    for row in _rows(out):
        if row["modality"] != "photo":
            continue
        stored = np.asarray(row["landmarks"], np.float32)
        assert stored.shape == (68, 2) and (stored > 0).all() and (stored < 128).all()
        sidecar = json.loads((out / "landmarks" / f"{row['identity']}_{row['expression']}.json").read_text())
        assert sidecar["landmarks"] == row["landmarks"]
        found = detector.landmarks(out / row["path"])
        inter_ocular = np.linalg.norm(stored[36:42].mean(0) - stored[42:48].mean(0))
        assert np.linalg.norm(found - stored, axis=1).mean() < 0.06 * inter_ocular


def test_bad_photos_are_reported_not_fatal(prepared: tuple[Path, dict, Path]) -> None:
    out, summary, _ = prepared
    failures = json.loads((out / "failures.json").read_text())
    assert summary["failures"] == 3
    by_id = {f["identity"]: f for f in failures}
    assert set(by_id) == {"901", "902", "903"}
    assert by_id["901"]["error"] == by_id["902"]["error"] == "ImageLoadError"
    assert by_id["903"]["error"] == "NoFaceError"
    assert all(f["message"] and f["path"].endswith(".jpg") for f in failures)


def test_stylized_modalities_differ(prepared: tuple[Path, dict, Path]) -> None:
    out, _, _ = prepared

    def load(modality: str) -> np.ndarray:
        return np.asarray(Image.open(out / modality / "005_smiling.png"), np.float32)

    photo, sketch, cartoon = load("photo"), load("sketch"), load("cartoon")
    assert np.abs(photo - sketch).mean() > 30
    assert np.abs(photo - cartoon).mean() > 5
    assert np.abs(sketch - cartoon).mean() > 30


def test_rerun_rewrites_nothing(prepared: tuple[Path, dict, Path]) -> None:
    out, _, src = prepared
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    config = PrepareConfig(str(src), str(out), source="london", size=128, val_fraction=0.25, seed=3, workers=2)
    summary = prepare(config, progress=False)
    assert summary["skipped"] == 4 * 2 and summary["processed"] == 3  # the 3 bad photos are retried
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert after == before
    with pytest.raises(ValueError, match="size"):
        prepare(PrepareConfig(str(src), str(out), source="london", size=64, workers=1), progress=False)


def test_style_network_and_real_modalities_in_the_generic_layout(tmp_path: Path) -> None:
    from train.style_network import StyleNetworkConfig, TransformerNet, save_style_network

    src = tmp_path / "src"
    for expression in ("neutral", "smiling"):
        photo = Image.open(ASSETS / expression / "006.jpg")
        (src / "ann" / "painting").mkdir(parents=True, exist_ok=True)
        photo.save(src / "ann" / f"{expression}.jpg")
        photo.quantize(8).convert("RGB").save(src / "ann" / "painting" / f"{expression}.png")
    net_path = tmp_path / "toy.safetensors"
    save_style_network(TransformerNet(StyleNetworkConfig(channels=4)), net_path)
    argv = [str(src), str(tmp_path / "out"), "--size", "64", "--modalities", "sketch", "--workers", "1"]
    config = parse_args([*argv, "--style", f"toy={net_path}", "--val-fraction", "0"])
    assert config.styles == {"toy": str(net_path)} and config.source == "auto"
    prepare(config, progress=False)
    rows = _rows(tmp_path / "out")
    assert sorted({r["modality"] for r in rows}) == ["painting", "photo", "sketch", "toy"]
    assert len(rows) == 2 * 4 and {r["split"] for r in rows} == {"train"}
    photo = np.asarray(Image.open(tmp_path / "out" / "photo" / "ann_neutral.png"), np.float32)
    painting = np.asarray(Image.open(tmp_path / "out" / "painting" / "ann_neutral.png"), np.float32)
    assert np.abs(photo - painting).mean() < 20, "a real modality is cropped with the photo's alignment"


def test_killed_run_leaves_whole_files_and_resumes(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    shutil.copytree(ASSETS, src)
    command = [sys.executable, "-m", "train.prepare", str(src), str(out), "--size", "96", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("photo/*.png")) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert not (out / "manifest.jsonl").exists(), "the run finished before it could be killed"
    for path in out.rglob("*"):
        if path.is_file() and not path.name.endswith(".tmp"):
            if path.suffix == ".png":
                with Image.open(path) as image:
                    image.load()
            elif path.suffix == ".json":
                json.loads(path.read_text())
    summary = prepare(PrepareConfig(str(src), str(out), size=96, workers=1), progress=False)
    assert summary["rows"] == 4 * 2 * 3 and summary["failures"] == 0
    assert summary["processed"] >= 1, "the killed run should have left work to do"
    assert not list(out.rglob("*.tmp"))
