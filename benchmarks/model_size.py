"""Parameter count, FLOPs and median CPU latency of the generator presets (README table).

python benchmarks/model_size.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from portraitgan_hub import PortraitGAN, PortraitGANConfig
from portraitgan_hub.discriminator import MultiLevelDiscriminator


def measure(preset: str, repeats: int) -> dict[str, float]:
    config = PortraitGANConfig.preset(preset)
    model = PortraitGAN(config).eval()
    size = config.image_size
    inputs = (torch.zeros(1, 3, size, size), torch.zeros(1, 1, size, size), torch.zeros(1, dtype=torch.long))
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            model(*inputs)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(*inputs)
            times.append(time.perf_counter() - start)
    return {
        "generator_parameters_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "discriminator_parameters_M": sum(p.numel() for p in MultiLevelDiscriminator(config).parameters()) / 1e6,
        "GFLOPs": counter.get_total_flops() / 1e9,
        "median_latency_s": statistics.median(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| preset | size | generator params | discriminators params | GFLOPs (1 image) | median CPU latency |")
    print("|---|---|---|---|---|---|")
    for preset in ("paper", "lite"):
        r = measure(preset, args.repeats)
        size = PortraitGANConfig.preset(preset).image_size
        print(
            f"| `{preset}` | {size} | {r['generator_parameters_M']:.2f} M | {r['discriminator_parameters_M']:.2f} M "
            f"| {r['GFLOPs']:.1f} | {r['median_latency_s'] * 1000:.0f} ms |"
        )


if __name__ == "__main__":
    main()
