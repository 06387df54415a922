"""Latency of one slider edit of a full-size photo after detection, server side, per stage.

What the app does when a slider is released, through the one editor (``FaceEditor``): plan (target
landmarks, condition) -> render ((flow and) map -> G) -> full-resolution composition, the photo already
prepared (faces detected and aligned once). Median over ``--repeats``.

python benchmarks/edit_speed.py [--photo tests/assets/london/001_neutral.jpg] [--repeats 20] [--paper]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from portraitgan_hub import DEFAULT_MODEL, PortraitGAN, PortraitGANConfig
from portraitgan_hub.edit_request import EditRequest
from portraitgan_hub.faces.expressions import ExpressionControls


def measure(model: PortraitGAN, photo: str, repeats: int) -> dict[str, float]:
    editor = model.face_editor
    prepared = editor.prepare(photo)  # stage 1, detection and alignment: once per photo, cached
    stages: dict[str, list[float]] = {"plan (landmarks)": [], "render (map, flow, G)": [], "compose": [], "total": []}
    for index in range(repeats + 1):
        smile = 0.5 + 0.5 * (index % 2)  # a different value each time, as a slider gives
        start = time.perf_counter()
        plan = editor.plan(prepared, EditRequest(controls=ExpressionControls(smile=smile)))
        planned = time.perf_counter()
        rendering = editor.render(prepared, plan)
        rendered = time.perf_counter()
        editor.compose(prepared, plan, rendering)
        end = time.perf_counter()
        if index:  # the first call warms up
            stages["plan (landmarks)"].append(planned - start)
            stages["render (map, flow, G)"].append(rendered - planned)
            stages["compose"].append(end - rendered)
            stages["total"].append(end - start)
    return {name: statistics.median(times) * 1000 for name, times in stages.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", default="tests/assets/london/001_neutral.jpg")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--paper", action="store_true", help="also the paper preset (512 px, about 3 s an edit)")
    args = parser.parse_args()
    torch.manual_seed(0)
    models = {
        "embedded demo (lite-u, trained)": PortraitGAN.from_pretrained(DEFAULT_MODEL),
        "lite, paper head": PortraitGAN(PortraitGANConfig.preset("lite")).eval(),
        "lite, warp_guided": PortraitGAN(PortraitGANConfig.preset("lite", warp_guided=True)).eval(),
    }
    if args.paper:
        models["paper"] = PortraitGAN(PortraitGANConfig.preset("paper")).eval()
        models["paper, warp_guided"] = PortraitGAN(PortraitGANConfig.preset("paper", warp_guided=True)).eval()
    print(f"photo {args.photo}, torch {torch.__version__}, {torch.get_num_threads()} threads; median ms")
    print("| model | " + " | ".join(["plan (landmarks)", "render (map, flow, G)", "compose", "total"]) + " |")
    print("|---|---|---|---|---|")
    for name, model in models.items():
        repeats = args.repeats if "paper" not in name.split(",")[0] else max(3, args.repeats // 5)
        figures = measure(model, args.photo, repeats)
        print(f"| {name} | " + " | ".join(f"{value:.1f}" for value in figures.values()) + " |")
    np.random.seed(0)


if __name__ == "__main__":
    main()
