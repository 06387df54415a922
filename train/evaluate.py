"""Evaluate a PortraitGAN model against three baselines on held-out pairs of a prepared folder.

    python train/evaluate.py --model runs/lite/model --data data/london256 [--split val] [--out DIR]
        [--pairs neutral:smiling ...] [--no-modality-translation] [--no-op-photos N]

Pairs (I_A, I_B) are two images of one person in the split: every ordered expression pair of the
photos (both directions, neutral->smiling and smiling->neutral, each its own task; ``--pairs`` keeps
only the listed ones) and, for modality translation, each photo against each other modality of the
same expression. Every method turns I_A into an output for (L_B, c_B):

* ``portraitgan``: G(I_A, L_B, c_B), as the editor returns it (a grey modality of the model's
  ``achromatic_modalities`` without colour: ``editing.remove_colour``);
* ``tps_warp``: I_A warped from L_A to L_B by the thin-plate-spline warp that the warp-guided
  generator applies first (``thin_plate_spline.warp_by_landmarks``): what G adds beyond it;
* ``warp``: I_A piecewise-affinely warped from L_A to L_B (``faces.warp``);
* ``no_edit``: I_A itself.

For modality translation L_A = L_B, so both warps equal ``no_edit``.

Scores per output: MSE and SSIM against I_B (Table 1 of the paper; for modality translation I_B is
the stylized pseudo-target), SSIM in a fixed window around the mouth (points 48-67 of L_B, padded
by 15 %, the same pixels for every method), NME of the landmarks dlib finds on the output against
L_B, the dlib face-recognition distance between input and output (same person below 0.6) and the
mean chroma. Outputs where dlib finds no face get no NME or distance and are counted.

No-op fidelity (``--no-op-photos N``, 0 = off): for the first N source photos, the original
full-resolution photo (``landmarks/<stem>.json`` "source" under ``prepare_config.json``
"source_dir"; skipped with a note when it is not there) goes through the whole edit path with its
own landmarks -- ``face_editor.align``, ``editing.render``, ``editing.compose``, not ``edit``, which
returns a no-op edit's photo untouched -- and is compared with the photo inside the detected face
box: PSNR and the ratio of Laplacian variances (fine detail kept).

:func:`gates` turns the means into pass/fail checks. Writes ``metrics.json`` (per pair, means,
no-op fidelity, gates), ``metrics.md`` (one table per task, the no-op table and the gate table) and
``best_worst.png`` (per direction, the pairs of highest and lowest model SSIM: input | target
landmarks | TPS warp | piecewise-affine warp | PortraitGAN | target).
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

from portraitgan_hub.editing import achromatic_share, compose, remove_colour, render
from portraitgan_hub.errors import PortraitGANError
from portraitgan_hub.faces.identity import SAME_PERSON_THRESHOLD, descriptor_distance, face_descriptor
from portraitgan_hub.faces.landmark_map import landmark_map_tensor
from portraitgan_hub.faces.warp import piecewise_affine_warp
from portraitgan_hub.io_utils import atomic_save_image, atomic_write_text
from portraitgan_hub.model import PortraitGAN, pil_to_tensor, tensor_to_pil
from portraitgan_hub.thin_plate_spline import warp_by_landmarks
from train.dataset import Augmentation, PairedPortraitDataset, read_manifest
from train.metrics import (
    LandmarkScorer,
    grey,
    landmark_nme,
    laplacian_variance,
    mean_chroma,
    mouth_ssim,
    mouth_window,
    mse,
    psnr,
    ssim,
)
from train.prepare import CONFIG as PREPARE_CONFIG
from train.prepare import LANDMARKS_DIR

#: Methods in table order (the columns of ``metrics.md``): the model, then the baselines.
METHODS = {
    "portraitgan": "PortraitGAN",
    "tps_warp": "TPS warp",
    "warp": "piecewise-affine warp",
    "no_edit": "no edit",
}
SOURCE_MODALITY = "photo"

# Thresholds of :func:`gates`.
#: The expression task the expression gates judge.
GATE_TASK = "neutral->smiling"
#: Model NME at most the TPS warp's plus this, and at most this share of the unedited input's.
GATE_NME_MARGIN = 0.002
GATE_NME_SHARE_OF_NO_EDIT = 0.5
#: Modality translation: model SSIM against the pseudo-target at least the input's plus this.
GATE_MODALITY_SSIM_MARGIN = 0.05
GATE_MODALITIES = ("sketch", "cartoon")
#: Sketch outputs: mean chroma (0..255) below this.
GATE_SKETCH_CHROMA = 3.0
#: No-op fidelity in the face box: PSNR (dB) and Laplacian-variance ratio at least these.
GATE_NO_OP_PSNR = 40.0
GATE_NO_OP_DETAIL = 0.8


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
        """Inputs, targets, landmarks (tuples of (68, 2)) and every method's outputs of a batch.

        Images are (B, 3, H, W) tensors in [-1, 1]; ``maps`` the target landmark maps (B, 1, H, W) in [0, 1].
        """
        inputs, points_a = zip(*(self.load(p.row_a) for p in pairs))
        targets, points_b = zip(*(self.load(p.row_b) for p in pairs))
        size = inputs[0].shape[-1]
        maps = landmark_map_tensor(np.stack(points_b), size, self.model.config.landmark_line_width)
        modalities = [self.loader.rows[p.row_b]["modality"] for p in pairs]
        batch = torch.stack(inputs)
        warped = [
            piecewise_affine_warp(picture, a, b) for picture, a, b in zip(tensor_to_pil(batch), points_a, points_b)
        ]
        source, target = torch.from_numpy(np.stack(points_a)).float(), torch.from_numpy(np.stack(points_b)).float()
        return {
            "inputs": batch,
            "targets": torch.stack(targets),
            "points_a": points_a,
            "points_b": points_b,
            "maps": maps,
            "portraitgan": self._as_edited(self.model.generate(batch, maps, modalities, source, target), modalities),
            "tps_warp": warp_by_landmarks(batch, source, target),
            "warp": pil_to_tensor(warped),
            "no_edit": batch,
        }

    def _as_edited(self, outputs: torch.Tensor, modalities: list[str]) -> torch.Tensor:
        """G's outputs as the editor returns them: grey modalities (``config.achromatic_modalities``,
        e.g. ``sketch``) without colour (``editing.remove_colour``, the editor's last step)."""
        condition = torch.stack(
            [torch.eye(self.model.config.num_modalities)[self.model.config.modality_index(m)] for m in modalities]
        )
        return remove_colour(outputs.float().cpu(), achromatic_share(self.model, condition))

    def score(self, pairs: list[Pair]) -> list[dict[str, Any]]:
        """Per-pair records of a batch of pairs."""
        batch = self.outputs(pairs)
        size = tuple(batch["inputs"].shape[-2:])
        records = [self._record(pair) for pair in pairs]
        for record, points in zip(records, batch["points_b"]):
            record["mouth_window"] = list(mouth_window(points, size))
        for method in METHODS:
            outputs = batch[method]
            errors = mse(outputs, batch["targets"]).tolist()
            similarity = ssim(outputs, batch["targets"]).tolist()
            mouth = mouth_ssim(outputs, batch["targets"], np.stack(batch["points_b"])).tolist()
            chroma = mean_chroma(outputs).tolist()
            for i, pair in enumerate(pairs):
                found, descriptor = self._analyse(outputs[i], pair.row_a if method == "no_edit" else None)
                source = self._input(pair.row_a, batch["inputs"][i], batch["points_a"][i])
                distance = None if descriptor is None else descriptor_distance(source, descriptor)
                records[i]["methods"][method] = {
                    "mse": errors[i],
                    "ssim": similarity[i],
                    "mouth_ssim": mouth[i],
                    "chroma": chroma[i],
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
    """Means over pairs: MSE, SSIM, mouth SSIM and chroma over all, NME and identity distance over
    outputs with a face.

    ``same_person_share`` is the share of *all* pairs whose output is within dlib's 0.6 of the
    input, so an output without a detectable face counts as not the same person.
    ``identity_distance_max`` is the largest distance over outputs with a face.
    """
    values = [record["methods"][method] for record in records]
    nmes = [v["nme"] for v in values if v["nme"] is not None]
    distances = [v["identity_distance"] for v in values if v["identity_distance"] is not None]
    return {
        "pairs": len(values),
        "mse": float(np.mean([v["mse"] for v in values])),
        "ssim": float(np.mean([v["ssim"] for v in values])),
        "mouth_ssim": float(np.mean([v["mouth_ssim"] for v in values])),
        "chroma": float(np.mean([v["chroma"] for v in values])),
        "nme": float(np.mean(nmes)) if nmes else None,
        "identity_distance": float(np.mean(distances)) if distances else None,
        "identity_distance_max": float(np.max(distances)) if distances else None,
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


# --- no-op fidelity ------------------------------------------------------------------------------------
def original_photo(data: str | Path, row: dict[str, Any]) -> tuple[Path | None, str | None]:
    """The full-resolution photo a prepared crop (a manifest ``row``) was made from: ``(path, None)``,
    or ``(None, why not)``.

    ``train.prepare`` records it as ``landmarks/<stem>.json`` "source", relative to
    ``prepare_config.json`` "source_dir" (itself relative to the folder ``train.prepare`` ran in, if
    relative).
    """
    data = Path(data)
    config_path = data / PREPARE_CONFIG
    record_path = data / LANDMARKS_DIR / f"{Path(row['path']).stem}.json"
    for path in (config_path, record_path):
        if not path.is_file():
            return None, f"{path} is missing"
    try:
        source_dir = json.loads(config_path.read_text(encoding="utf-8"))["source_dir"]
        source = json.loads(record_path.read_text(encoding="utf-8"))["source"]
    except (ValueError, KeyError, TypeError) as error:
        return None, f"cannot read the source path from {record_path} and {config_path}: {error!r}"
    path = Path(source_dir) / source
    if not path.is_file():
        return None, f"source photo {path} not found"
    return path, None


def no_op_fidelity(model: PortraitGAN, photo: str | Path | Image.Image) -> dict[str, Any]:
    """The whole edit path of an edit that changes nothing, on one full-resolution photo.

    The largest face is aligned (``model.face_editor.align``), G renders it with its own landmarks
    and the ``photo`` modality (``editing.render``, with G's own mask: the editor's region limit
    would make an unchanged face exact by construction) and the result is put back at the photo's
    resolution (``editing.compose``), as an edit would; ``model.edit`` is not used, since it returns a
    no-op edit's photo unchanged. Compared with the photo inside the detected face box (clamped to
    the photo): ``psnr`` in dB (0..255 RGB; inf when identical, ``Infinity`` in metrics.json) and
    ``detail_ratio`` = Laplacian variance of the output's grey box / the input's (1 = fine detail
    kept, below 1 = blurred; None when the input box is flat). Raises ``PortraitGANError`` (e.g. no
    face), ``ValueError`` and ``OSError``.
    """
    editor = model.face_editor
    aligned = editor.align(photo)
    rendering = render(model, aligned, aligned.landmarks, SOURCE_MODALITY, limit_region=False)
    composed = compose(aligned.photo, aligned.alignment, rendering, editor.feather)
    left, top, right, bottom = aligned.face.box
    width, height = aligned.photo.size
    box = (max(0, left), max(0, top), min(width, right), min(height, bottom))
    if box[0] >= box[2] or box[1] >= box[3]:
        raise ValueError(f"face box {aligned.face.box} lies outside the {width}x{height} photo")
    before = np.asarray(aligned.photo.crop(box), dtype=np.float64)
    after = np.asarray(composed.crop(box), dtype=np.float64)
    detail = laplacian_variance(grey(before))
    return {
        "size": [width, height],
        "face_box": list(box),
        "psnr": psnr(after, before),
        "detail_ratio": laplacian_variance(grey(after)) / detail if detail > 0 else None,
    }


def no_op_evaluation(
    model: PortraitGAN, data: str | Path, rows: list[dict[str, Any]], limit: int, progress: bool = False
) -> dict[str, Any]:
    """:func:`no_op_fidelity` of the originals of the first ``limit`` photo ``rows`` (0 = none).

    A photo whose original is not found, or in which no face is found, is skipped with a note on
    stderr and listed under ``skipped``. ``psnr`` and ``detail_ratio`` are means over the evaluated
    photos (None when none was).
    """
    from tqdm.auto import tqdm

    chosen = [row for row in rows if row["modality"] == SOURCE_MODALITY][: max(0, limit)]
    photos, skipped = [], []
    start = time.perf_counter()
    for row in tqdm(chosen, desc="no-op fidelity", unit="photo", disable=not progress):
        path, reason = original_photo(data, row)
        if path is not None:
            try:
                photos.append({"input": row["path"], "source": str(path), **no_op_fidelity(model, path)})
                continue
            except (PortraitGANError, OSError, ValueError) as error:
                reason = f"{type(error).__name__}: {error}"
        print(f"note: no-op fidelity skips {row['path']}: {reason}", file=sys.stderr)
        skipped.append({"input": row["path"], "reason": reason})
    ratios = [p["detail_ratio"] for p in photos if p["detail_ratio"] is not None]
    return {
        "requested": limit,
        "evaluated": len(photos),
        "psnr": float(np.mean([p["psnr"] for p in photos])) if photos else None,
        "detail_ratio": float(np.mean(ratios)) if ratios else None,
        "seconds_per_photo": (time.perf_counter() - start) / len(photos) if photos else None,
        "photos": photos,
        "skipped": skipped,
    }


# --- gates ---------------------------------------------------------------------------------------------
def _gate(name: str, value: float | None, threshold: float | None, holds: bool | None) -> dict[str, Any]:
    return {"name": name, "value": value, "threshold": threshold, "passed": holds}


def _compare(value: float | None, threshold: float | None, op: str) -> bool | None:
    """``value op threshold``; None (not evaluated) without a threshold, False without a value."""
    if threshold is None:
        return None
    if value is None:
        return False
    return {"<=": value <= threshold, "<": value < threshold, ">=": value >= threshold, ">": value > threshold}[op]


def gates(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Pass/fail checks of an evaluation ``result`` (``pairs`` and ``no_op`` of :func:`evaluate`).

    Each is ``{"name", "value", "threshold", "passed"}``: the model's value, the threshold it is held
    to (from the baselines' means over the same pairs, or fixed), and True/False, or None when the
    gate could not be evaluated (its task, baseline or no-op photos are missing). A model value that
    is missing (dlib found no face in any output) fails. In order:

    * ``neutral->smiling``: NME <= TPS warp NME + 0.002, NME <= 0.5 x no-edit NME, SSIM >= TPS warp
      SSIM, mouth SSIM > TPS warp mouth SSIM, and identity distance < 0.6 for every pair (value: the
      largest; None, failing, when an output has no face);
    * for sketch and cartoon translation, where evaluated: SSIM >= no-edit SSIM + 0.05;
    * sketch outputs, where evaluated: mean chroma < 3 grey levels;
    * no-op fidelity: mean PSNR in the face box >= 40 dB and mean detail ratio >= 0.8.
    """
    records = result["pairs"]
    out = []

    def means(task: str) -> dict[str, dict[str, Any]] | None:
        chosen = [r for r in records if r["task"] == task]
        return {method: summarize(chosen, method) for method in METHODS} if chosen else None

    smile = means(GATE_TASK)
    model, tps, plain = (smile["portraitgan"], smile["tps_warp"], smile["no_edit"]) if smile else ({}, {}, {})

    def shifted(value: float | None, factor: float = 1.0, margin: float = 0.0) -> float | None:
        return None if value is None else factor * value + margin

    checks = [
        (f"NME ≤ TPS warp NME + {GATE_NME_MARGIN:g}", "nme", shifted(tps.get("nme"), margin=GATE_NME_MARGIN), "<="),
        (
            f"NME ≤ {GATE_NME_SHARE_OF_NO_EDIT:g} × no-edit NME",
            "nme",
            shifted(plain.get("nme"), GATE_NME_SHARE_OF_NO_EDIT),
            "<=",
        ),
        ("SSIM ≥ TPS warp SSIM", "ssim", tps.get("ssim"), ">="),
        ("mouth SSIM > TPS warp mouth SSIM", "mouth_ssim", tps.get("mouth_ssim"), ">"),
    ]
    for name, key, threshold, op in checks:
        out.append(_gate(f"{GATE_TASK}: {name}", model.get(key), threshold, _compare(model.get(key), threshold, op)))
    largest = model.get("identity_distance_max") if smile and not model["no_face"] else None
    threshold = SAME_PERSON_THRESHOLD if smile else None
    out.append(
        _gate(
            f"{GATE_TASK}: identity distance < {SAME_PERSON_THRESHOLD} for every pair (largest)",
            largest,
            threshold,
            _compare(largest, threshold, "<"),
        )
    )
    for modality in GATE_MODALITIES:
        task = f"{SOURCE_MODALITY}->{modality}"
        translated = means(task)
        if translated is None:
            continue
        value = translated["portraitgan"]["ssim"]
        threshold = translated["no_edit"]["ssim"] + GATE_MODALITY_SSIM_MARGIN
        name = f"{task}: SSIM ≥ no-edit SSIM + {GATE_MODALITY_SSIM_MARGIN}"
        out.append(_gate(name, value, threshold, _compare(value, threshold, ">=")))
    sketch = means(f"{SOURCE_MODALITY}->sketch")
    if sketch is not None:
        value = sketch["portraitgan"]["chroma"]
        name = f"{SOURCE_MODALITY}->sketch: mean chroma < {GATE_SKETCH_CHROMA:g} grey levels"
        out.append(_gate(name, value, GATE_SKETCH_CHROMA, _compare(value, GATE_SKETCH_CHROMA, "<")))
    no_op = result.get("no_op") or {}
    evaluated = bool(no_op.get("evaluated"))
    for name, key, threshold in (
        (f"no-op: PSNR in the face box ≥ {GATE_NO_OP_PSNR:g} dB", "psnr", GATE_NO_OP_PSNR),
        (f"no-op: detail ratio ≥ {GATE_NO_OP_DETAIL:g}", "detail_ratio", GATE_NO_OP_DETAIL),
    ):
        threshold = threshold if evaluated else None
        out.append(_gate(name, no_op.get(key), threshold, _compare(no_op.get(key), threshold, ">=")))
    return out


# --- report --------------------------------------------------------------------------------------------
def _number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    if value == float("inf"):
        return "∞"
    return f"{value:.{digits}f}"


#: Rows of each task's table: key of :func:`summarize`, label, digits.
TABLE_ROWS = (
    ("mse", "MSE↓", 4),
    ("ssim", "SSIM↑", 3),
    ("mouth_ssim", "mouth SSIM↑", 3),
    ("nme", "NME↓", 4),
    ("identity_distance", "identity distance↓", 3),
)


def markdown(result: dict[str, Any]) -> str:
    """``metrics.md``: one table per task (rows = metrics, columns = methods), the no-op fidelity table
    and the gate table."""
    lines = [
        f"# Evaluation of `{result['model']}`",
        "",
        f"Data `{result['data']}`, split `{result['split']}`: {len(result['pairs'])} pairs, "
        f"{result['seconds_per_pair']:.2f} s per pair (all methods and scoring).",
    ]
    methods = [m for m in METHODS if m in result.get("methods", METHODS)]  # older results lack some
    header = "| metric | " + " | ".join(METHODS[m] for m in methods) + " |"
    rule = "|---" * (len(methods) + 1) + "|"
    for task, by_method in result["means"].items():
        pairs = next(iter(by_method.values()))["pairs"]
        lines += ["", f"## {task}", "", f"{pairs} pair{'s' if pairs != 1 else ''}.", "", header, rule]
        for key, label, digits in TABLE_ROWS:
            cells = [_number(by_method[method].get(key), digits) for method in methods]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        share = [f"{100 * by_method[m]['same_person_share']:.0f} %" for m in methods]
        lines.append(f"| same person (distance < {SAME_PERSON_THRESHOLD})↑ | " + " | ".join(share) + " |")
        faceless = [f"{by_method[m]['no_face']} / {by_method[m]['pairs']}" for m in methods]
        lines.append("| no face found↓ | " + " | ".join(faceless) + " |")
    lines += [
        "",
        "MSE and SSIM on the [0, 1] scale against the real target I_B (for modality translation: the stylized "
        "pseudo-target of the same photo); mouth SSIM in the bounding box of the target's mouth landmarks "
        "(48-67) padded by 15 %, the same window for every method. NME: landmarks dlib finds on the output "
        "against the requested ones, divided by the inter-ocular distance (outer eye corners), over outputs "
        "with a face. Identity distance: Euclidean distance of dlib ResNet descriptors of input and output, over "
        "outputs with a face; the same-person share is over all pairs. TPS warp: the input moved to the target "
        "landmarks by the thin-plate-spline warp the warp-guided generator starts from; piecewise-affine warp: "
        "by triangles. For modality translation the landmarks do not change, so both warps equal no edit.",
    ]
    lines += ["", *_no_op_lines(result.get("no_op")), "", *_gate_lines(result.get("gates"))]
    return "\n".join(lines) + "\n"


def _no_op_lines(no_op: dict[str, Any] | None) -> list[str]:
    lines = ["## No-op fidelity (full resolution)", ""]
    if not no_op:
        return [*lines, "Not measured."]
    if not no_op["requested"]:
        return [*lines, "Not measured (`--no-op-photos 0`)."]
    if no_op["photos"]:
        lines += ["| photo | size | PSNR in face box (dB)↑ | detail ratio↑ |", "|---|---|---|---|"]
        for photo in no_op["photos"]:
            width, height = photo["size"]
            lines.append(
                f"| {Path(photo['input']).stem} | {width}×{height} | {_number(photo['psnr'], 2)} | "
                f"{_number(photo['detail_ratio'], 3)} |"
            )
        lines.append(
            f"| **mean of {no_op['evaluated']}** | | **{_number(no_op['psnr'], 2)}** | "
            f"**{_number(no_op['detail_ratio'], 3)}** |"
        )
        lines.append("")
    lines.append(
        "The whole edit path with the face's own landmarks and the photo modality: align, G, compose at the "
        "photo's resolution (not `edit`, which returns a no-op edit's photo unchanged). PSNR against the photo "
        "inside the detected face box; detail ratio = Laplacian variance of the result's grey face box / the "
        "photo's (below 1: fine detail lost)."
    )
    if no_op["skipped"]:
        lines += ["", f"Skipped {len(no_op['skipped'])} of {len(no_op['skipped']) + no_op['evaluated']} photos:"]
        lines += [f"- `{s['input']}`: {s['reason']}" for s in no_op["skipped"]]
    return lines


def _gate_lines(checks: list[dict[str, Any]] | None) -> list[str]:
    if checks is None:
        return ["## Gates", "", "Not evaluated."]
    verdicts = {True: "pass", False: "**fail**", None: "not evaluated"}
    passed = sum(g["passed"] is True for g in checks)
    lines = ["## Gates", "", f"{passed} of {len(checks)} gates pass.", ""]
    lines += ["| gate | value | threshold | result |", "|---|---|---|---|"]
    for g in checks:
        lines.append(f"| {g['name']} | {_number(g['value'])} | {_number(g['threshold'])} | {verdicts[g['passed']]} |")
    lines += [
        "",
        "Means over the evaluated pairs (the identity gate: the largest distance). The baselines in the "
        "thresholds are those of the same pairs; the TPS warp is the warp the model itself starts from.",
    ]
    return lines


def best_worst_pairs(records: list[dict[str, Any]], k: int) -> list[tuple[int, str]]:
    """Per expression direction (every task if there is none), the ``k`` best and ``k`` worst records by
    model SSIM: ``(index into records, label)``, best first within each direction."""
    kinds = {r["kind"] for r in records}
    wanted = "expression" if "expression" in kinds else None
    tasks = list(dict.fromkeys(r["task"] for r in records if wanted is None or r["kind"] == wanted))
    chosen = []
    for task in tasks:
        ranked = [i for i, r in enumerate(records) if r["task"] == task]
        ranked.sort(key=lambda i: records[i]["methods"]["portraitgan"]["ssim"], reverse=True)
        picks = ranked if len(ranked) <= 2 * k else ranked[:k] + ranked[-k:]
        for i in picks:
            label = (
                f"{task}\n#{ranked.index(i) + 1} of {len(ranked)}\n{records[i]['identity']}\n"
                f"SSIM {records[i]['methods']['portraitgan']['ssim']:.3f}"
            )
            chosen.append((i, label))
    return chosen


def best_worst_grid(evaluator: Evaluator, pairs: list[Pair], labels: list[str], padding: int = 2) -> Image.Image:
    """Rows of input | target landmarks | TPS warp | piecewise-affine warp | PortraitGAN | target,
    each with a label on the left."""
    batch = evaluator.outputs(pairs)
    columns = [
        batch["inputs"],
        (batch["maps"] * 2 - 1).expand(-1, 3, -1, -1),
        batch["tps_warp"],
        batch["warp"],
        batch["portraitgan"],
        batch["targets"],
    ]
    names = ("input", "target\nlandmarks", "TPS warp", "piecewise\nwarp", "PortraitGAN", "target")
    size = batch["inputs"].shape[-1]
    label_width, header = 100, 26
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


def parse_args(argv: list[str] | None = None) -> EvaluationConfig:
    defaults = EvaluationConfig("", "")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="saved PortraitGAN folder or Hub id")
    parser.add_argument("--data", required=True, help="folder prepared by train.prepare")
    parser.add_argument("--split", default=defaults.split)
    parser.add_argument("--out", default=defaults.out)
    parser.add_argument("--pairs", nargs="+", metavar="A:B", help="photo expression pairs (default: all ordered)")
    parser.add_argument("--no-modality-translation", action="store_true")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument(
        "--no-op-photos",
        type=int,
        default=defaults.no_op_photos,
        metavar="N",
        help="no-op fidelity of the whole edit path on the originals of N source photos (0: off; "
        f"default {defaults.no_op_photos})",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    pairs = None
    if args.pairs:
        if any(spec.count(":") != 1 for spec in args.pairs):
            parser.error("--pairs takes EXPRESSION_A:EXPRESSION_B, e.g. neutral:smiling")
        pairs = [tuple(spec.split(":")) for spec in args.pairs]
    if args.no_op_photos < 0:
        parser.error(f"--no-op-photos takes 0 or more photos, got {args.no_op_photos}")
    return EvaluationConfig(
        model=args.model,
        data=args.data,
        split=args.split,
        out=args.out,
        pairs=pairs,
        modality_translation=not args.no_modality_translation,
        batch_size=args.batch_size,
        no_op_photos=args.no_op_photos,
        progress=not args.no_progress,
    )


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        result = evaluate(config)
    except (PortraitGANError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    passed = sum(g["passed"] is True for g in result["gates"])
    print(
        f"{len(result['pairs'])} pairs, {result['seconds_per_pair']:.2f} s per pair; "
        f"{passed} of {len(result['gates'])} gates pass; wrote {config.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
