"""What a training run records: where it is (:class:`TrainState`, saved in every checkpoint), what it
did (:class:`RunResult`), and ``run.json`` (processes, speed, peak memory)."""

from __future__ import annotations

import json
import platform
import resource
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from portraitgan_hub.io_utils import atomic_write_text


@dataclass
class TrainState:
    """Where the run is: optimizer steps done, and the data position (epoch, batches consumed in it)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    #: The last validation: {"step": ..., "split": ..., "values": {metric: value}}.
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    step: int
    world_size: int
    history: list[dict[str, float]]
    seconds_per_step: float | None
    peak_rss_mib: float
    last_checkpoint: str | None
    export_dir: str | None
    metrics: dict[str, Any]


def peak_rss_mib() -> float:
    """This process's peak resident set size (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if platform.system() == "Darwin" else peak / 1024


def write_run_info(accelerator: Any, path: Path, result: RunResult | None) -> None:
    """``run.json`` at ``path`` (main process only): processes, device, precision, threads, the command,
    and with a ``result`` its figures (all but the per-step history)."""
    if not accelerator.is_main_process:
        return
    info: dict[str, Any] = {
        "world_size": accelerator.num_processes,
        "distributed_type": str(accelerator.distributed_type),
        "device": str(accelerator.device),
        "mixed_precision": accelerator.mixed_precision,
        "torch_threads": torch.get_num_threads(),
        "command": " ".join(sys.argv),
    }
    if result is not None:
        info.update({k: v for k, v in asdict(result).items() if k != "history"})
    atomic_write_text(path, json.dumps(info, indent=2))
