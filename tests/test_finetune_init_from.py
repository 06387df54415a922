"""Starting a fine-tune (issue #16): ``model.init_from`` from a folder or, offline, a Hub id and
revision, and what it refuses; its command-line options and the shipped ``finetune.yaml``;
``train.prepare`` on the generic pair layout; the exact resume of a fine-tune.

The helpers and the module fixtures (``london``, ``style``) are test_finetune.py's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import test_finetune
import torch
import yaml
from PIL import Image
from test_finetune import finetune_config
from test_train_config import CONFIGS
from test_train_loop import _fresh_accelerate, _one_thread  # noqa: F401  (autouse fixtures, shared)

from portraitgan_hub import DEFAULT_MODEL
from portraitgan_hub.errors import CheckpointError
from train.example_style import watercolour
from train.finetune import ConfigConflictError, start_from_checkpoint
from train.setup import reset_accelerate_state
from train.train import parse_args, train
from train.training_config import load_config

REPO = Path(__file__).resolve().parents[1]
#: test_finetune.py's module fixtures, which pytest finds here by name (imported, they would read as unused).
london, style = test_finetune.london, test_finetune.style


# --- init_from ------------------------------------------------------------------------------------------
def test_contradicting_model_fields_are_refused(style: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigConflictError, match=r"model\.image_size = 128 contradicts"):
        start_from_checkpoint(finetune_config(style, tmp_path, "model.image_size=128"))
    with pytest.raises(ConfigConflictError, match=r"model\.modalities"):
        start_from_checkpoint(finetune_config(style, tmp_path, "model.modalities=[sketch, photo, cartoon]"))
    with pytest.raises(ValueError, match="model.preset and model.init_from"):
        finetune_config(style, tmp_path, "model.preset=lite")
    # agreeing fields and an extended modality list are fine
    start = start_from_checkpoint(
        finetune_config(style, tmp_path, "model.warp_guided=true", "model.modalities=[photo, sketch, cartoon, oil]")
    )
    assert start.added_modalities == ["oil", "watercolour"]
    assert start.config.model.image_size == 256 and start.config.model.warp_guided
    # a field no weight depends on comes from the training config (the edit region's margin)
    start = start_from_checkpoint(finetune_config(style, tmp_path, "model.edit_region_margin=1.5"))
    assert start.model.config.edit_region_margin == 1.5 and start.config.model.edit_region_margin == 1.5
    assert start.model.generator.config.edit_region_margin == 1.5


def test_init_from_a_missing_folder_or_pickle_is_a_checkpoint_error(style: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such folder"):
        start_from_checkpoint(finetune_config(style, tmp_path, f"model.init_from={tmp_path / 'nothing'}"))
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    torch.save({}, pickled / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="pickle"):
        start_from_checkpoint(finetune_config(style, tmp_path, f"model.init_from={pickled}"))


def test_init_from_a_hub_id_offline_from_the_hf_cache(style: Path, tmp_path: Path) -> None:
    from test_hub import _fake_hub_cache

    cache = tmp_path / "hf" / "hub"
    files = {name: Path(DEFAULT_MODEL) / name for name in ("config.json", "model.safetensors")}
    _fake_hub_cache(cache, "someone/london-lite", files, revision="v1")
    code = f"""
import torch
from portraitgan_hub import DEFAULT_MODEL, PortraitGAN
from train.finetune import start_from_checkpoint
from test_finetune import finetune_config
config = finetune_config({str(style)!r}, {str(tmp_path / "run")!r}, "model.init_from=someone/london-lite",
                         "model.init_revision=v1")
start = start_from_checkpoint(config)
base = PortraitGAN.from_pretrained(DEFAULT_MODEL).state_dict()
grown = start.model.state_dict()
# the old rows of every tensor (a skip G's norm tables gain a row), the stem aside (a plane in the middle)
same = all(torch.equal(grown[k][tuple(slice(0, n) for n in v.shape)], v)
           for k, v in base.items() if k != "generator.stem.1.weight")
print("ADDED", start.added_modalities, "SAME", same, "DISC", start.discriminator_state is None)
try:
    start_from_checkpoint(finetune_config({str(style)!r}, "x", "model.init_from=someone/london-lite",
                                          "model.init_revision=v2"))
except Exception as error:
    print("NO-V2", type(error).__name__)
"""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(cache),
        "HF_HOME": str(cache.parent),
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert "ADDED ['watercolour'] SAME True DISC True" in result.stdout, result.stderr
    assert "NO-V2 CheckpointError" in result.stdout, result.stderr


def test_command_line_init_from_and_export_options() -> None:
    args = parse_args(["--config", "c.yaml", "--init_from", "me/model", "--init_revision", "v1", "optim.steps=3"])
    assert args.overrides == [
        "optim.steps=3",
        "model.preset=null",
        "model.init_from=me/model",
        "model.init_revision=v1",
    ]
    with pytest.raises(SystemExit):
        parse_args(["--config", "c.yaml", "--with_discriminators"])
    assert parse_args(["--export", "a", "b", "--with_discriminators"]).with_discriminators


def test_shipped_finetune_config_is_a_short_schedule() -> None:
    config = load_config(CONFIGS / "finetune.yaml")
    lite = load_config(CONFIGS / "lite.yaml")
    assert config.init_from == "portraitgan_hub/pretrained/london-lite" and config.model_preset is None
    assert config.optim.lr <= lite.optim.lr and config.optim.steps < lite.optim.steps / 10
    assert config.model_fields_given == () and not config.allow_random_vgg


# --- bringing pairs: the generic layout ----------------------------------------------------------------
def test_prepare_reads_style_pairs_of_the_generic_layout_and_reports_unpaired_images(tmp_path: Path) -> None:
    """``<id>/<expression>.jpg`` + ``<id>/watercolour/<expression>.jpg``: the style images are cropped
    with their photo's alignment and share its landmarks; a style image without a photo, and a photo
    without a style image, are reported and the rest is prepared."""
    from train.prepare import PrepareConfig, prepare

    assets = REPO / "tests" / "assets" / "london_subset"
    src = tmp_path / "src"
    for identity in ("006", "017"):
        (src / identity / "watercolour").mkdir(parents=True)
        for expression in ("neutral", "smiling"):
            with Image.open(assets / expression / f"{identity}.jpg") as photo:
                if (identity, expression) != ("017", "smiling"):  # no photo: reported as NoPhoto
                    photo.save(src / identity / f"{expression}.jpg")
                if (identity, expression) != ("017", "neutral"):  # a photo without its watercolour
                    watercolour(photo).save(src / identity / "watercolour" / f"{expression}.jpg")
    out = tmp_path / "out"
    summary = prepare(PrepareConfig(str(src), str(out), size=64, modalities=[], workers=1), progress=False)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted((r["identity"], r["expression"], r["modality"]) for r in rows) == [
        ("006", "neutral", "photo"),
        ("006", "neutral", "watercolour"),
        ("006", "smiling", "photo"),
        ("006", "smiling", "watercolour"),
        ("017", "neutral", "photo"),
    ]
    by_key = {(r["identity"], r["expression"], r["modality"]): r for r in rows}
    assert by_key["006", "smiling", "watercolour"]["landmarks"] == by_key["006", "smiling", "photo"]["landmarks"]
    assert len(by_key["006", "smiling", "photo"]["landmarks"]) == 68
    failures = json.loads((out / "failures.json").read_text())
    assert [(f["identity"], f["expression"], f["error"]) for f in failures] == [("017", "smiling", "NoPhoto")]
    assert summary["unpaired"] == {"watercolour": 1}
    assert "Photos without a `watercolour` image: 1 (017_neutral)" in (out / "README.md").read_text()


def test_a_finetune_resumes_exactly(style: Path, tmp_path: Path) -> None:
    """``--resume latest`` of a fine-tune: same growth, the checkpoint's weights, the same losses."""
    whole = train(finetune_config(style, tmp_path / "whole", "checkpoint_every=2", "optim.freeze=[residual]"))
    reset_accelerate_state()
    config = finetune_config(style, tmp_path / "split", "checkpoint_every=2", "optim.freeze=[residual]")
    first = train(config, stop_after_step=2)
    reset_accelerate_state()
    second = train(config, resume="latest")
    losses = [h["g/total"] for h in first.history + second.history]
    assert losses == [h["g/total"] for h in whole.history]
    saved = yaml.safe_load((tmp_path / "split" / "checkpoints" / "step-0000004" / "training_config.yaml").read_text())
    assert saved["model"]["init_from"] == DEFAULT_MODEL and saved["model"]["modalities"][-1] == "watercolour"
