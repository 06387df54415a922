"""Train a Johnson et al. (2016) style network on a folder of content images and one style image.

    python -m train.train_style_network --style-image van_gogh.jpg --content-dir data/london256/photo \\
        --vgg-weights vgg19.safetensors --out checkpoints/styles/van_gogh.safetensors

Loss = content (VGG19 feature MSE at relu2_2, as in the paper's style-transfer experiments)
+ style (Gram matrix MSE at relu1_2, relu2_2, relu3_3, relu4_3) + total variation. The result is a
modality for ``python -m train.prepare ... --style van_gogh=checkpoints/styles/van_gogh.safetensors``.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from PIL import Image, ImageOps

from portraitgan_hub.image_tensors import pil_to_tensor
from portraitgan_hub.vgg import VGG19Features, load_vgg19
from train.sources import IMAGE_SUFFIXES
from train.style_network import StyleNetworkConfig, TransformerNet, save_style_network


@dataclass
class StyleTrainingConfig:
    style_image: str
    content_dir: str
    out: str
    vgg_weights: str | None = None
    allow_random_vgg: bool = False
    size: int = 256
    batch_size: int = 4
    steps: int = 2000
    lr: float = 1e-3
    content_weight: float = 1.0
    style_weight: float = 1e5
    tv_weight: float = 1e-5
    content_layers: list[str] = field(default_factory=lambda: ["relu2_2"])
    style_layers: list[str] = field(default_factory=lambda: ["relu1_2", "relu2_2", "relu3_3", "relu4_3"])
    channels: int = 32
    residual_blocks: int = 5
    seed: int = 0
    save_every: int = 500


def gram(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) Gram matrices normalised by C*H*W."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def total_variation(images: torch.Tensor) -> torch.Tensor:
    return (images[..., 1:, :] - images[..., :-1, :]).abs().mean() + (
        images[..., :, 1:] - images[..., :, :-1]
    ).abs().mean()


def load_square(path: str | Path, size: int) -> torch.Tensor:
    """An image centre-cropped to a square and resized to ``size``: (3, size, size) in [-1, 1]."""
    with Image.open(path) as image:
        square = ImageOps.fit(image.convert("RGB"), (size, size), Image.BICUBIC)
    return pil_to_tensor(square)[0]


def content_images(folder: str | Path) -> list[Path]:
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"no content images found under {folder}")
    return paths


class StyleLoss:
    """Perceptual loss of Johnson et al.: holds VGG19 and the style image's Gram matrices."""

    def __init__(self, vgg: VGG19Features, style: torch.Tensor, config: StyleTrainingConfig) -> None:
        self.vgg, self.config = vgg, config
        self.layers = tuple(dict.fromkeys([*config.content_layers, *config.style_layers]))
        with torch.no_grad():
            features = vgg(style[None], layers=tuple(config.style_layers))
        self.style_grams = {name: gram(f) for name, f in features.items()}

    def __call__(self, output: torch.Tensor, content: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.config
        with torch.no_grad():
            target = self.vgg(content, layers=tuple(c.content_layers))
        features = self.vgg(output, layers=self.layers)
        content_loss = sum(torch.mean((features[n] - target[n]) ** 2) for n in c.content_layers)
        style_loss = sum(
            torch.mean((gram(features[n]) - self.style_grams[n].expand(len(output), -1, -1)) ** 2)
            for n in c.style_layers
        )
        losses = {
            "content": c.content_weight * content_loss,
            "style": c.style_weight * style_loss,
            "tv": c.tv_weight * total_variation(output),
        }
        losses["total"] = losses["content"] + losses["style"] + losses["tv"]
        return losses


def training_step(
    net: TransformerNet, loss: StyleLoss, batch: torch.Tensor, optimizer: torch.optim.Optimizer
) -> dict[str, float]:
    """One optimisation step on a (B, 3, H, W) batch in [-1, 1]; returns the loss terms as floats."""
    net.train()
    optimizer.zero_grad(set_to_none=True)
    losses = loss(net(batch), batch)
    losses["total"].backward()
    optimizer.step()
    return {name: float(value.detach()) for name, value in losses.items()}


def train(config: StyleTrainingConfig) -> TransformerNet:
    """Train and save the network to ``config.out`` (every ``save_every`` steps and at the end)."""
    torch.manual_seed(config.seed)
    vgg = load_vgg19(config.vgg_weights, allow_random=config.allow_random_vgg)
    loss = StyleLoss(vgg, load_square(config.style_image, config.size), config)
    training_notes = {k: v for k, v in asdict(config).items() if k not in ("out", "channels", "residual_blocks")}
    net = TransformerNet(StyleNetworkConfig(config.channels, config.residual_blocks, training_notes))
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    paths = content_images(config.content_dir)
    generator = torch.Generator().manual_seed(config.seed)
    start = time.monotonic()
    for step in range(1, config.steps + 1):
        picks = torch.randint(len(paths), (config.batch_size,), generator=generator).tolist()
        batch = torch.stack([load_square(paths[i], config.size) for i in picks])
        losses = training_step(net, loss, batch, optimizer)
        if not math.isfinite(losses["total"]):
            raise FloatingPointError(f"style network loss became {losses['total']} at step {step}")
        if step % 50 == 0 or step == config.steps:
            terms = " ".join(f"{k}={v:.4g}" for k, v in losses.items())
            print(f"step {step}/{config.steps} {terms} ({time.monotonic() - start:.0f}s)", flush=True)
        if step % config.save_every == 0 or step == config.steps:
            save_style_network(net, config.out)
    return net.eval()


def parse_args(argv: list[str] | None = None) -> StyleTrainingConfig:
    defaults = StyleTrainingConfig("", "", "")
    parser = argparse.ArgumentParser(prog="python -m train.train_style_network", description=__doc__.split("\n")[0])
    parser.add_argument("--style-image", required=True)
    parser.add_argument("--content-dir", required=True, help="folder of content images (searched recursively)")
    parser.add_argument("--out", required=True, help="output .safetensors (a .json config is written beside)")
    parser.add_argument("--vgg-weights", help="VGG19 weights file or Hub id (default: $PORTRAITGAN_VGG19_WEIGHTS)")
    parser.add_argument("--allow-random-vgg", action="store_true", help="smoke tests only: untrained VGG19")
    for name in ("size", "batch_size", "steps", "channels", "residual_blocks", "seed", "save_every"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    for name in ("lr", "content_weight", "style_weight", "tv_weight"):
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    for name in ("content_layers", "style_layers"):
        parser.add_argument("--" + name.replace("_", "-"), nargs="+", default=getattr(defaults, name))
    return StyleTrainingConfig(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    if not config.out.endswith(".safetensors"):
        raise SystemExit(f"--out must end in .safetensors, got {config.out}")
    train(config)
    print(f"saved {config.out}")


if __name__ == "__main__":
    main()
