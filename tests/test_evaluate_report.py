"""What ``train.evaluation`` makes of its scores: the gates, the best and worst pairs, and the
markdown report (of an older ``metrics.json`` too)."""

from __future__ import annotations

import copy

import pytest

from train.evaluation.gates import GATE_TASK, gates
from train.evaluation.pictures import best_worst_pairs
from train.evaluation.report import markdown


# --- gates -----------------------------------------------------------------------------------------------
def _scores(**values) -> dict:
    base = {"mse": 0.01, "ssim": 0.8, "mouth_ssim": 0.7, "nme": 0.03, "identity_distance": 0.3, "chroma": 1.0}
    scores = {**base, **values}
    scores["face_found"] = scores["nme"] is not None
    return scores


def _pair(task: str, **methods: dict) -> dict:
    kind = "modality" if task.startswith("photo->") else "expression"
    scores = {"portraitgan": _scores(), "tps_warp": _scores(), "warp": _scores(), "no_edit": _scores(nme=0.08)}
    return {"kind": kind, "task": task, "identity": "x", "methods": copy.deepcopy({**scores, **methods})}


def _crafted_result() -> dict:
    """Every gate passes: model NME 0.03 vs TPS 0.03 and no edit 0.08, SSIM and mouth SSIM above the TPS warp's,
    sketch and cartoon SSIM 0.1 above no edit, grey sketches, no-op 45 dB and ratio 0.95."""
    smile = {"portraitgan": _scores(ssim=0.85, mouth_ssim=0.75), "tps_warp": _scores(nme=0.029)}
    translation = {"portraitgan": _scores(ssim=0.8), "no_edit": _scores(ssim=0.7)}
    pairs = [_pair(GATE_TASK, **smile), _pair(GATE_TASK, **smile), _pair("smiling->neutral")]
    pairs += [_pair("photo->sketch", **translation), _pair("photo->cartoon", **translation)]
    no_op = {"requested": 2, "evaluated": 2, "psnr": 45.0, "detail_ratio": 0.95, "photos": [], "skipped": []}
    return {"pairs": pairs, "no_op": no_op}


def _verdicts(result: dict) -> dict[str, bool | None]:
    return {gate["name"]: gate["passed"] for gate in gates(result)}


def test_gates_pass_on_a_crafted_result_and_name_their_thresholds() -> None:
    checks = gates(_crafted_result())
    assert all(set(g) == {"name", "value", "threshold", "passed"} for g in checks)
    assert [g["passed"] for g in checks] == [True] * 10
    by_name = {g["name"]: g for g in checks}
    assert by_name["neutral->smiling: NME ≤ TPS warp NME + 0.002"]["threshold"] == pytest.approx(0.031)
    assert by_name["neutral->smiling: NME ≤ 0.5 × no-edit NME"]["threshold"] == pytest.approx(0.04)
    assert by_name["photo->sketch: SSIM ≥ no-edit SSIM + 0.05"]["threshold"] == pytest.approx(0.75)
    assert by_name["photo->sketch: mean chroma < 3 grey levels"]["threshold"] == 3.0


@pytest.mark.parametrize(
    ("gate", "change"),
    [
        ("neutral->smiling: NME ≤ TPS warp NME + 0.002", lambda r: _set(r, GATE_TASK, "portraitgan", nme=0.0315)),
        ("neutral->smiling: NME ≤ 0.5 × no-edit NME", lambda r: _set(r, GATE_TASK, "no_edit", nme=0.05)),
        ("neutral->smiling: SSIM ≥ TPS warp SSIM", lambda r: _set(r, GATE_TASK, "tps_warp", ssim=0.86)),
        (
            "neutral->smiling: mouth SSIM > TPS warp mouth SSIM",
            lambda r: _set(r, GATE_TASK, "tps_warp", mouth_ssim=0.75),
        ),
        (
            "neutral->smiling: identity distance < 0.6 for every pair (largest)",
            lambda r: r["pairs"][1]["methods"]["portraitgan"].update(identity_distance=0.61),
        ),
        ("photo->sketch: SSIM ≥ no-edit SSIM + 0.05", lambda r: _set(r, "photo->sketch", "portraitgan", ssim=0.74)),
        ("photo->cartoon: SSIM ≥ no-edit SSIM + 0.05", lambda r: _set(r, "photo->cartoon", "no_edit", ssim=0.76)),
        ("photo->sketch: mean chroma < 3 grey levels", lambda r: _set(r, "photo->sketch", "portraitgan", chroma=3.0)),
        ("no-op: PSNR in the face box ≥ 40 dB", lambda r: r["no_op"].update(psnr=39.9)),
        ("no-op: detail ratio ≥ 0.8", lambda r: r["no_op"].update(detail_ratio=0.79)),
    ],
)
def test_each_gate_fails_alone_when_its_condition_breaks(gate: str, change) -> None:
    result = _crafted_result()
    change(result)
    verdicts = _verdicts(result)
    assert verdicts.pop(gate) is False
    assert all(verdicts.values())  # and no other gate


def _set(result: dict, task: str, method: str, **values: float) -> None:
    for record in result["pairs"]:
        if record["task"] == task:
            record["methods"][method].update(values)


def test_gates_at_their_boundaries_and_without_faces_or_tasks() -> None:
    result = _crafted_result()
    _set(result, GATE_TASK, "portraitgan", nme=0.031, mouth_ssim=0.7)  # = TPS + 0.002 passes; equal mouth SSIM fails
    verdicts = _verdicts(result)
    assert verdicts["neutral->smiling: NME ≤ TPS warp NME + 0.002"] is True
    assert verdicts["neutral->smiling: mouth SSIM > TPS warp mouth SSIM"] is False
    result = _crafted_result()
    result["pairs"][0]["methods"]["portraitgan"] = _scores(nme=None, identity_distance=None)  # dlib found no face
    identity = next(g for g in gates(result) if g["name"].startswith("neutral->smiling: identity"))
    assert identity["value"] is None and identity["passed"] is False
    result = _crafted_result()
    result["pairs"] = [r for r in result["pairs"] if r["task"] in ("smiling->neutral", "photo->cartoon")]
    checks = gates(result)
    assert [g["passed"] for g in checks if g["name"].startswith(GATE_TASK)] == [None] * 5  # not evaluated
    assert not any("sketch" in g["name"] for g in checks) and any("cartoon" in g["name"] for g in checks)


# --- best and worst pairs ------------------------------------------------------------------------------
def test_best_and_worst_pairs_per_direction() -> None:
    records = []
    for task in ("neutral->smiling", "smiling->neutral", "photo->sketch"):
        for value in (0.5, 0.9, 0.1, 0.7):
            records.append(_pair(task, portraitgan=_scores(ssim=value)))
    chosen = best_worst_pairs(records, 1)
    assert [records[i]["task"] for i, _ in chosen] == ["neutral->smiling"] * 2 + ["smiling->neutral"] * 2
    assert [records[i]["methods"]["portraitgan"]["ssim"] for i, _ in chosen] == [0.9, 0.1, 0.9, 0.1]
    assert chosen[1][1].startswith("neutral->smiling\n#4 of 4")
    assert len(best_worst_pairs(records, 2)) == 8 and len(best_worst_pairs(records, 3)) == 8  # all 4 of each
    modality_only = [r for r in records if r["kind"] == "modality"]
    assert len(best_worst_pairs(modality_only, 1)) == 2


def test_markdown_of_an_evaluation_from_before_the_tps_warp_and_the_gates() -> None:
    """An older ``metrics.json`` (three methods, no mouth SSIM, no no-op fidelity, no gates) still renders."""
    old = {"mse": 0.01, "ssim": 0.8, "nme": 0.03, "identity_distance": 0.2, "same_person_share": 1.0}
    result = {
        "model": "m",
        "data": "d",
        "split": "val",
        "seconds_per_pair": 1.0,
        "pairs": [{}],
        "methods": {"portraitgan": "PortraitGAN", "no_edit": "no edit", "warp": "piecewise-affine warp"},
        "means": {GATE_TASK: {m: {**old, "pairs": 1, "no_face": 0} for m in ("portraitgan", "no_edit", "warp")}},
    }
    text = markdown(result)
    assert "| metric | PortraitGAN | piecewise-affine warp | no edit |" in text
    assert "| mouth SSIM↑ | – | – | – |" in text and "| SSIM↑ | 0.800 | 0.800 | 0.800 |" in text
    assert "## No-op fidelity (full resolution)\n\nNot measured.\n" in text
    assert text.endswith("## Gates\n\nNot evaluated.\n")
