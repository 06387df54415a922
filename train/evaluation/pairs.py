"""What is evaluated: the options, the methods compared and the pairs (I_A, I_B) of a split."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

#: Methods in table order (the columns of ``metrics.md``): the model, then the baselines.
METHODS = {
    "portraitgan": "PortraitGAN",
    "tps_warp": "TPS warp",
    "warp": "piecewise-affine warp",
    "no_edit": "no edit",
}
SOURCE_MODALITY = "photo"


@dataclass
class EvaluationConfig:
    model: str
    data: str
    split: str = "val"
    out: str = "runs/eval"
    #: Ordered photo expression pairs such as ``[("neutral", "smiling")]``; None = every ordered pair.
    pairs: list[tuple[str, str]] | None = None
    #: Also translate each photo to every other modality of the same expression.
    modality_translation: bool = True
    batch_size: int = 8
    #: Rows of ``best_worst.png``: this many best and this many worst pairs by model SSIM, per direction.
    best_worst: int = 3
    #: No-op fidelity on this many source photos at full resolution; 0 = not measured.
    no_op_photos: int = 8
    progress: bool = True


@dataclass(frozen=True)
class Pair:
    kind: str  # "expression" or "modality"
    task: str  # "neutral->smiling", "photo->sketch", ...
    row_a: int  # indices into the loader's rows
    row_b: int


def build_pairs(rows: list[dict[str, Any]], modalities: list[str], config: EvaluationConfig) -> list[Pair]:
    """The evaluation pairs of ``rows`` (one split), identity by identity in manifest order."""
    photos: dict[str, dict[str, int]] = {}
    others: dict[tuple[str, str], dict[str, int]] = {}
    for index, row in enumerate(rows):
        if row["modality"] == SOURCE_MODALITY:
            photos.setdefault(row["identity"], {})[row["expression"]] = index
        others.setdefault((row["identity"], row["expression"]), {})[row["modality"]] = index
    expressions = sorted({row["expression"] for row in rows if row["modality"] == SOURCE_MODALITY})
    wanted = config.pairs if config.pairs is not None else list(itertools.permutations(expressions, 2))
    unknown = sorted({e for pair in wanted for e in pair} - set(expressions))
    if unknown:
        raise ValueError(f"expressions {unknown} are not among the {config.split!r} photos; they have {expressions}")
    pairs = []
    for identity, by_expression in photos.items():
        for a, b in wanted:
            if a != b and a in by_expression and b in by_expression:
                pairs.append(Pair("expression", f"{a}->{b}", by_expression[a], by_expression[b]))
        if not config.modality_translation:
            continue
        for expression, index in by_expression.items():
            targets = others[(identity, expression)]
            for modality in modalities:
                if modality != SOURCE_MODALITY and modality in targets:
                    pairs.append(Pair("modality", f"{SOURCE_MODALITY}->{modality}", index, targets[modality]))
    return pairs
