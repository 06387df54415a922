"""Means per task over the scored pairs, and the pass/fail gates on them."""

from __future__ import annotations

from typing import Any

import numpy as np

from portraitgan_hub.faces.identity import SAME_PERSON_THRESHOLD
from train.evaluation.pairs import METHODS, SOURCE_MODALITY

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
