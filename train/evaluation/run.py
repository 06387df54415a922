"""The whole evaluation run: pairs, scores, no-op fidelity, gates, and the files it writes."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from portraitgan_hub.faces.identity import SAME_PERSON_THRESHOLD
from portraitgan_hub.io_utils import atomic_save_image, atomic_write_text
from portraitgan_hub.model import PortraitGAN
from train.dataset import PairedPortraitDataset, read_manifest
from train.evaluation.evaluator import Evaluator
from train.evaluation.gates import gates, groups, summarize
from train.evaluation.no_op import no_op_evaluation
from train.evaluation.pairs import METHODS, SOURCE_MODALITY, EvaluationConfig, build_pairs
from train.evaluation.pictures import best_worst_grid, best_worst_pairs
from train.evaluation.report import markdown


def evaluate(config: EvaluationConfig) -> dict[str, Any]:
    """Run the evaluation and write ``metrics.json``, ``metrics.md`` and ``best_worst.png`` to ``config.out``."""
    from tqdm.auto import tqdm

    model = PortraitGAN.from_pretrained(config.model)
    rows = [row for row in read_manifest(config.data) if row["split"] == config.split]
    if not any(row["modality"] == SOURCE_MODALITY for row in rows):
        raise ValueError(f"no {SOURCE_MODALITY} rows of split {config.split!r} in {config.data}")
    if SOURCE_MODALITY not in model.config.modalities:
        raise ValueError(f"the model does not know the {SOURCE_MODALITY!r} modality: {model.config.modalities}")
    used = [m for m in model.config.modalities if any(row["modality"] == m for row in rows)]
    loader = PairedPortraitDataset(
        config.data, used, split=config.split, image_size=model.config.image_size, flip_probability=0.0
    )
    pairs = build_pairs(loader.rows, used, config)
    if not pairs:
        raise ValueError(f"no evaluation pairs in split {config.split!r} of {config.data}")
    evaluator = Evaluator(model, loader)

    start = time.perf_counter()
    records: list[dict[str, Any]] = []
    with tqdm(total=len(pairs), desc="evaluate", unit="pair", disable=not config.progress) as progress:
        for first in range(0, len(pairs), config.batch_size):
            chunk = pairs[first : first + config.batch_size]
            records += evaluator.score(chunk)
            progress.update(len(chunk))
    seconds = time.perf_counter() - start

    sources = [loader.rows[row] for row in dict.fromkeys(p.row_a for p in pairs)]  # each source photo once
    result = {
        "model": config.model,
        "data": config.data,
        "split": config.split,
        "config": asdict(config),
        "seconds": seconds,
        "seconds_per_pair": seconds / len(pairs),
        "identity_threshold": SAME_PERSON_THRESHOLD,
        "methods": METHODS,
        "means": {
            task: {method: summarize(chunk, method) for method in METHODS} for task, chunk in groups(records).items()
        },
        "no_op": no_op_evaluation(model, config.data, sources, config.no_op_photos, config.progress),
        "pairs": records,
    }
    result["gates"] = gates(result)
    out = Path(config.out)
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(out / "metrics.md", markdown(result))

    chosen = best_worst_pairs(records, config.best_worst)
    grid = best_worst_grid(evaluator, [pairs[i] for i, _ in chosen], [label for _, label in chosen])
    atomic_save_image(grid, out / "best_worst.png")
    return result
