"""Turn a published masked PortraitGAN into a warp-guided one that starts where it left off.

    python -m train.make_warp_guided portraitgan_hub/pretrained/london-lite runs/london-lite-warp \
        --conditional-discriminator --mouth-discriminator

The output folder (config.json, model.safetensors, card) is a ``model.init_from`` for a training run
with ``warp_guided: true`` (see ``portraitgan_hub.growth.grow_warp_guidance``).
"""

from __future__ import annotations

import argparse

from portraitgan_hub.growth import grow_warp_guidance
from portraitgan_hub.model import PortraitGAN


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m train.make_warp_guided", description=__doc__.split("\n")[0])
    parser.add_argument("source", help="folder or Hub id of a PortraitGAN with attention_mask")
    parser.add_argument("out_dir")
    parser.add_argument("--conditional-discriminator", action="store_true")
    parser.add_argument("--mouth-discriminator", action="store_true")
    args = parser.parse_args(argv)
    grown = grow_warp_guidance(
        PortraitGAN.from_pretrained(args.source),
        conditional_discriminator=args.conditional_discriminator,
        mouth_discriminator=args.mouth_discriminator,
    )
    grown.save_pretrained(args.out_dir)
    print(f"wrote {args.out_dir}: {args.source} made warp-guided")


if __name__ == "__main__":
    main()
