"""Evaluate a PortraitGAN model against two baselines on held-out pairs of a prepared folder.

    python train/evaluate.py --model runs/lite/model --data data/london256 [--split val] [--out DIR]
        [--pairs neutral:smiling ...] [--no-modality-translation]

Pairs (I_A, I_B) are two images of one person in the split: every ordered expression pair of the
photos (``--pairs`` keeps only the listed ones) and, for modality translation, each photo against
each other modality of the same expression. Every method turns I_A into an output for (L_B, c_B):

* ``portraitgan``: G(I_A, L_B, c_B);
* ``no_edit``: I_A itself;
* ``warp``: I_A piecewise-affinely warped from L_A to L_B (``faces.warp``; for modality translation
  L_A = L_B, so it equals ``no_edit``).

Scores per output: MSE and SSIM against I_B (Table 1 of the paper; for modality translation I_B is
the stylized pseudo-target), NME of the landmarks dlib finds on the output against L_B, and the
dlib face-recognition distance between input and output (same person below 0.6). Outputs where
dlib finds no face get no NME or distance and are counted. Writes ``metrics.json`` (per pair and
means), ``metrics.md`` (tables per task) and ``best_worst.png`` (the pairs of highest and lowest
model SSIM: input | target landmarks | output | warp baseline | target).
"""

# ruff: noqa: E402  (the path set-up below must run before the package imports)
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `train` the package, not this file's folder
    _ROOT = Path(__file__).resolve().parents[1]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "train"]
    sys.path.insert(0, str(_ROOT))

import argparse
import itertools
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from portraitgan_hub.errors import PortraitGANError
from portraitgan_hub.faces.identity import SAME_PERSON_THRESHOLD, descriptor_distance, face_descriptor
from portraitgan_hub.faces.landmark_map import landmark_map_tensor
from portraitgan_hub.faces.warp import piecewise_affine_warp
from portraitgan_hub.io_utils import atomic_save_image, atomic_write_text
from portraitgan_hub.model import PortraitGAN, pil_to_tensor, tensor_to_pil
from train.dataset import Augmentation, PairedPortraitDataset, read_manifest
from train.metrics import LandmarkScorer, landmark_nme, mse, ssim

METHODS = {"portraitgan": "PortraitGAN", "no_edit": "no edit", "warp": "piecewise-affine warp"}
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
    #: Rows of ``best_worst.png``: this many best and this many worst pairs by model SSIM.
    best_worst: int = 3
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


class Evaluator:
    """Runs the model and the baselines on pairs and scores every output (dlib models loaded once)."""

    def __init__(self, model: PortraitGAN, loader: PairedPortraitDataset) -> None:
        self.model = model
        self.loader = loader
        self.scorer = LandmarkScorer()
        self._inputs: dict[int, tuple[np.ndarray | None, np.ndarray]] = {}

    def load(self, row: int) -> tuple[torch.Tensor, np.ndarray]:
        image, points = self.loader.load(self.loader.rows[row], Augmentation())
        return pil_to_tensor(image)[0], points

    def outputs(self, pairs: list[Pair]) -> dict[str, Any]:
        """Inputs, targets, landmarks and the three methods' outputs of a batch, as (B, 3, H, W) tensors."""
        inputs, points_a = zip(*(self.load(p.row_a) for p in pairs))
        targets, points_b = zip(*(self.load(p.row_b) for p in pairs))
        size = inputs[0].shape[-1]
        maps = landmark_map_tensor(np.stack(points_b), size, self.model.config.landmark_line_width)
        modalities = [self.loader.rows[p.row_b]["modality"] for p in pairs]
        batch = torch.stack(inputs)
        warped = [
            piecewise_affine_warp(picture, a, b) for picture, a, b in zip(tensor_to_pil(batch), points_a, points_b)
        ]
        return {
            "inputs": batch,
            "targets": torch.stack(targets),
            "points_a": points_a,
            "points_b": points_b,
            "maps": maps,
            "portraitgan": self.model.generate(batch, maps, modalities, np.stack(points_a), np.stack(points_b))
            .float()
            .cpu(),
            "no_edit": batch,
            "warp": pil_to_tensor(warped),
        }

    def score(self, pairs: list[Pair]) -> list[dict[str, Any]]:
        """Per-pair records of a batch of pairs."""
        batch = self.outputs(pairs)
        records = [self._record(pair) for pair in pairs]
        for method in METHODS:
            outputs = batch[method]
            errors = mse(outputs, batch["targets"]).tolist()
            similarity = ssim(outputs, batch["targets"]).tolist()
            for i, pair in enumerate(pairs):
                found, descriptor = self._analyse(outputs[i], pair.row_a if method == "no_edit" else None)
                source = self._input(pair.row_a, batch["inputs"][i], batch["points_a"][i])
                distance = None if descriptor is None else descriptor_distance(source, descriptor)
                records[i]["methods"][method] = {
                    "mse": errors[i],
                    "ssim": similarity[i],
                    "face_found": found is not None,
                    "nme": None if found is None else landmark_nme(found, batch["points_b"][i]),
                    "identity_distance": distance,
                }
        return records

    def _record(self, pair: Pair) -> dict[str, Any]:
        row_a, row_b = self.loader.rows[pair.row_a], self.loader.rows[pair.row_b]
        return {"kind": pair.kind, "task": pair.task, "identity": row_a["identity"], "input": row_a["path"],
                "target": row_b["path"], "methods": {}}  # fmt: skip

    def _analyse(self, image: torch.Tensor, input_row: int | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """dlib landmarks (None: no face) and identity descriptor of an output; unchanged inputs are cached."""
        if input_row is not None:
            self._input(input_row, image, None)
            found, descriptor = self._inputs[input_row]
            return found, descriptor if found is not None else None
        found = self.scorer.detect(image)
        if found is None:
            return None, None
        return found, face_descriptor(tensor_to_pil(image[None])[0], found)

    def _input(self, row: int, image: torch.Tensor, fallback: np.ndarray | None) -> np.ndarray:
        """Descriptor of input ``row``: on the landmarks dlib finds in it, else on its manifest landmarks."""
        if row not in self._inputs:
            found = self.scorer.detect(image)
            points = found if found is not None else (fallback if fallback is not None else self.load(row)[1])
            self._inputs[row] = (found, face_descriptor(tensor_to_pil(image[None])[0], points))
        return self._inputs[row][1]


def summarize(records: list[dict[str, Any]], method: str) -> dict[str, Any]:
    """Means over pairs: MSE and SSIM over all, NME and identity distance over outputs with a face.

    ``same_person_share`` is the share of *all* pairs whose output is within dlib's 0.6 of the
    input, so an output without a detectable face counts as not the same person.
    """
    values = [record["methods"][method] for record in records]
    nmes = [v["nme"] for v in values if v["nme"] is not None]
    distances = [v["identity_distance"] for v in values if v["identity_distance"] is not None]
    return {
        "pairs": len(values),
        "mse": float(np.mean([v["mse"] for v in values])),
        "ssim": float(np.mean([v["ssim"] for v in values])),
        "nme": float(np.mean(nmes)) if nmes else None,
        "identity_distance": float(np.mean(distances)) if distances else None,
        "same_person_share": sum(d < SAME_PERSON_THRESHOLD for d in distances) / len(values),
        "no_face": sum(not v["face_found"] for v in values),
    }


def groups(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Records by table: each expression task, all modality translation, then each target modality."""
    tasks: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        tasks.setdefault(record["task"], []).append(record)
    expression = {task: rows for task, rows in tasks.items() if rows[0]["kind"] == "expression"}
    modality = {task: rows for task, rows in tasks.items() if rows[0]["kind"] == "modality"}
    table = dict(expression)
    if modality:
        table["modality translation"] = [r for rows in modality.values() for r in rows]
        if len(modality) > 1:
            table.update(modality)
    return table


def markdown(result: dict[str, Any]) -> str:
    """``metrics.md``: one table per task, rows = methods."""
    lines = [
        f"# Evaluation of `{result['model']}`",
        "",
        f"Data `{result['data']}`, split `{result['split']}`: {len(result['pairs'])} pairs, "
        f"{result['seconds_per_pair']:.2f} s per pair (all methods and scoring).",
    ]
    header = "| method | MSE↓ | SSIM↑ | NME↓ | identity distance↓ | share under 0.6↑ | no face |"
    for task, by_method in result["means"].items():
        lines += ["", f"## {task}", "", header, "|---|---|---|---|---|---|---|"]
        for method, label in METHODS.items():
            m = by_method[method]
            nme = "–" if m["nme"] is None else f"{m['nme']:.4f}"
            distance = "–" if m["identity_distance"] is None else f"{m['identity_distance']:.3f}"
            lines.append(
                f"| {label} | {m['mse']:.4f} | {m['ssim']:.3f} | {nme} | {distance} | "
                f"{100 * m['same_person_share']:.0f} % | {m['no_face']} / {m['pairs']} |"
            )
    lines += [
        "",
        "MSE and SSIM on the [0, 1] scale against the real target I_B (for modality translation: the stylized "
        "pseudo-target of the same photo). NME: landmarks dlib finds on the output against the requested ones, "
        "divided by the inter-ocular distance (outer eye corners), over outputs with a face. Identity distance: "
        "Euclidean distance of dlib ResNet descriptors of input and output, over outputs with a face; the share "
        "under 0.6 (dlib's same-person threshold) is over all pairs. For modality translation the landmarks do "
        "not change, so the warp equals no edit.",
        "",
    ]
    return "\n".join(lines)


def best_worst_grid(evaluator: Evaluator, pairs: list[Pair], labels: list[str], padding: int = 2) -> Image.Image:
    """Rows of input | target landmarks | output | warp baseline | target, each with a label on the left."""
    batch = evaluator.outputs(pairs)
    columns = [batch["inputs"], (batch["maps"] * 2 - 1).expand(-1, 3, -1, -1), batch["portraitgan"], batch["warp"],
               batch["targets"]]  # fmt: skip
    names = ("input", "target landmarks", "output", "warp baseline", "target")
    size = batch["inputs"].shape[-1]
    label_width, header = 96, 14
    grid = Image.new(
        "RGB",
        (label_width + len(columns) * (size + padding) + padding, header + len(pairs) * (size + padding) + padding),
        "white",
    )
    draw = ImageDraw.Draw(grid)
    for col, (name, images) in enumerate(zip(names, columns)):
        x = label_width + padding + col * (size + padding)
        draw.text((x, 1), name, fill="black")
        for row, picture in enumerate(tensor_to_pil(images)):
            grid.paste(picture, (x, header + padding + row * (size + padding)))
    for row, label in enumerate(labels):
        draw.text((2, header + padding + row * (size + padding)), label, fill="black")
    return grid


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
        "pairs": records,
    }
    out = Path(config.out)
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(out / "metrics.md", markdown(result))

    ranked = [i for i, r in enumerate(records) if r["kind"] == "expression"] or list(range(len(records)))
    ranked.sort(key=lambda i: records[i]["methods"]["portraitgan"]["ssim"], reverse=True)
    k = config.best_worst
    chosen = ranked if len(ranked) <= 2 * k else ranked[:k] + ranked[-k:]
    labels = [
        f"#{ranked.index(i) + 1} of {len(ranked)}\n{records[i]['identity']}\n{records[i]['task']}\n"
        f"SSIM {records[i]['methods']['portraitgan']['ssim']:.3f}"
        for i in chosen
    ]
    atomic_save_image(best_worst_grid(evaluator, [pairs[i] for i in chosen], labels), out / "best_worst.png")
    return result


def parse_args(argv: list[str] | None = None) -> EvaluationConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="saved PortraitGAN folder or Hub id")
    parser.add_argument("--data", required=True, help="folder prepared by train.prepare")
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", default="runs/eval")
    parser.add_argument("--pairs", nargs="+", metavar="A:B", help="photo expression pairs (default: all ordered)")
    parser.add_argument("--no-modality-translation", action="store_true")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    pairs = None
    if args.pairs:
        if any(spec.count(":") != 1 for spec in args.pairs):
            parser.error("--pairs takes EXPRESSION_A:EXPRESSION_B, e.g. neutral:smiling")
        pairs = [tuple(spec.split(":")) for spec in args.pairs]
    return EvaluationConfig(
        model=args.model,
        data=args.data,
        split=args.split,
        out=args.out,
        pairs=pairs,
        modality_translation=not args.no_modality_translation,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        result = evaluate(config)
    except (PortraitGANError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{len(result['pairs'])} pairs, {result['seconds_per_pair']:.2f} s per pair; wrote {config.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
