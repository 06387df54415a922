"""Johnson et al. style network: architecture, one training step, safetensors round trip, as a stylizer."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from portraitgan_hub.errors import CheckpointError
from portraitgan_hub.vgg import load_vgg19
from train.style_network import (
    NeuralStylizer,
    StyleNetworkConfig,
    TransformerNet,
    load_style_network,
    save_style_network,
)
from train.train_style_network import StyleLoss, StyleTrainingConfig, main, training_step

ASSETS = Path(__file__).parent / "assets" / "london_subset"


def test_architecture_shapes() -> None:
    net = TransformerNet()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].kernel_size == (9, 9) and convs[-1].kernel_size == (9, 9)
    assert [c.stride for c in convs[1:3]] == [(2, 2), (2, 2)]
    assert sum(type(m).__name__ == "ResidualBlock" for m in net.modules()) == 5
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules())
    out = net(torch.rand(2, 3, 64, 48) * 2 - 1)
    assert out.shape == (2, 3, 64, 48) and out.abs().max() <= 1
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.zeros(1, 3, 30, 32))


def test_one_training_step_is_finite() -> None:
    torch.manual_seed(0)
    config = StyleTrainingConfig("", "", "", allow_random_vgg=True, size=32, channels=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        vgg = load_vgg19(None, allow_random=True)
    loss = StyleLoss(vgg, torch.rand(3, 32, 32) * 2 - 1, config)
    net = TransformerNet(StyleNetworkConfig(channels=8))
    before = [p.detach().clone() for p in net.parameters()]
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    losses = training_step(net, loss, torch.rand(2, 3, 32, 32) * 2 - 1, optimizer)
    assert set(losses) == {"content", "style", "tv", "total"}
    assert all(np.isfinite(v) and v >= 0 for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_training_script_saves_a_checkpoint_that_stylizes(tmp_path: Path) -> None:
    out = tmp_path / "styles" / "toy.safetensors"
    args = ["--style-image", str(ASSETS / "neutral" / "001.jpg"), "--content-dir", str(ASSETS / "smiling")]
    args += ["--out", str(out), "--allow-random-vgg", "--size", "32", "--batch-size", "2", "--steps", "1"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        main([*args, "--channels", "8"])
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert not list(out.parent.glob(".*.tmp"))
    net = load_style_network(out)
    assert net.config.channels == 8 and net.config.training["steps"] == 1
    photo = Image.new("RGB", (50, 42), (200, 150, 120))
    styled = NeuralStylizer(out)(photo)
    assert styled.size == photo.size and styled.mode == "RGB"


def test_checkpoints_are_safetensors_only(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="safetensors"):
        save_style_network(TransformerNet(StyleNetworkConfig(channels=4)), tmp_path / "net.pt")
    with pytest.raises(CheckpointError, match="safetensors"):
        load_style_network(tmp_path / "net.pth")
    (tmp_path / "junk.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(CheckpointError):
        load_style_network(tmp_path / "junk.safetensors")
