"""``train/train.py`` in-process on prepared real faces (the London subset at 64 px, model at 32 px):
a short run and everything it writes, exact resume, the NaN guard, start-up failures, every parameter
getting a gradient (what DDP needs), export and push."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from test_train_config import CONFIGS, prepare_london, tiny_config

import train.step as step_module
from portraitgan_hub import PortraitGAN
from portraitgan_hub.discriminator import MultiLevelDiscriminator
from portraitgan_hub.errors import PortraitGANError, PretrainedWeightsMissingError
from portraitgan_hub.objective import discriminator_objective, generator_objective, run_generator
from portraitgan_hub.vgg import VGG19_WEIGHTS_ENV, load_vgg19
from train.checkpoints import list_checkpoints
from train.setup import reset_accelerate_state
from train.step import NonFiniteLossError, needs_unused_parameter_search
from train.train import main, train
from train.training_config import load_config

G_TERMS = {"gan_a_to_b", "gan_b_to_a", "feature_matching", "identity", "cycle", "texture", "total"}
D_TERMS = {"d_a_to_b", "d_b_to_a", "total"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_london(tmp_path_factory)


@pytest.fixture(autouse=True)
def _fresh_accelerate(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(VGG19_WEIGHTS_ENV, raising=False)
    reset_accelerate_state()
    yield
    reset_accelerate_state()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The 32 px model gains nothing from a second thread, and a busy machine makes two spin-wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    reset_accelerate_state()
    output = tmp_path_factory.mktemp("tiny_run")
    config = tiny_config(data_dir, output, "optim.steps=4", "checkpoint_every=2", "sample_every=2", "validate_every=4")
    result = train(config)
    reset_accelerate_state()
    return config, result, output


def test_short_run_has_finite_losses_and_writes_its_outputs(tiny_run) -> None:
    config, result, output = tiny_run
    assert result.step == 4 and len(result.history) == 4
    for losses in result.history:
        assert {f"g/{t}" for t in G_TERMS} | {f"d/{t}" for t in D_TERMS} == set(losses)
        assert all(math.isfinite(v) for v in losses.values())
    assert result.seconds_per_step > 0 and result.peak_rss_mib > 100
    # sample grids: input | target landmarks | output | target, one row per fixed pair
    for step in (2, 4):
        with Image.open(output / "samples" / f"step-{step:07d}.png") as grid:
            assert grid.size == (4 * 32 + 5 * 2, 2 * 32 + 3 * 2)
    # checkpoints, rotated to the newest two, no temporary folder left
    assert [p.name for p in list_checkpoints(output / "checkpoints")] == ["step-0000002", "step-0000004"]
    assert not list((output / "checkpoints").glob(".tmp-*"))
    state = json.loads((output / "checkpoints" / "step-0000004" / "trainer_state.json").read_text())
    assert state["step"] == 4 and state["epoch"] == 0 and state["batch_in_epoch"] == 4 and state["random_vgg"]
    assert set(state["metrics"]["values"]) >= {"mse", "ssim", "no_face", "no_face_fraction"}
    # the resolved config beside the run
    assert load_config(output / "training_config.yaml") == config
    run = json.loads((output / "run.json").read_text())
    assert run["world_size"] == 1 and run["step"] == 4


def test_context_windows_and_modality_mixtures_train(data_dir: Path, tmp_path: Path) -> None:
    """Issue #12's training draws (context windows, modality mixtures) run through the whole step."""
    config = tiny_config(
        data_dir, tmp_path / "run", "optim.steps=2", "data.context_ratio=1.0", "data.modality_mix_ratio=1.0"
    )
    result = train(config)
    assert result.step == 2 and all(math.isfinite(v) for losses in result.history for v in losses.values())


def test_tensorboard_gets_every_loss_term_and_the_config(tiny_run) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, _, output = tiny_run
    events = sorted((output / "logs" / "portraitgan").glob("events.out.tfevents.*"))
    assert events
    accumulator = EventAccumulator(str(events[0].parent), size_guidance={"tensors": 0, "scalars": 0})
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"]) | set(accumulator.Tags()["tensors"])
    for term in G_TERMS:
        assert f"loss/g/{term}" in tags
    assert {"loss/d/d_a_to_b", "lr/generator", "val/mse", "val/ssim", "time/seconds_per_step"} <= tags
    assert any("config" in tag for tag in tags)


def test_export_at_the_end_loads_and_carries_the_card(tiny_run) -> None:
    _, result, output = tiny_run
    model = PortraitGAN.from_pretrained(result.export_dir)
    checkpoint = load_file(str(output / "checkpoints" / "step-0000004" / "model.safetensors"))
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, checkpoint[name])
    out = model.generate(torch.zeros(1, 3, 32, 32), torch.zeros(1, 1, 32, 32), modality="sketch")
    assert out.shape == (1, 3, 32, 32)
    card = (Path(result.export_dir) / "README.md").read_text()
    assert '"texture": 10.0' in card and "| ssim |" in card and "random VGG19" in card
    assert sorted(p.name for p in Path(result.export_dir).iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]


def test_export_any_checkpoint_on_demand_and_push_only_the_export(tiny_run, tmp_path, monkeypatch) -> None:
    import huggingface_hub

    _, _, output = tiny_run
    uploaded: list[list[str]] = []

    def fake_upload_folder(self, *, folder_path, **kwargs):
        uploaded.append(sorted(p.name for p in Path(folder_path).rglob("*") if p.is_file()))
        return "https://huggingface.co/me/model"

    monkeypatch.setattr(
        huggingface_hub.HfApi, "create_repo", lambda self, **kwargs: SimpleNamespace(repo_id="me/model")
    )
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", fake_upload_folder)
    checkpoint = output / "checkpoints" / "step-0000002"
    assert main(["--export", str(checkpoint), str(tmp_path / "exported"), "--push_to_hub", "me/model"]) == 0
    model = PortraitGAN.from_pretrained(tmp_path / "exported")
    weights = load_file(str(checkpoint / "model.safetensors"))
    assert all(torch.equal(t, weights[n]) for n, t in model.state_dict().items())
    assert uploaded == [["README.md", "config.json", "model.safetensors"]]


def test_a_new_run_never_reuses_a_folder_with_checkpoints(tiny_run, tmp_path) -> None:
    config, _, output = tiny_run
    before = (output / "training_config.yaml").read_text()
    with pytest.raises(PortraitGANError, match="--resume latest"):
        train(config)
    wider = tiny_config(Path(config.data.path), output, "model.base_channels=8")
    with pytest.raises(PortraitGANError, match="another architecture"):
        train(wider, resume="latest")
    with pytest.raises(PortraitGANError, match="newer than step-0000002"):
        train(config, resume=str(output / "checkpoints" / "step-0000002"))
    assert (output / "training_config.yaml").read_text() == before


@pytest.mark.parametrize(
    ("steps", "stop", "position"),
    [(11, 6, (1, 2)), pytest.param(7, 3, (0, 6), marks=pytest.mark.slow)],
    ids=["mid-epoch-1", "mid-epoch-0"],
)
def test_resume_continues_exactly(data_dir: Path, tmp_path: Path, steps: int, stop: int, position) -> None:
    """Interrupted mid-epoch (inside gradient accumulation's cycle), in epoch 1 (or 0, slow) and
    resumed: the next losses and the final weights equal those of an uninterrupted run, across the
    next epoch boundary. In epoch 1 the dataset's flips must be epoch 1's after the resume too
    (skip_first_batches' loader passes set_epoch to the sampler only)."""
    settings = (f"optim.steps={steps}", "optim.grad_accumulation=2", f"checkpoint_every={stop}")
    settings += ("validate_every=100", "sample_every=100", "tensorboard=false", "data.flip_probability=0.5")
    straight = train(tiny_config(data_dir, tmp_path / "straight", *settings))
    reset_accelerate_state()
    interrupted_config = tiny_config(data_dir, tmp_path / "resumed", *settings)
    first = train(interrupted_config, stop_after_step=stop)
    checkpoint = tmp_path / "resumed" / "checkpoints" / f"step-{stop:07d}"
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert (state["epoch"], state["batch_in_epoch"]) == position  # 9 batches per epoch: resumed mid-epoch
    reset_accelerate_state()
    resumed = train(interrupted_config, resume="latest")
    assert first.history == straight.history[:stop]
    assert resumed.history == straight.history[stop:]  # bit-exact on the CPU with deterministic algorithms
    assert resumed.step == steps
    final = f"step-{steps:07d}"
    straight_weights = load_file(tmp_path / "straight" / "checkpoints" / final / "model.safetensors")
    resumed_weights = load_file(tmp_path / "resumed" / "checkpoints" / final / "model.safetensors")
    assert all(torch.equal(straight_weights[k], resumed_weights[k]) for k in straight_weights)


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(data_dir, tmp_path, monkeypatch) -> None:
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        terms = generator_objective(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 4:
            terms["identity"] = terms["identity"] * float("nan")
            terms["total"] = terms["total"] + terms["identity"]
        return terms

    monkeypatch.setattr(step_module, "generator_objective", poisoned)
    config = tiny_config(data_dir, tmp_path, "optim.steps=6", "checkpoint_every=1", "tensorboard=false")
    with pytest.raises(NonFiniteLossError, match="non-finite generator loss at step 4"):
        train(config)
    names = [p.name for p in list_checkpoints(tmp_path / "checkpoints")]
    assert names == ["step-0000002", "step-0000003"]  # nothing written from the poisoned step
    assert not (tmp_path / "model").exists()


def test_missing_vgg_weights_stop_at_start_up(data_dir: Path, tmp_path: Path, capsys) -> None:
    config = tiny_config(data_dir, tmp_path / "run", "allow_random_vgg=false")
    with pytest.raises(PretrainedWeightsMissingError, match="allow_random_vgg"):
        train(config)
    assert not (tmp_path / "run").exists()
    args = ["--config", str(CONFIGS / "tiny.yaml"), f"data.path={data_dir}", f"output_dir={tmp_path / 'run'}"]
    assert main([*args, "allow_random_vgg=false"]) == 1
    assert "vgg_weights" in capsys.readouterr().err
    # without the texture term no VGG19 is needed at all
    config = tiny_config(data_dir, tmp_path / "no_texture", "allow_random_vgg=false", "objective.texture=0")
    assert train(config, stop_after_step=1).step == 1
    assert "RANDOM VGG19" not in capsys.readouterr().err


def test_random_vgg_opt_in_warns_loudly(data_dir: Path, tmp_path: Path, capsys) -> None:
    train(tiny_config(data_dir, tmp_path, "tensorboard=false"), stop_after_step=1)
    err = capsys.readouterr().err
    assert "WARNING: RANDOM VGG19 FEATURES" in err and "!" * 50 in err


def test_missing_tensorboard_fails_clearly(data_dir, tmp_path, monkeypatch) -> None:
    import accelerate.tracking

    monkeypatch.setattr(accelerate.tracking, "get_available_trackers", lambda: [])
    with pytest.raises(PortraitGANError, match="pip install"):
        train(tiny_config(data_dir, tmp_path))


@pytest.mark.parametrize("ablation", [None, "no_cycle", "no_texture", "single_level", "no_feature_matching"])
def test_every_parameter_gets_a_gradient(ablation: str | None) -> None:
    """DDP (find_unused_parameters=False) needs a gradient for every parameter in every step."""
    path = CONFIGS / ("lite.yaml" if ablation is None else f"ablations/{ablation}.yaml")
    small = ["model.image_size=32", "model.base_channels=4", "model.max_channels=8", "model.num_residual_blocks=1"]
    config = load_config(path, [*small, "objective.texture_image_size=32"])
    assert not needs_unused_parameter_search(config.model.num_levels, config.objective)
    generator = PortraitGAN(config.model)
    discriminator = MultiLevelDiscriminator(config.model)
    vgg = None
    if config.objective.texture:
        with pytest.warns(UserWarning, match="RANDOM VGG19"):
            vgg = load_vgg19(allow_random=True)
    batch = {
        "image_a": torch.rand(2, 3, 32, 32) * 2 - 1,
        "image_b": torch.rand(2, 3, 32, 32) * 2 - 1,
        "landmarks_map_a": torch.rand(2, 1, 32, 32).round(),
        "landmarks_map_b": torch.rand(2, 1, 32, 32).round(),
        "modality_a": torch.tensor([0, 1]),
        "modality_b": torch.tensor([2, 0]),
    }
    outputs = run_generator(generator, batch, cycle=bool(config.objective.cycle))
    discriminator.requires_grad_(False)
    generator_objective(outputs, batch, discriminator, config.objective, vgg)["total"].backward()
    assert [n for n, p in generator.named_parameters() if p.grad is None] == []
    discriminator.requires_grad_(True)
    discriminator_objective(outputs, batch, discriminator)["total"].backward()
    assert [n for n, p in discriminator.named_parameters() if p.grad is None] == []


def test_bf16_mixed_precision_runs_on_the_cpu(data_dir: Path, tmp_path: Path) -> None:
    """The autocast path (bf16 here; fp16 with loss scaling needs a GPU): finite losses, float32 weights."""
    settings = ("optim.steps=2", "optim.mixed_precision=bf16", "checkpoint_every=2", "validate_every=100")
    result = train(tiny_config(data_dir, tmp_path, *settings, "sample_every=100", "tensorboard=false"))
    assert len(result.history) == 2
    assert all(math.isfinite(value) for losses in result.history for value in losses.values())
    weights = load_file(tmp_path / "model" / "model.safetensors")
    assert all(tensor.dtype == torch.float32 for tensor in weights.values())


@pytest.mark.parametrize(
    "damaged_file",
    [
        "random_states_0.pkl",
        "trainer_state_0.pt",
        "optimizer.bin",
        "optimizer_1.bin",
        "model.safetensors",
        "scheduler.bin",
        "trainer_state.json",
    ],
)
def test_a_damaged_checkpoint_file_is_named_with_what_to_do(tiny_run, tmp_path, capsys, damaged_file) -> None:
    """Every file of a checkpoint that a resume reads: garbage in it stops the resume with one line that
    names the file and points to the previous checkpoint, before any training; never a skipped RNG
    state (accelerate only logs that), never a torch traceback."""
    import shutil

    config, _, output = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(output / "checkpoints", copy / "checkpoints")
    latest = copy / "checkpoints" / "step-0000004"
    assert (latest / damaged_file).is_file()
    (latest / damaged_file).write_bytes(b"garbage: the disk filled up while this was written")
    resumed = tiny_config(config.data.path, copy, "optim.steps=6")
    with pytest.raises(PortraitGANError) as error:
        train(resumed, resume="latest")
    message = str(error.value)
    assert str(latest / damaged_file) in message and "\n" not in message
    assert "step-0000002" in message and "--resume latest" in message  # the previous checkpoint, and how
    if damaged_file != "optimizer.bin":
        return  # the command line's one line, once
    reset_accelerate_state()
    assert (
        main(
            [
                "--config",
                str(CONFIGS / "tiny.yaml"),
                f"data.path={config.data.path}",
                f"output_dir={copy}",
                "optim.steps=6",
                "--resume",
                "latest",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err  # (the random-VGG warning of the tiny config comes first)
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(latest / damaged_file) in last and "Traceback" not in err
    assert not (copy / "checkpoints" / "step-0000005").exists()  # nothing trained on a damaged state


def test_a_checkpoint_without_its_rng_file_is_refused(tiny_run, tmp_path) -> None:
    import shutil

    config, _, output = tiny_run
    shutil.copytree(output / "checkpoints", tmp_path / "run" / "checkpoints")
    (tmp_path / "run" / "checkpoints" / "step-0000004" / "random_states_0.pkl").unlink()
    with pytest.raises(PortraitGANError, match="random_states_0.pkl is unreadable \\(missing\\)"):
        train(tiny_config(config.data.path, tmp_path / "run", "optim.steps=6"), resume="latest")
