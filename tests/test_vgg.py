import pytest
import torch
from safetensors.torch import save_file

from portraitgan_hub import CheckpointError, PretrainedWeightsMissingError
from portraitgan_hub.vgg import LAYER_INDEX, VGG19Features, load_vgg19


@pytest.fixture(scope="module")
def reference() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: v.clone() for k, v in VGG19Features().state_dict().items()}


def _torchvision_layout(features):
    classifier = {"classifier.0.weight": torch.zeros(4, 4), "classifier.6.bias": torch.zeros(10)}
    return {**features, **classifier}


def _timm_layout(features):
    head = {"pre_logits.fc1.weight": torch.zeros(4, 512, 1, 1), "head.fc.weight": torch.zeros(10, 4)}
    return {**features, **head}


@pytest.mark.parametrize("layout", [_torchvision_layout, _timm_layout])
@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_weights_load_from_file_in_both_layouts(tmp_path, reference, layout, suffix):
    path = tmp_path / f"vgg19{suffix}"
    state = layout(reference)
    if suffix == ".pth":
        torch.save(state, path)
    else:
        save_file(state, str(path))
    loaded = load_vgg19(path).state_dict()
    assert all(torch.equal(loaded[k], reference[k]) for k in reference)
    assert not any(p.requires_grad for p in load_vgg19(path).parameters())


def test_prefixed_keys_and_folders_load(tmp_path, reference):
    save_file({f"module.{k}": v for k, v in reference.items()}, str(tmp_path / "model.safetensors"))
    loaded = load_vgg19(tmp_path)  # a folder with model.safetensors, keys with a wrapper prefix
    assert torch.equal(loaded.state_dict()["features.0.weight"], reference["features.0.weight"])


def test_pth_with_code_is_refused(tmp_path):
    torch.save({"features.0.weight": torch.zeros(1), "evil": CheckpointError("x")}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="not a plain tensor state dict"):
        load_vgg19(tmp_path / "evil.pth")


def test_incomplete_weights_are_refused(tmp_path, reference):
    save_file({k: v for k, v in reference.items() if "features.0." not in k}, str(tmp_path / "v.safetensors"))
    with pytest.raises(CheckpointError, match="lack 2 tensors"):
        load_vgg19(tmp_path / "v.safetensors")


def test_no_weights_is_an_error_that_says_how(monkeypatch):
    monkeypatch.delenv("PORTRAITGAN_VGG19_WEIGHTS", raising=False)
    with pytest.raises(PretrainedWeightsMissingError, match="PORTRAITGAN_VGG19_WEIGHTS"):
        load_vgg19()


def test_random_features_only_on_request_and_loudly(monkeypatch, tmp_path, reference):
    monkeypatch.delenv("PORTRAITGAN_VGG19_WEIGHTS", raising=False)
    with pytest.warns(UserWarning, match="RANDOM VGG19 FEATURES"):
        load_vgg19(allow_random=True)
    save_file(reference, str(tmp_path / "v.safetensors"))
    monkeypatch.setenv("PORTRAITGAN_VGG19_WEIGHTS", str(tmp_path / "v.safetensors"))
    assert torch.equal(load_vgg19().state_dict()["features.0.weight"], reference["features.0.weight"])


def test_named_layers():
    assert LAYER_INDEX["conv1_1"] == 0 and LAYER_INDEX["relu1_1"] == 1 and LAYER_INDEX["conv5_1"] == 28
    with pytest.warns(UserWarning):
        vgg = load_vgg19(allow_random=True)
    out = vgg(torch.zeros(1, 3, 32, 32), ("conv1_1", "relu2_2", "conv5_1"))
    assert out["conv1_1"].shape == (1, 64, 32, 32) and out["conv5_1"].shape == (1, 512, 2, 2)
