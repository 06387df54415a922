"""``metrics.md``: the tables of an evaluation result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from portraitgan_hub.faces.identity import SAME_PERSON_THRESHOLD
from train.evaluation.pairs import METHODS


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
