"""``train.pack_data``: a smaller copy of a prepared folder that trains like it, and the prepared GPU
session (``train/gpu_session.sh``) run on the CPU on a packed folder (slow-marked)."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from portraitgan_hub import PortraitGAN
from train.dataset import PairedPortraitDataset, achromatic_modalities, read_manifest
from train.pack_data import PackTooLargeError, main, pack
from train.prepare import PrepareConfig, prepare

ROOT = Path(__file__).resolve().parents[1]
ASSETS = Path(__file__).parent / "assets" / "london_subset"
MODALITIES = ["photo", "sketch", "cartoon"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pack") / "prepared"
    config = PrepareConfig(str(ASSETS), str(out), size=64, context_scale=3.0, val_fraction=0.25, workers=2)
    prepare(config, progress=False)
    return out


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def _without_paths(row: dict) -> dict:
    return {k: v for k, v in row.items() if "path" not in k}


def test_the_packed_copy_keeps_every_image_and_trains_like_the_folder(prepared: Path, tmp_path: Path) -> None:
    packed = tmp_path / "packed"
    size = pack(prepared, packed, progress=False)
    original, copy = read_manifest(prepared), read_manifest(packed)
    assert len(copy) == len(original) and size < sum(f.stat().st_size for f in prepared.rglob("*") if f.is_file())
    for before, after in zip(original, copy):
        assert _without_paths(before) == _without_paths(after)
        for key in ("path", "context_path"):
            a, b = _pixels(prepared / before[key]), _pixels(packed / after[key])
            assert a.shape == b.shape
            if before["modality"] == "photo":  # JPEG at quality 95: about a grey level
                assert after[key].endswith(".jpg") and np.abs(a - b).mean() < 2.0
            else:  # lossless: the prepared pixels exactly
                assert after[key].endswith(".webp") and np.array_equal(a, b)
    assert achromatic_modalities(packed, MODALITIES) == achromatic_modalities(prepared, MODALITIES) == ["sketch"]
    dataset = PairedPortraitDataset(packed, MODALITIES, split="train", context_ratio=1.0)
    sample = dataset[0]
    assert sample["image_a"].shape == (3, 64, 64) and -1 <= float(sample["image_a"].min())
    assert (packed / "prepare_config.json").is_file()


def test_a_pack_over_the_size_limit_or_onto_a_folder_leaves_nothing(prepared: Path, tmp_path: Path) -> None:
    with pytest.raises(PackTooLargeError, match="MiB"):
        pack(prepared, tmp_path / "small", max_mib=0.01, progress=False)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "taken").mkdir()
    assert main([str(prepared), str(tmp_path / "taken"), "--no-progress"]) == 2
    assert list((tmp_path / "taken").iterdir()) == []
    (tmp_path / "mine.partial").mkdir()  # a folder of the user's that happens to have the temporary name
    (tmp_path / "mine.partial" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="mine.partial"):
        pack(prepared, tmp_path / "mine", progress=False)
    assert (tmp_path / "mine.partial" / "keep.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="inside"):
        pack(prepared, prepared / "packed", progress=False)
    with pytest.raises(ValueError, match="above 0"):
        pack(prepared, tmp_path / "negative", max_mib=-1, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.partial", "taken"]


@pytest.mark.slow
def test_the_gpu_session_trains_its_arms_and_packs_them_at_a_common_step(prepared: Path, tmp_path: Path) -> None:
    """Two arms of lite-u at 64 px for 4 steps on the CPU come back as loadable generators; a third,
    broken arm fails the session without costing the others theirs."""
    packed = tmp_path / "packed"
    pack(prepared, packed, progress=False)
    out = tmp_path / "out"
    small = "model.image_size=64 objective.texture_image_size=32"
    arms = ["R=", "M=model.mouth_discriminator=false", "X=model.no_such_field=1"]
    command = ["bash", "train/gpu_session.sh", str(packed), str(out), "5", "4", *arms]
    result = subprocess.run([*command, "--", *small.split()], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1 and "arms X exported nothing" in result.stderr, result.stdout + result.stderr
    assert "arms exported at step 4 of 4" in (out / "session.log").read_text()
    assert sorted(p.name for p in out.glob("*.tar.gz")) == ["M.tar.gz", "R.tar.gz"]
    for name in ("R", "M"):
        with tarfile.open(out / f"{name}.tar.gz") as packed_arm:
            packed_arm.extractall(tmp_path / name, filter="data")
        model = PortraitGAN.from_pretrained(str(tmp_path / name / "model"))
        assert model.config.skip_connections and model.config.image_size == 64
        run = json.loads((tmp_path / name / "run.json").read_text())
        assert run["torch_threads"] == 2  # the run's settings travel with it (optim.threads=2)
        assert model.config.mouth_discriminator is (name == "R")


def test_the_gpu_session_fails_clearly_on_bad_data_or_a_bad_arm(prepared: Path, tmp_path: Path) -> None:
    session = ["bash", "train/gpu_session.sh"]
    result = subprocess.run(
        [*session, str(tmp_path), str(tmp_path / "o"), "1", "2", "R="], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2 and "not a train.prepare folder" in result.stderr
    bad = [*session, str(prepared), str(tmp_path / "out"), "1", "2", "R=model.no_such_field=1"]
    result = subprocess.run(bad, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "arms R exported nothing" in result.stderr
    assert (
        "R: error: unknown training config keys: model.no_such_field" in (tmp_path / "out" / "session.log").read_text()
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["7m", "4", "R="], "MINUTES must be a positive number, got '7m'"),
        (["0", "4", "R="], "MINUTES must be a positive number"),
        (["1", "0", "R="], "STEPS must be a positive whole number"),
        (["1", "4", "R=", "R=model.mouth_discriminator=false"], "two arms are named 'R'"),
        (["1", "4", "R"], "an arm is NAME=OVERRIDES"),
        (["1", "4", "--", "model.image_size=64"], "no arm given"),
    ],
)
def test_the_gpu_session_refuses_bad_arguments_before_it_starts(
    prepared: Path, tmp_path: Path, arguments: list[str], message: str
) -> None:
    command = ["bash", "train/gpu_session.sh", str(prepared), str(tmp_path / "out"), *arguments]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "out").exists()
