"""Fine-tuning a published checkpoint (issue #16): growing the model for new modalities, freezing,
replay, the exported card. ``model.init_from``, its command line, ``train.prepare`` on the generic pair
layout and resuming are in test_finetune_init_from.py; growing other models in test_finetune_growth.py,
both with the helpers and module fixtures of this file.

The base is the embedded demo checkpoint (``portraitgan_hub.DEFAULT_MODEL``, 256 px, 3 modalities),
fine-tuned at 64 px on a "watercolour" style made here with Pillow filters from the London subset.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from test_train_config import CONFIGS, prepare_london
from test_train_loop import _fresh_accelerate, _one_thread  # noqa: F401  (autouse fixtures, shared)

from portraitgan_hub import DEFAULT_MODEL, PortraitGAN
from portraitgan_hub.discriminator import MultiLevelDiscriminator
from portraitgan_hub.growth import grow_modalities, stem_convolution
from train.dataset import PairedPortraitDataset
from train.example_style import watercolour
from train.finetune import DISCRIMINATOR_WEIGHTS, ReplayMix, generator_parts, start_from_checkpoint
from train.setup import collate, reset_accelerate_state
from train.train import main, train
from train.training_config import load_config

BASE_MODALITIES = ["photo", "sketch", "cartoon"]
#: How much further (mean L1, images in [-1, 1]) an old modality's outputs may get from its targets
#: after the replayed fine-tune below. Measured (finetune.yaml, 30 steps at lr 2e-4, 64 px; the demo
#: model was trained at 256 px, so every modality first improves at this size): photo 0.197 -> 0.032,
#: sketch 0.275 -> 0.260, cartoon 0.207 -> 0.071 with replay; without replay sketch goes to 0.442.
OLD_MODALITY_TOLERANCE = 0.02


def make_style_folder(london: Path, out: Path) -> Path:
    """A prepared folder with the photo crops of ``london`` and their watercolour versions only.

    It is written directly (same crops and landmarks) rather than through ``train.prepare``, whose
    generic layout is tested on its own below, to keep these tests fast.
    """
    if (out / "manifest.jsonl").is_file():
        return out
    rows = [json.loads(line) for line in (london / "manifest.jsonl").read_text().splitlines()]
    (out / "photo").mkdir(parents=True)
    (out / "watercolour").mkdir()
    manifest = []
    for row in (r for r in rows if r["modality"] == "photo"):
        name = Path(row["path"]).name
        shutil.copy(london / row["path"], out / "photo" / name)
        with Image.open(london / row["path"]) as photo:
            watercolour(photo).save(out / "watercolour" / name)
        manifest += [row, {**row, "modality": "watercolour", "path": f"watercolour/{name}"}]
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in manifest))
    (out / "README.md").write_text("# watercolour\n\n- Source: the London test subset, restyled with Pillow\n")
    return out


@pytest.fixture(scope="module")
def london(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_london(tmp_path_factory)


@pytest.fixture(scope="module")
def style(london: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_style_folder(london, tmp_path_factory.getbasetemp() / "watercolour64")


def finetune_config(style: Path, output: Path, *overrides: str):
    """``train/configs/finetune.yaml`` from the demo checkpoint at 64 px, a few steps, no extras."""
    return load_config(
        CONFIGS / "finetune.yaml",
        [
            f"model.init_from={DEFAULT_MODEL}",
            f"data.path={style}",
            f"output_dir={output}",
            "data.image_size=64",
            "data.batch_size=2",
            "data.num_workers=0",
            "objective.texture_image_size=32",
            "objective.real_pool_size=8",
            "optim.steps=4",
            "optim.decay_start=4",
            "checkpoint_every=1000",
            "sample_every=1000",
            "validate_every=1000",
            "validation_samples=2",
            "sample_count=2",
            "allow_random_vgg=true",
            "tensorboard=false",
            "progress=false",
            "deterministic=true",
            *overrides,
        ],
    )


def _batch(root: Path, modalities: list[str], modality: str) -> dict[str, torch.Tensor]:
    """Every photo of ``root`` at 64 px with its own landmarks, and the target ``modality`` images."""
    dataset = PairedPortraitDataset(
        root,
        modalities,
        split=None,
        image_size=64,
        line_width=2,
        flip_probability=0.0,
        require_all_modalities=False,
    )
    photos = [i for i, row in enumerate(dataset.rows) if row["modality"] == "photo"]
    targets = {(r["identity"], r["expression"]): i for i, r in enumerate(dataset.rows) if r["modality"] == modality}
    batch = collate([dataset[i] for i in photos])
    batch["target"] = torch.stack(
        [dataset[targets[(dataset.rows[i]["identity"], dataset.rows[i]["expression"])]]["image_a"] for i in photos]
    )
    return batch


def _outputs(model: PortraitGAN, batch: dict[str, torch.Tensor], modality: str) -> torch.Tensor:
    return model.generate(batch["image_a"], batch["landmarks_map_a"], modality)


# --- growing --------------------------------------------------------------------------------------------
def test_growing_from_3_to_4_modalities_keeps_old_outputs_bit_identical(london: Path) -> None:
    base = PortraitGAN.from_pretrained(DEFAULT_MODEL)
    grown = grow_modalities(base, ["watercolour"])
    assert grown.config.modalities == [*BASE_MODALITIES, "watercolour"]
    assert base.config.modalities == BASE_MODALITIES, "the base model is not changed"
    batch = _batch(london, BASE_MODALITIES, "sketch")
    for modality in BASE_MODALITIES:
        before, after = _outputs(base, batch, modality), _outputs(grown, batch, modality)
        assert torch.equal(before, after), modality
    stem = grown.generator.stem[1].weight
    planes = grown.config.modality_channels
    assert planes == slice(4, 8) and torch.count_nonzero(stem[:, planes.stop - 1]) == 0
    # the new modality is a valid target, different from every old one once its weights move
    assert _outputs(grown, batch, "watercolour").shape == (len(batch["image_a"]), 3, 64, 64)
    with pytest.raises(ValueError, match="already in the model"):
        grow_modalities(base, ["sketch"])


def test_a_new_modality_can_start_as_an_existing_one(london: Path, style: Path, tmp_path: Path) -> None:
    """``optim.new_modality_init``: G asked for the new modality starts as G asked for the donor."""
    base = PortraitGAN.from_pretrained(DEFAULT_MODEL)
    grown = grow_modalities(base, ["watercolour", "oil"], initial="sketch")
    batch = _batch(london, BASE_MODALITIES, "sketch")
    sketch = _outputs(base, batch, "sketch")
    for name in ("watercolour", "oil"):
        assert torch.allclose(_outputs(grown, batch, name), sketch, atol=1e-5), name
    for modality in BASE_MODALITIES:
        assert torch.equal(_outputs(base, batch, modality), _outputs(grown, batch, modality)), modality
    assert not torch.allclose(_outputs(grow_modalities(base, ["oil"]), batch, "oil"), sketch, atol=1e-3)
    with pytest.raises(ValueError, match="initial modality 'oil'"):
        grow_modalities(base, ["watercolour"], initial="oil")
    start = start_from_checkpoint(finetune_config(style, tmp_path, "optim.new_modality_init=sketch"))
    assert any("start as 'sketch'" in note for note in start.notes)
    assert torch.allclose(_outputs(start.model.eval(), batch, "watercolour"), sketch, atol=1e-5)


# --- fine-tuning runs ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def replayed_run(style: Path, london: Path, tmp_path_factory: pytest.TempPathFactory):
    """From the demo checkpoint on the watercolour pairs, the London data replayed at 50 %."""
    reset_accelerate_state()
    output = tmp_path_factory.mktemp("finetune_replay")
    config = finetune_config(  # D without the modality planes, so that a later start can add them
        style,
        output,
        f"data.replay_path={london}",
        "optim.steps=30",
        "optim.decay_start=30",
        "optim.lr=2e-4",
        "model.modality_discriminator=false",
    )
    result = train(config)
    reset_accelerate_state()
    return config, result, output


def test_finetune_moves_the_new_modality_towards_its_target(replayed_run, style: Path) -> None:
    _, result, _ = replayed_run
    modalities = [*BASE_MODALITIES, "watercolour"]
    batch = _batch(style, modalities, "watercolour")
    start = grow_modalities(PortraitGAN.from_pretrained(DEFAULT_MODEL), ["watercolour"])
    tuned = PortraitGAN.from_pretrained(result.export_dir)
    assert tuned.config.modalities == modalities
    before = (_outputs(start, batch, "watercolour") - batch["target"]).abs().mean().item()
    after = (_outputs(tuned, batch, "watercolour") - batch["target"]).abs().mean().item()
    print(f"watercolour L1 to the pseudo-target: step 0 {before:.4f}, after 30 steps {after:.4f}")
    assert after < 0.9 * before


@pytest.mark.xfail(
    strict=True,
    reason="from the lite-u demo a conversion draws every pixel, so the new modality starts at L1 0.294, worse than "
    "the photo itself (0.164); 30 steps bring it to 0.178, not yet past copying. Open (README, Limitations)",
)
def test_finetune_beats_copying_the_photo(replayed_run, style: Path) -> None:
    _, result, _ = replayed_run
    batch = _batch(style, [*BASE_MODALITIES, "watercolour"], "watercolour")
    tuned = PortraitGAN.from_pretrained(result.export_dir)
    copying = (batch["image_a"] - batch["target"]).abs().mean().item()
    after = (_outputs(tuned, batch, "watercolour") - batch["target"]).abs().mean().item()
    assert after < 0.9 * copying, f"{after:.4f} against copying's {copying:.4f}"


def _old_modality_errors(model: PortraitGAN, london: Path) -> dict[str, float]:
    """L1 of G(photo, own landmarks, c) to the image of modality c, for each old modality."""
    errors = {}
    for modality in BASE_MODALITIES:
        batch = _batch(london, BASE_MODALITIES, modality)
        errors[modality] = (_outputs(model, batch, modality) - batch["target"]).abs().mean().item()
    return errors


def test_replay_keeps_the_old_modalities_within_tolerance(
    replayed_run, style: Path, london: Path, tmp_path: Path
) -> None:
    """With replay no old modality gets further from its targets than OLD_MODALITY_TOLERANCE; without
    it (same run, no replay_path) the sketch modality, the one furthest from the photo, is forgotten."""
    _, result, _ = replayed_run
    before = _old_modality_errors(PortraitGAN.from_pretrained(DEFAULT_MODEL), london)
    after = _old_modality_errors(PortraitGAN.from_pretrained(result.export_dir), london)
    print("old modalities, L1 to their targets at step 0:", before, "after 30 replayed steps:", after)
    for modality in BASE_MODALITIES:
        assert after[modality] <= before[modality] + OLD_MODALITY_TOLERANCE, modality
    reset_accelerate_state()
    config = finetune_config(style, tmp_path, "optim.steps=30", "optim.decay_start=30", "optim.lr=2e-4")
    forgetting = _old_modality_errors(PortraitGAN.from_pretrained(train(config).export_dir), london)
    print("without replay:", forgetting)
    assert forgetting["sketch"] > before["sketch"] + OLD_MODALITY_TOLERANCE > after["sketch"]


def test_replay_mix_draws_both_sets_deterministically(style: Path, london: Path) -> None:
    modalities = [*BASE_MODALITIES, "watercolour"]
    common = dict(modalities=modalities, image_size=32, line_width=1, require_all_modalities=False)
    primary = PairedPortraitDataset(style, **common)
    mix = ReplayMix(primary, PairedPortraitDataset(london, **common), ratio=0.5, seed=1)
    assert len(mix) == 2 * len(primary)
    mix.set_epoch(3)
    first = [int(mix[i]["modality_a"]) for i in range(len(mix))]
    assert first == [int(mix[i]["modality_a"]) for i in range(len(mix))]
    assert {0, 3} <= set(first[: len(primary)]) and set(first[len(primary) :]) <= {0, 1, 2}
    with pytest.raises(ValueError, match="replay_ratio"):
        ReplayMix(primary, primary, ratio=1.0)


def test_exported_card_names_the_base_model_added_modalities_and_data(replayed_run) -> None:
    config, result, _ = replayed_run
    card = (Path(result.export_dir) / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["base_model"] == DEFAULT_MODEL
    assert "## Fine-tuning" in card and "Added modalities: `watercolour`" in card
    assert "restyled with Pillow" in card, "the training data's description"
    assert "Replay data" in card and "50%" in card


def test_export_with_discriminators_and_init_from_them(replayed_run, style: Path, tmp_path: Path) -> None:
    _, result, output = replayed_run
    checkpoint = sorted((output / "checkpoints").iterdir())[-1]
    exported = tmp_path / "exported"
    assert main(["--export", str(checkpoint), str(exported), "--with_discriminators"]) == 0
    assert sorted(p.name for p in exported.iterdir()) == [
        "README.md",
        "config.json",
        DISCRIMINATOR_WEIGHTS,
        "model.safetensors",
    ]
    start = start_from_checkpoint(finetune_config(style, tmp_path / "run", f"model.init_from={exported}"))
    assert start.added_modalities == [] and start.discriminator_state is not None
    assert start.record()["discriminators"] == "from the checkpoint"
    fresh = start_from_checkpoint(finetune_config(style, tmp_path / "run"))
    assert fresh.discriminator_state is None and fresh.added_modalities == ["watercolour"]
    # a field that shapes only D may change: the exported D grows zero weights for the modality planes
    grown = start_from_checkpoint(
        finetune_config(style, tmp_path / "run", f"model.init_from={exported}", "model.modality_discriminator=true")
    )
    assert grown.config.model.modality_discriminator and not start.config.model.modality_discriminator
    assert any("modality_discriminator" in note for note in grown.notes)
    g_before, g_after = start.model.state_dict(), grown.model.state_dict()
    assert all(torch.equal(g_before[k], g_after[k]) for k in g_before), "G must not change"
    judge = MultiLevelDiscriminator(grown.config.model)
    judge.load_state_dict(grown.discriminator_state, strict=True)
    first = judge.discriminators[0].blocks[0][0].weight
    planes = first[:, -grown.config.model.num_modalities :]
    assert first.shape[1] == grown.config.model.discriminator_in_channels and not planes.any()


def test_frozen_parts_receive_no_update(style: Path, tmp_path: Path) -> None:
    config = finetune_config(style, tmp_path / "run", "optim.freeze=[encoder, residual]", "optim.lr=1e-3")
    result = train(config)
    base = PortraitGAN.from_pretrained(DEFAULT_MODEL).state_dict()
    tuned = PortraitGAN.from_pretrained(result.export_dir)
    state = tuned.state_dict()
    names = {id(p): n for n, p in tuned.named_parameters()}
    parts = {
        part: [names[id(p)] for m in modules for p in m.parameters()]
        for part, modules in generator_parts(tuned).items()
    }
    stem = stem_convolution(tuned)[0] + ".weight"
    for name in parts["encoder"] + parts["residual"]:
        if name == stem:
            continue
        assert torch.equal(state[name], base[name]), name
    new_plane = tuned.config.modality_channels.start + tuned.config.modality_index("watercolour")
    old = [c for c in range(state[stem].shape[1]) if c != new_plane]
    in_base = [c if c < new_plane else c - 1 for c in old]  # channels after the new plane moved up one
    assert torch.equal(state[stem][:, old], base[stem][:, in_base]), "old stem channels moved"
    assert torch.count_nonzero(state[stem][:, new_plane]) > 0, "the new modality's stem channels must train"
    changed = [n for n in parts["decoder"] if not torch.equal(state[n], base[n])]
    assert changed, "the decoder must train"
