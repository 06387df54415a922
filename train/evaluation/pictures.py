"""``best_worst.png``: the pairs of highest and lowest model SSIM, every method side by side."""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageDraw

from portraitgan_hub.image_tensors import tensor_to_pil
from train.evaluation.evaluator import Evaluator
from train.evaluation.pairs import Pair


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
