"""Time per frame of ``animate`` on a 1350 px photo (issue #25, item 6).

    python benchmarks/animate_speed.py [--photo tests/assets/london/001_neutral.jpg] [--frames 24] [--model DIR]

Writes a driving video of ``--frames`` frames (a London photo warped from neutral to an open smile
and back, 480 px, 24 fps, with PyAV), animates ``--photo`` with it through
``portraitgan_hub.animate.animate`` and prints the rendering time per frame (G, full-resolution
composition and H.264 encoding) and the landmark time per driving frame.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # train/ (the piecewise-affine warp) is not installed
ASSETS = ROOT / "tests" / "assets" / "london"


def write_driving(path: Path, frames: int, side: int = 480, fps: int = 24) -> None:
    import av

    from portraitgan_hub.faces.expressions import apply_expression, interpolate
    from portraitgan_hub.faces.image_io import load_image
    from portraitgan_hub.faces.landmarks import default_detector
    from train.evaluation.piecewise_affine import piecewise_affine_warp

    photo = load_image(ASSETS / "005_neutral.jpg")
    neutral = default_detector().detect(photo)[0].landmarks
    opened = apply_expression(neutral, smile=1.2, mouth_open=0.8)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        for step in np.sin(np.linspace(0, np.pi, frames)):
            warped = piecewise_affine_warp(photo, neutral, interpolate(neutral, opened, float(step)))
            frame = av.VideoFrame.from_image(warped.resize((side, side), Image.Resampling.LANCZOS))
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photo", type=Path, default=ASSETS / "001_neutral.jpg")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--model", default=None)
    args = parser.parse_args(argv)

    import torch

    from portraitgan_hub.animate import animate
    from portraitgan_hub.default_model import load_model

    torch.set_grad_enabled(False)
    model = load_model(args.model)
    with tempfile.TemporaryDirectory() as folder:
        driving = Path(folder) / "driving.mp4"
        write_driving(driving, args.frames)
        start = time.perf_counter()
        report = animate(model, args.photo, driving, Path(folder) / "out.mp4", progress=False)
        total = time.perf_counter() - start
    size = Image.open(args.photo).size
    landmarks = (total - report.seconds_per_frame * report.frames) / report.frames
    print(
        f"{args.photo.name} ({size[0]}x{size[1]}), {report.frames} frames: {report.seconds_per_frame:.3f} s per "
        f"frame rendered and encoded, {landmarks:.3f} s per driving frame for the photo's and the video's faces, "
        f"{total / report.frames:.3f} s per frame in all (torch threads {torch.get_num_threads()})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
