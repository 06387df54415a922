"""Training configuration (YAML, base files, dotted overrides), the LR schedule and checkpoint folders.

Also holds the helpers the other ``test_train_*`` modules share: the London subset prepared once per
session at 64 px, and the tiny training config pointed at it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml

from portraitgan_hub.errors import CheckpointError
from train.checkpoints import latest_checkpoint, list_checkpoints, remove_stale, resolve_resume, rotate
from train.step import lr_factor
from train.training_config import TrainingConfig, apply_overrides, load_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "train" / "configs"
ASSETS = REPO / "tests" / "assets" / "london_subset"


# --- shared helpers -----------------------------------------------------------------------------------
def prepare_london(tmp_path_factory: pytest.TempPathFactory, size: int = 64) -> Path:
    """The 4-identity asset subset prepared by ``train.prepare`` (once per test session)."""
    from train.prepare import PrepareConfig, prepare

    out = tmp_path_factory.getbasetemp() / f"train_london{size}"
    if not (out / "manifest.jsonl").is_file():
        config = PrepareConfig(str(ASSETS), str(out), source="london", size=size, val_fraction=0.25, seed=0, workers=2)
        prepare(config, progress=False)
    return out


def tiny_config(data: Path, output: Path, *overrides: str) -> TrainingConfig:
    """``train/configs/tiny.yaml`` on ``data``, writing to ``output``, plus overrides."""
    return load_config(CONFIGS / "tiny.yaml", [f"data.path={data}", f"output_dir={output}", *overrides])


# --- configs ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lite", "paper", "tiny"])
def test_shipped_configs_load_and_round_trip(name: str) -> None:
    config = load_config(CONFIGS / f"{name}.yaml")
    again = TrainingConfig.from_dict(yaml.safe_load(config.to_yaml()))
    assert again == config
    assert config.objective.cycle == 2 and config.objective.feature_matching == 10
    assert config.objective.identity == 5 and config.objective.texture == 10
    assert config.optim.lr == 2e-4 and config.optim.betas == (0.5, 0.999)


def test_paper_and_lite_follow_their_presets() -> None:
    paper = load_config(CONFIGS / "paper.yaml")
    assert paper.model.image_size == 512 and paper.model.base_channels == 64 and paper.model.max_channels == 1024
    assert paper.model.num_residual_blocks == 9 and paper.model.num_levels == 2
    lite = load_config(CONFIGS / "lite.yaml")
    assert lite.model.image_size == 256 and lite.model_preset == "lite"


def _differences(a: dict, b: dict, prefix: str = "") -> set[str]:
    keys = set(a) | set(b)
    out = set()
    for key in keys:
        if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
            out |= _differences(a[key], b[key], f"{prefix}{key}.")
        elif a.get(key) != b.get(key):
            out.add(prefix + key)
    return out


@pytest.mark.parametrize(
    "name, changed",
    [
        ("no_cycle", {"objective.cycle"}),
        ("no_texture", {"objective.texture"}),
        ("no_feature_matching", {"objective.feature_matching"}),
        ("single_level", {"model.num_levels"}),
    ],
)
def test_each_ablation_changes_only_its_term(name: str, changed: set[str]) -> None:
    lite = load_config(CONFIGS / "lite.yaml").to_dict()
    ablation = load_config(CONFIGS / "ablations" / f"{name}.yaml").to_dict()
    assert _differences(lite, ablation) == changed | {"output_dir"}


TRAINING_CONFIGS = sorted(p for p in CONFIGS.rglob("*.yaml") if not p.name.startswith("accelerate_"))


@pytest.mark.parametrize("path", TRAINING_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_config_loads(path: Path) -> None:
    """Every training YAML under train/configs (presets, demo stages, ablations, experiments) loads."""
    config = load_config(path)
    assert config.output_dir and config.optim.steps > 0


def test_dotted_overrides_are_typed() -> None:
    config = load_config(
        CONFIGS / "tiny.yaml",
        ["optim.lr=1e-3", "optim.steps=3", "model.num_levels=1", "objective.texture_image_size=null", "seed=7"]
        + ["optim.mixed_precision=no"],
    )
    assert config.optim.mixed_precision == "no"
    assert config.optim.lr == 1e-3 and isinstance(config.optim.lr, float)
    assert config.optim.steps == 3 and config.decay_start == 3  # clamped to the shortened run
    assert config.model.num_levels == 1 and config.objective.texture_image_size is None and config.seed == 7
    assert apply_overrides({"a": {"b": 1}}, ["a.c=[1, 2]"]) == {"a": {"b": 1, "c": [1, 2]}}


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=1", "optim.lrr"),
        ("nonsense=1", "nonsense"),
        ("model.widht=3", "widht"),
        ("optim.steps=many", "optim.steps must be an integer"),
        ("optim.mixed_precision=fp8", "mixed_precision"),
        ("keep_checkpoints=0", "keep_checkpoints"),
        ("no-equals-sign", "key.sub=value"),
    ],
)
def test_bad_overrides_are_named(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_config(CONFIGS / "tiny.yaml", [override])


def test_base_loops_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ValueError, match="loop"):
        load_config(tmp_path / "a.yaml")


# --- schedule -----------------------------------------------------------------------------------------
def test_lr_schedule_is_constant_then_linear_to_zero() -> None:
    factors = [lr_factor(step, steps=10, decay_start=6) for step in range(11)]
    assert factors[:7] == [1.0] * 7
    assert factors[8] == pytest.approx(0.5) and factors[10] == 0.0
    assert all(a >= b for a, b in zip(factors, factors[1:]))


# --- checkpoint folders -------------------------------------------------------------------------------
def _fake_checkpoint(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "trainer_state.json").write_text("{}")
    return path


def test_latest_ignores_temporary_and_trashed_folders(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    _fake_checkpoint(root, "step-0000002")
    _fake_checkpoint(root, "step-0000010")
    _fake_checkpoint(root, ".tmp-step-0000020")  # a save killed half-way
    _fake_checkpoint(root, ".trash-step-0000001")
    (root / "step-0000030").mkdir()  # no state file: not a checkpoint
    assert latest_checkpoint(root).name == "step-0000010"
    assert resolve_resume("latest", tmp_path).name == "step-0000010"
    assert {p.name for p in remove_stale(root)} == {".tmp-step-0000020", ".trash-step-0000001"}
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        resolve_resume("latest", tmp_path / "elsewhere")
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        resolve_resume(str(root / "step-0000030"), tmp_path)


def test_rotation_keeps_the_newest(tmp_path: Path) -> None:
    for step in (1, 2, 3, 4):
        _fake_checkpoint(tmp_path, f"step-{step:07d}")
    rotate(tmp_path, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-0000003", "step-0000004"]
    assert sorted(os.listdir(tmp_path)) == ["step-0000003", "step-0000004"]


def test_pools_state_round_trip() -> None:
    from train.step import ModalityPools

    pools = ModalityPools(3, capacity=2, seed=0)
    images = torch.rand(3, 3, 8, 8)
    pools.push_and_sample(images, torch.tensor([0, 2, 2]))
    copy = ModalityPools(3, capacity=2, seed=99)
    copy.load_state_dict(pools.state_dict())
    more = torch.rand(2, 3, 8, 8)
    modalities = torch.tensor([2, 0])
    assert torch.equal(pools.push_and_sample(more, modalities), copy.push_and_sample(more, modalities))
