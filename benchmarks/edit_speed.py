"""Latency of one slider edit of a full-size photo after detection, server side, per stage.

What the app does when a slider is released: target landmarks -> (flow and) map -> G -> full-resolution
composition, the face already detected and aligned (cached per photo). Median over ``--repeats``.

python benchmarks/edit_speed.py [--photo tests/assets/london/001_neutral.jpg] [--repeats 20] [--paper]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from portraitgan_hub import DEFAULT_MODEL, PortraitGAN, PortraitGANConfig
from portraitgan_hub.editing import compose, render, target_landmarks
from portraitgan_hub.faces.expressions import ExpressionControls


def measure(model: PortraitGAN, photo: str, repeats: int) -> dict[str, float]:
    aligned = model.face_editor.align(photo)  # detection and alignment: once per photo, cached
    stages: dict[str, list[float]] = {"landmarks": [], "render (map, flow, G)": [], "compose": [], "total": []}
    for index in range(repeats + 1):
        smile = 0.5 + 0.5 * (index % 2)  # a different value each time, as a slider gives
        start = time.perf_counter()
        target = target_landmarks(aligned, ExpressionControls(smile=smile))
        landmarks_done = time.perf_counter()
        rendering = render(model, aligned, target, "photo")
        render_done = time.perf_counter()
        compose(aligned.photo, aligned.alignment, rendering, model.face_editor.feather)
        end = time.perf_counter()
        if index:  # the first call warms up
            stages["landmarks"].append(landmarks_done - start)
            stages["render (map, flow, G)"].append(render_done - landmarks_done)
            stages["compose"].append(end - render_done)
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
        "embedded demo (lite + warp_guided, trained)": PortraitGAN.from_pretrained(DEFAULT_MODEL),
        "lite, paper head": PortraitGAN(PortraitGANConfig.preset("lite")).eval(),
        "lite, warp_guided": PortraitGAN(PortraitGANConfig.preset("lite", warp_guided=True)).eval(),
    }
    if args.paper:
        models["paper"] = PortraitGAN(PortraitGANConfig.preset("paper")).eval()
        models["paper, warp_guided"] = PortraitGAN(PortraitGANConfig.preset("paper", warp_guided=True)).eval()
    print(f"photo {args.photo}, torch {torch.__version__}, {torch.get_num_threads()} threads; median ms")
    print("| model | " + " | ".join(["landmarks", "render (map, flow, G)", "compose", "total"]) + " |")
    print("|---|---|---|---|---|")
    for name, model in models.items():
        repeats = args.repeats if "paper" not in name.split(",")[0] else max(3, args.repeats // 5)
        figures = measure(model, args.photo, repeats)
        print(f"| {name} | " + " | ".join(f"{value:.1f}" for value in figures.values()) + " |")
    np.random.seed(0)


if __name__ == "__main__":
    main()
