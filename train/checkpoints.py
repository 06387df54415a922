"""Training checkpoints: atomic, rotated, resumable; and export of the generator from any of them.

A checkpoint is ``OUTPUT_DIR/checkpoints/step-XXXXXXX/``: accelerate's ``save_state`` (both networks,
both optimizers, both schedulers, the gradient scaler, every process's RNG states), plus

* ``trainer_state.json``: global step, data position (epoch, batches consumed in it), world size,
  the last validation metrics;
* ``trainer_state_<rank>.pt``: each process's real-sample pools and their random generator;
* ``training_config.yaml``: the resolved configuration, so that a checkpoint exports on its own.

It is written into ``.tmp-step-XXXXXXX`` and renamed when complete, so a run killed at any moment
leaves either a complete checkpoint or a temporary folder that :func:`latest_checkpoint` ignores and
the next run deletes. A finished name is never written again. Rotation renames a checkpoint to
``.trash-...`` before deleting it, for the same reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from portraitgan_hub.errors import CheckpointError
from portraitgan_hub.model import WEIGHTS_NAME, PortraitGAN

CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "trainer_state.json"
CONFIG_FILE = "training_config.yaml"
#: accelerate's name for the second prepared model (the discriminators) in a ``save_state`` folder.
DISCRIMINATOR_CHECKPOINT_NAME = "model_1.safetensors"
_NAME = re.compile(r"^step-(\d{7,})$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:07d}"


def checkpoint_step(path: str | Path) -> int:
    match = _NAME.match(Path(path).name)
    if not match:
        raise CheckpointError(f"{path} is not a checkpoint folder (step-XXXXXXX)")
    return int(match.group(1))


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under ``root`` (a run's ``checkpoints`` folder), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name) and (p / STATE_FILE).is_file()]
    return sorted(found, key=checkpoint_step)


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest complete checkpoint; temporary (``.tmp-*``) and deleted (``.trash-*``) folders are ignored."""
    found = list_checkpoints(root)
    return found[-1] if found else None


def resolve_resume(resume: str, output_dir: str | Path) -> Path:
    """``latest`` -> the newest checkpoint of the run; otherwise a checkpoint folder path."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    if resume == "latest":
        found = latest_checkpoint(root)
        if found is None:
            raise CheckpointError(f"--resume latest: no complete checkpoint in {root}")
        return found
    path = Path(resume)
    if not (path / STATE_FILE).is_file():
        raise CheckpointError(f"--resume {resume}: not a complete checkpoint folder (no {STATE_FILE})")
    return path


def remove_stale(root: str | Path) -> list[Path]:
    """Delete temporary and half-deleted folders that a killed run left behind."""
    root = Path(root)
    stale = [*root.glob(".tmp-step-*"), *root.glob(".trash-*")]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(
    accelerator: Any,
    root: str | Path,
    step: int,
    shared_state: dict[str, Any],
    process_state: dict[str, Any],
    config_yaml: str,
    keep: int,
) -> Path:
    """Write checkpoint ``step`` atomically on every process, then keep only the newest ``keep``.

    Collective: every process must call it. ``process_state`` is this process's (tensors and
    numbers, loaded back with ``weights_only=True``); ``shared_state`` is JSON, written once.
    """
    root = Path(root)
    final = root / checkpoint_name(step)
    temporary = root / f".tmp-{checkpoint_name(step)}"
    if final.exists():  # never overwrite a finished checkpoint (e.g. the final step was also periodic)
        return final
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    torch.save(process_state, temporary / f"trainer_state_{accelerator.process_index}.pt")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (temporary / CONFIG_FILE).write_text(config_yaml, encoding="utf-8")
        (temporary / STATE_FILE).write_text(json.dumps(shared_state, indent=2, sort_keys=True), encoding="utf-8")
        _fsync_tree(temporary)
        os.rename(temporary, final)
        _fsync_dir(root)
        rotate(root, keep)
    accelerator.wait_for_everyone()
    return final


def rotate(root: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints (renamed to ``.trash-*`` first)."""
    removed = []
    for old in list_checkpoints(root)[:-keep] if keep > 0 else []:
        trash = old.with_name(f".trash-{old.name}")
        os.rename(old, trash)
        shutil.rmtree(trash, ignore_errors=True)
        removed.append(old)
    return removed


#: accelerate's per-process RNG file in a checkpoint, and the keys a resume needs from it.
RANDOM_STATES_FILE = "random_states_{rank}.pkl"
RANDOM_STATE_KEYS = ("random_state", "numpy_random_seed", "torch_manual_seed")


def damaged(file: Path, reason: str) -> CheckpointError:
    """The one-line error for an unreadable file of a checkpoint, saying what to do instead."""
    checkpoint = file.parent
    older = [p for p in list_checkpoints(checkpoint.parent) if p.name < checkpoint.name]
    if older:
        advice = (
            f"resume from the previous checkpoint: move {checkpoint.name} out of the way "
            f"(mv {checkpoint} {checkpoint.parent / ('damaged-' + checkpoint.name)}) and run --resume latest "
            f"again, which then takes {older[-1].name}"
        )
    else:
        advice = "no earlier checkpoint is left: start a new run in another output_dir"
    return CheckpointError(f"{file} is unreadable ({reason}): checkpoint {checkpoint.name} is damaged; {advice}")


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__


def read_shared_state(checkpoint: str | Path) -> dict[str, Any]:
    """``trainer_state.json`` of ``checkpoint``; unreadable or not an object: :func:`damaged`'s error."""
    path = Path(checkpoint) / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise damaged(path, _reason(error)) from None
    missing = [key for key in ("step", "epoch", "batch_in_epoch") if not isinstance(data, dict) or key not in data]
    if missing:
        raise damaged(path, f"no {', '.join(missing)}")
    return data


def read_process_state(checkpoint: str | Path, rank: int) -> dict[str, Any] | None:
    """``trainer_state_<rank>.pt`` (``weights_only=True``), None if absent; unreadable: a CheckpointError."""
    path = Path(checkpoint) / f"trainer_state_{rank}.pt"
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged or foreign file
        raise damaged(path, _reason(error)) from None
    if not isinstance(state, dict) or "pools" not in state:
        raise damaged(path, "it holds no real-sample pools")
    return state


def check_random_states(checkpoint: str | Path, rank: int) -> None:
    """``CheckpointError`` unless this process's RNG file loads (``weights_only=True``) with every key.

    accelerate's ``load_state`` skips an unreadable RNG file with a log line and goes on, so that
    a resume would silently no longer be exact.
    """
    from accelerate.utils import load

    path = Path(checkpoint) / RANDOM_STATES_FILE.format(rank=rank)
    if not path.is_file():
        raise damaged(path, "missing")
    try:
        states = load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged or foreign file
        raise damaged(path, _reason(error)) from None
    missing = [key for key in RANDOM_STATE_KEYS if not isinstance(states, dict) or key not in states]
    if missing:
        raise damaged(path, f"no {', '.join(missing)}")


def find_unreadable(checkpoint: str | Path) -> CheckpointError | None:
    """The error for the first file of accelerate's state in ``checkpoint`` that does not load, or None.

    Safetensors files are read with safetensors, everything else with ``weights_only=True``.
    """
    from accelerate.utils import load
    from safetensors.torch import load_file

    checkpoint = Path(checkpoint)
    for path in sorted(checkpoint.iterdir()):
        try:
            if path.suffix == ".safetensors":
                load_file(str(path))
            elif path.suffix in (".bin", ".pt"):
                load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # safetensors and torch raise many types for a damaged file
            return damaged(path, _reason(error))
    return None


# --- export ---------------------------------------------------------------------------------------
def metrics_markdown(metrics: dict[str, Any]) -> str:
    """The last validation metrics as a Markdown table for the model card."""
    values = metrics.get("values") or {}
    if not values:
        return ""
    lines = [f"Validation at step {metrics.get('step', '?')} ({metrics.get('split', 'val')} split):", ""]
    lines += ["| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value:.4g} |" for name, value in sorted(values.items())]
    return "\n".join(lines)


def finetune_markdown(record: dict[str, Any]) -> str:
    """The model card's fine-tuning section: base model, modalities added and kept, training data."""
    base = record.get("base_model")
    revision = f" (revision `{record['base_revision']}`)" if record.get("base_revision") else ""
    added = ", ".join(f"`{m}`" for m in record.get("added_modalities") or []) or "none"
    kept = ", ".join(f"`{m}`" for m in record.get("base_modalities") or [])
    lines = [
        f"Fine-tuned from `{base}`{revision}.",
        "",
        f"- Added modalities: {added} (appended to the one-hot order; their stem weights started at zero)",
        f"- Modalities of the base model, kept in their order: {kept}",
        f"- Discriminators: {record.get('discriminators', 'fresh')}",
        "",
        "Training data:",
        "",
        record.get("data") or "(not recorded)",
    ]
    if record.get("replay"):
        lines += ["", "Replay data:", "", record["replay"]]
    return "\n".join(lines)


def export_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    push_to_hub: str | None = None,
    *,
    with_discriminators: bool = False,
) -> Path:
    """Write the generator of ``checkpoint`` as a ``PortraitGAN`` folder (config, safetensors, card).

    Only the exported folder is ever uploaded (``push_to_hub``), never a training checkpoint with
    its optimizer states. The card carries the training configuration and the last validation metrics,
    and for a fine-tune ``base_model`` in its YAML header and a section on the base model, the added
    modalities and the data. ``with_discriminators`` also writes ``discriminator.safetensors`` (weights
    only), from which a later ``model.init_from`` of this folder starts its discriminators.
    Raises :class:`CheckpointError` for an incomplete checkpoint.
    """
    from train.training_config import TrainingConfig, read_yaml

    checkpoint = Path(checkpoint)
    if not (checkpoint / STATE_FILE).is_file() or not (checkpoint / WEIGHTS_NAME).is_file():
        raise CheckpointError(f"{checkpoint} is not a complete training checkpoint")
    config = TrainingConfig.from_dict(read_yaml(checkpoint / CONFIG_FILE))
    state = read_shared_state(checkpoint)
    model = PortraitGAN(config.model)
    model.load_weights(checkpoint / WEIGHTS_NAME)
    if Path(config.data.path, "manifest.jsonl").is_file():  # grey modalities come back grey from the editor
        from train.dataset import achromatic_modalities

        found = achromatic_modalities(config.data.path, model.config.modalities)
        model.config.achromatic_modalities = sorted(set(model.config.achromatic_modalities) | set(found))
    card = {
        "training_config": json.dumps({"step": state.get("step"), **config.to_dict()}, indent=2),
        "metrics": metrics_markdown(state.get("metrics") or {}),
    }
    if state.get("random_vgg"):
        card["metrics"] += "\n\n**Trained with random VGG19 features for the texture loss: a smoke test only.**"
    if state.get("finetune"):
        card["base_model"] = state["finetune"].get("base_model")
        card["finetune"] = finetune_markdown(state["finetune"])
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir, model_card_kwargs=card)
    if with_discriminators:
        _export_discriminators(checkpoint, config.model, out_dir)
    if push_to_hub:
        from huggingface_hub import HfApi

        api = HfApi()
        repo_id = api.create_repo(repo_id=push_to_hub, exist_ok=True).repo_id
        api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=out_dir, commit_message="Upload PortraitGAN")
    return out_dir


def _export_discriminators(checkpoint: Path, model_config: Any, out_dir: Path) -> None:
    """Copy the discriminators' weights of a training checkpoint to ``out_dir/discriminator.safetensors``."""
    from safetensors.torch import load_file, save_file

    from portraitgan_hub.discriminator import MultiLevelDiscriminator
    from portraitgan_hub.io_utils import default_file_mode
    from train.finetune import DISCRIMINATOR_WEIGHTS

    source = checkpoint / DISCRIMINATOR_CHECKPOINT_NAME
    if not source.is_file():
        raise CheckpointError(f"{checkpoint} has no {DISCRIMINATOR_CHECKPOINT_NAME} (the discriminators' weights)")
    state = load_file(str(source))
    MultiLevelDiscriminator(model_config).load_state_dict(state, strict=True)  # fails loudly on a mismatch
    target = out_dir / DISCRIMINATOR_WEIGHTS
    save_file(state, str(target), metadata={"format": "pt", "library": "portraitgan-hub"})
    os.chmod(target, default_file_mode())
