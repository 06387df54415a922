"""Forward + backward cost of the thin-plate-spline warp, and of the warp-guided G's extra work.

``warp_by_landmarks`` on a batch of 4 images at 256 px (a smile on the mean face), gradients to the
image and to the points; and ``warp_guidance`` (warp plus hallucination mask) per image, forward only,
as the generator runs it. Median milliseconds over ``--repeats``.

python benchmarks/warp_speed.py [--repeats 20] [--size 256] [--batch 4]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from portraitgan_hub.faces.alignment import template_in_crop
from portraitgan_hub.faces.expressions import apply_expression
from portraitgan_hub.thin_plate_spline import warp_by_landmarks
from portraitgan_hub.warp_guidance import warp_guidance


def median_ms(work, repeats: int) -> float:
    work()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    size, batch = args.size, args.batch
    neutral = template_in_crop(size)
    source = torch.tensor(neutral, dtype=torch.float32)[None].expand(batch, -1, -1).contiguous()
    target = torch.tensor(apply_expression(neutral, smile=1.0), dtype=torch.float32)[None].expand(batch, -1, -1)
    image = torch.rand(batch, 3, size, size)

    def forward_backward(points_need_grad: bool) -> None:
        pixels = image.clone().requires_grad_()
        points = source.clone().requires_grad_(points_need_grad)
        warp_by_landmarks(pixels, points, target).square().mean().backward()

    def guidance() -> None:
        with torch.no_grad():
            warp_guidance(image[:1], source[:1], target[:1])

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {size} px")
    image_only = median_ms(lambda: forward_backward(False), args.repeats)
    with_points = median_ms(lambda: forward_backward(True), args.repeats)
    print(f"TPS warp forward+backward, batch {batch}, gradient to the image: {image_only:.1f} ms")
    print(f"TPS warp forward+backward, batch {batch}, gradient to image and points: {with_points:.1f} ms")
    print(f"warp_guidance (warp + hallucination mask), 1 image, forward: {median_ms(guidance, args.repeats):.1f} ms")


if __name__ == "__main__":
    main()
