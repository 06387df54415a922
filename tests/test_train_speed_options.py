"""The lite-u recipe and the CPU speed options of a training run (``optim.mixed_precision``,
``channels_last``, ``compile``, ``threads``): each runs the real training step on prepared London
faces (64 px, model at 32 px), and a bf16 step stays close to the fp32 one."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from test_train_config import prepare_london, tiny_config

from train.setup import EpochSampler, collate, reset_accelerate_state
from train.step import training_step
from train.trainer import Trainer

LITE_U = [
    "model.preset=lite-u",
    "model.image_size=32",
    "model.base_channels=4",
    "model.max_channels=16",
    "model.num_residual_blocks=1",
    "model.discriminator_channels=8",
    "model.conditional_discriminator=true",
    "model.mouth_discriminator=true",
    "model.modality_discriminator=true",
    "objective.hallucination_l1=5",
    "objective.outline_l1=5",
    "objective.gradient_l1=10",
    "data.synthetic_ratio=0.5",
    "data.modality_mix_ratio=0.5",
    "tensorboard=false",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_london(tmp_path_factory)


@pytest.fixture(autouse=True)
def _fresh_accelerate():
    threads = torch.get_num_threads()
    reset_accelerate_state()
    yield
    reset_accelerate_state()
    torch.set_num_threads(threads)


def _first_step(data_dir: Path, output: Path, *overrides: str) -> tuple[Trainer, dict[str, float]]:
    config = tiny_config(data_dir, output, *LITE_U, *overrides)
    trainer = Trainer(config)
    index = next(iter(EpochSampler(len(trainer.train_set), config.data.seed)))
    batch = collate([trainer.train_set[index], trainer.train_set[index + 1]])
    return trainer, training_step(trainer.accelerator, batch, trainer.parts, 0)


def test_lite_u_recipe_trains_with_every_term(data_dir: Path, tmp_path: Path) -> None:
    trainer, losses = _first_step(data_dir, tmp_path)
    assert trainer.config.model.skip_connections and trainer.config.model.edit_region
    assert {"g/outline", "g/gradient", "g/hallucination", "g/gan_mouth", "g/cycle"} <= set(losses)
    assert all(math.isfinite(value) for value in losses.values())


def test_bf16_step_stays_close_to_fp32(data_dir: Path, tmp_path: Path) -> None:
    _, fp32 = _first_step(data_dir, tmp_path / "fp32")
    reset_accelerate_state()
    trainer, bf16 = _first_step(data_dir, tmp_path / "bf16", "optim.mixed_precision=bf16")
    assert trainer.accelerator.mixed_precision == "bf16"
    for term in ("g/identity", "g/cycle", "g/outline", "g/total", "d/total"):
        assert math.isfinite(bf16[term])
        assert bf16[term] == pytest.approx(fp32[term], rel=0.05), term


def test_channels_last_and_threads_run(data_dir: Path, tmp_path: Path) -> None:
    trainer, losses = _first_step(data_dir, tmp_path, "optim.channels_last=true", "optim.threads=1")
    assert torch.get_num_threads() == 1
    stem = trainer.accelerator.unwrap_model(trainer.model).generator.stem[1].weight
    assert stem.is_contiguous(memory_format=torch.channels_last)
    assert all(math.isfinite(value) for value in losses.values())


@pytest.mark.slow
def test_compiled_step_runs(data_dir: Path, tmp_path: Path) -> None:
    """``optim.compile`` (inductor, minutes of compilation on a CPU): slow-marked."""
    from accelerate.utils import is_compiled_module

    trainer, losses = _first_step(data_dir, tmp_path, "optim.compile=true")
    assert is_compiled_module(trainer.model) and is_compiled_module(trainer.discriminator)
    assert all(math.isfinite(value) for value in losses.values())


@pytest.mark.parametrize(
    ("bf16_arithmetic", "machine", "mixed_precision", "warned"),
    [
        (False, "x86_64", "bf16", True),  # a Zen3: torch emulates bf16
        (True, "x86_64", "bf16", False),  # AVX-512 BF16 or AMX
        (False, "x86_64", "no", False),
        (False, "arm64", "bf16", False),  # not an x86 feature torch reports
    ],
)
def test_bf16_on_a_cpu_without_bf16_arithmetic_is_warned(
    monkeypatch: pytest.MonkeyPatch, bf16_arithmetic: bool, machine: str, mixed_precision: str, warned: bool
) -> None:
    import platform

    from train.setup import slow_bf16_warning

    monkeypatch.setattr(platform, "machine", lambda: machine)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16_arithmetic, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    warning = slow_bf16_warning(torch.device("cpu"), mixed_precision)
    assert (warning is not None) == warned
    if warned:
        assert "optim.mixed_precision=no" in warning and "AMX" in warning
    assert slow_bf16_warning(torch.device("cuda"), "bf16") is None
