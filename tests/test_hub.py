"""save_pretrained / from_pretrained / push_to_hub, with local folders, the HF cache offline, and a
fake of the Hub's HTTP API only."""

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi
from safetensors.torch import load_file, save_file

from portraitgan_hub import CheckpointError, PortraitGAN, PortraitGANConfig
from portraitgan_hub.io_utils import default_file_mode

TINY = PortraitGANConfig(image_size=32, base_channels=4, max_channels=16, num_residual_blocks=1)


@pytest.fixture
def saved(tmp_path) -> tuple[PortraitGAN, Path]:
    torch.manual_seed(0)
    model = PortraitGAN(TINY).eval()
    model.save_pretrained(tmp_path / "model")
    return model, tmp_path / "model"


def _inputs():
    torch.manual_seed(1)
    return torch.rand(2, 3, 32, 32) * 2 - 1, (torch.rand(2, 1, 32, 32) > 0.8).float()


def test_save_writes_config_weights_and_card(saved):
    _, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert PortraitGANConfig.from_dict(json.loads((folder / "config.json").read_text())) == TINY
    card = (folder / "README.md").read_text()
    assert "pipeline_tag: image-to-image" in card and "library_name: portraitgan-hub" in card
    assert "license: apache-2.0" in card and "1807.01826" in card and '"image_size": 32' in card
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert set(modes.values()) == {default_file_mode()}, modes  # not safetensors' private 0600


def test_round_trip_is_bit_identical(saved):
    model, folder = saved
    loaded = PortraitGAN.from_pretrained(folder)
    assert loaded.config == TINY and not loaded.training
    images, maps = _inputs()
    assert torch.equal(model.generate(images, maps, "sketch"), loaded.generate(images, maps, "sketch"))


def test_missing_unexpected_and_misshaped_tensors_are_errors(saved):
    _, folder = saved
    state = load_file(folder / "model.safetensors")
    name = next(iter(state))
    for broken, words in (
        ({k: v for k, v in state.items() if k != name}, "missing"),
        ({**state, "extra.weight": torch.zeros(1)}, "unexpected"),
        ({**state, name: torch.zeros(7)}, "wrong shape"),
    ):
        save_file(broken, folder / "model.safetensors")
        with pytest.raises(CheckpointError, match=words):
            PortraitGAN.from_pretrained(folder)


def test_config_of_another_architecture_is_refused(saved):
    _, folder = saved
    (folder / "config.json").write_text(json.dumps({**TINY.to_dict(), "base_channels": 8}))
    with pytest.raises(CheckpointError, match="wrong shape"):
        PortraitGAN.from_pretrained(folder)


def test_not_safetensors_is_refused(saved):
    _, folder = saved
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        PortraitGAN.from_pretrained(folder)


def test_pickle_only_folder_is_refused_without_unpickling(saved, monkeypatch):
    model, folder = saved
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    with pytest.raises(CheckpointError, match="only a pickle checkpoint .*pytorch_model.bin"):
        PortraitGAN.from_pretrained(folder)


def test_folder_without_config_is_refused(tmp_path):
    (tmp_path / "model.pth").write_bytes(b"\x80\x04")
    with pytest.raises(CheckpointError, match="pickle"):
        PortraitGAN.from_pretrained(tmp_path)
    (tmp_path / "model.pth").unlink()
    with pytest.raises(CheckpointError, match="not a PortraitGAN checkpoint"):
        PortraitGAN.from_pretrained(tmp_path)


def _fake_hub_cache(cache: Path, repo_id: str, files: dict[str, Path], revision: str = "main") -> None:
    """The layout huggingface_hub's cache keeps on disk: refs/<revision> -> snapshots/<sha>/<file>."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / revision).write_text(sha)
    snapshot = repo / "snapshots" / sha
    snapshot.mkdir(parents=True)
    for name, source in files.items():
        shutil.copy(source, snapshot / name)


def _offline_python(code: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(cache.parent)}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_loads_from_hf_cache_offline_by_hub_id_and_revision(saved, tmp_path):
    model, folder = saved
    cache = tmp_path / "hf" / "hub"
    files = {n: folder / n for n in ("config.json", "model.safetensors")}
    _fake_hub_cache(cache, "someone/portraitgan-tiny", files, revision="v1")
    expected = model.generate(*_inputs(), "photo")
    torch.save(expected, tmp_path / "expected.pt")
    code = f"""
import torch
from portraitgan_hub import PortraitGAN
torch.manual_seed(1)
images, maps = torch.rand(2, 3, 32, 32) * 2 - 1, (torch.rand(2, 1, 32, 32) > 0.8).float()
model = PortraitGAN.from_pretrained("someone/portraitgan-tiny", revision="v1")
assert torch.equal(model.generate(images, maps, "photo"), torch.load({str(tmp_path / "expected.pt")!r}))
print("LOADED")
"""
    result = _offline_python(code, cache)
    assert "LOADED" in result.stdout, result.stderr


def test_pickle_only_hub_repo_is_refused_offline(saved, tmp_path):
    model, folder = saved
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    cache = tmp_path / "hf" / "hub"
    _fake_hub_cache(
        cache,
        "someone/pickled",
        {"config.json": folder / "config.json", "pytorch_model.bin": tmp_path / "pytorch_model.bin"},
    )
    code = """
import torch
from portraitgan_hub import PortraitGAN, CheckpointError
torch.load = lambda *a, **k: print("UNPICKLED")
try:
    PortraitGAN.from_pretrained("someone/pickled")
except CheckpointError as error:
    print("REFUSED", error)
"""
    result = _offline_python(code, cache)
    assert "REFUSED" in result.stdout and "pytorch_model.bin" in result.stdout, result.stderr
    assert "UNPICKLED" not in result.stdout


def test_unknown_hub_id_offline_is_a_clear_error(tmp_path):
    code = """
from portraitgan_hub import PortraitGAN, CheckpointError
try:
    PortraitGAN.from_pretrained("nobody/nothing")
except CheckpointError as error:
    print("ERROR", error)
"""
    result = _offline_python(code, tmp_path / "hf" / "hub")
    assert "ERROR could not load a PortraitGAN model from 'nobody/nothing'" in result.stdout, result.stderr


def test_push_to_hub_uploads_the_saved_folder(monkeypatch):
    """The Hub is out of reach here: fake HfApi's two network calls and check what would be sent."""
    sent = {}

    def create_repo(self, repo_id, **kwargs):
        sent["created"] = repo_id
        return type("RepoUrl", (), {"repo_id": repo_id})()

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        sent["repo_id"] = repo_id
        sent["files"] = sorted(p.name for p in Path(folder_path).iterdir())
        sent["config"] = json.loads((Path(folder_path) / "config.json").read_text())
        return "https://huggingface.co/me/tiny/commit/abc"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    url = PortraitGAN(TINY).push_to_hub("me/tiny")
    assert url.endswith("/commit/abc") and sent["created"] == "me/tiny"
    assert sent["files"] == ["README.md", "config.json", "model.safetensors"]
    assert sent["config"]["image_size"] == 32


def test_generate_accepts_pil_names_indices_and_other_dtypes(saved):
    model, _ = saved
    images, maps = _inputs()
    by_name = model.generate(images, maps, "cartoon")
    assert torch.equal(by_name, model.generate(images, maps, 2))
    assert torch.equal(by_name, model.generate(images, maps, ["cartoon", "cartoon"]))
    assert not torch.equal(by_name, model.generate(images, maps, "photo"))
    assert by_name.shape == (2, 3, 32, 32) and not by_name.requires_grad
    from portraitgan_hub.image_tensors import tensor_to_pil

    pictures = tensor_to_pil(images)
    single = model.generate(pictures[0], maps[0, 0].numpy(), "sketch")
    assert single.size == (32, 32) and single.mode == "RGB"
    half = PortraitGAN(TINY).to(torch.bfloat16)
    assert half.generate(images, maps, 0).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="knows"):
        model.generate(images, maps, "oil painting")


def test_card_is_kept_unless_new_card_content_is_given(saved):
    model, folder = saved
    (folder / "README.md").write_text("hand-written card")
    model.save_pretrained(folder)
    assert (folder / "README.md").read_text() == "hand-written card"
    model.save_pretrained(folder, model_card_kwargs={"metrics": "| MSE | 0.01 |"})
    assert "| MSE | 0.01 |" in (folder / "README.md").read_text()
