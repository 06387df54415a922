import json

import pytest

from portraitgan_hub import PortraitGANConfig


@pytest.mark.parametrize("preset", ["paper", "lite"])
def test_json_round_trip(preset, tmp_path):
    config = PortraitGANConfig.preset(preset, modalities=["photo", "anime"])
    path = tmp_path / "config.json"
    config.to_json(path)
    assert PortraitGANConfig.from_json(path) == config
    assert PortraitGANConfig.from_json(config.to_json()) == config
    assert json.loads(path.read_text())["modalities"] == ["photo", "anime"]


def test_paper_preset_follows_implementation_details():
    config = PortraitGANConfig.preset("paper")
    assert (config.image_size, config.base_channels, config.max_channels) == (512, 64, 1024)
    assert (config.num_downsamplings, config.num_residual_blocks, config.num_levels) == (4, 9, 2)
    assert config.discriminator_layers == 3


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="divisible"):
        PortraitGANConfig(image_size=100)
    with pytest.raises(ValueError, match="unknown preset"):
        PortraitGANConfig.preset("huge")
    with pytest.raises(ValueError, match="unknown PortraitGANConfig fields"):
        PortraitGANConfig.from_dict({"image_size": 256, "colour": "red"})
    with pytest.raises(ValueError, match="unique"):
        PortraitGANConfig(modalities=["photo", "photo"])


def test_modality_index_by_name_or_index():
    config = PortraitGANConfig(modalities=["photo", "sketch"])
    assert config.modality_index("sketch") == 1
    assert config.modality_index(0) == 0
    with pytest.raises(ValueError, match="knows"):
        config.modality_index("cartoon")
    with pytest.raises(ValueError):
        config.modality_index(2)
