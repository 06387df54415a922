"""Clear errors for avoidable dead ends (issue 27, item 7): devices, URLs, model folders, offline mode, ``~``, EXIF.

Each is one line that says what to do, exit status 2 from the CLI, and no traceback; an EXIF block
too long for JPEG is a warning, and the edit is saved.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from portraitgan_hub import PortraitGAN
from portraitgan_hub.cli import main
from portraitgan_hub.default_model import load_model
from portraitgan_hub.errors import CheckpointError, DeviceError, ImageLoadError
from portraitgan_hub.faces.image_io import load_image
from portraitgan_hub.io_utils import JPEG_MAX_EXIF, save_photo

URL = "https://example.invalid/portrait.jpg"  # .invalid never resolves: nothing may try


@pytest.fixture(scope="module")
def model_dir(lite_model_dir: Path) -> Path:
    """The session's random-weight lite model folder (conftest.lite_model_dir)."""
    return lite_model_dir


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """(exit status, stderr) of ``portraitgan ARGV``, whether argparse or the command refused it."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


# --- devices ------------------------------------------------------------------------------------
def test_check_device_says_what_is_missing(monkeypatch):
    from portraitgan_hub.devices import check_device

    assert check_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: False)
    with pytest.raises(DeviceError, match=r"^CUDA is not available in this torch build; use --device cpu$"):
        check_device("cuda")
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="finds no CUDA device; use --device cpu"):
        check_device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert check_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(DeviceError, match="there is no device cuda:2: torch finds 1 CUDA device"):
        check_device("cuda:2")
    monkeypatch.setattr(torch.backends.mps, "is_built", lambda: False)
    with pytest.raises(DeviceError, match=r"^MPS is not available in this torch build; use --device cpu$"):
        check_device("mps")
    for typo in ("cdua", "gpu", "meta", ""):
        with pytest.raises(DeviceError, match=f"unknown device '{typo}': use cpu, cuda, cuda:N or mps"):
            check_device(typo)


@pytest.mark.skipif(torch.backends.cuda.is_built(), reason="needs a CPU-only torch build")
@pytest.mark.parametrize(
    "device, message",
    [
        ("cuda", "CUDA is not available in this torch build; use --device cpu"),
        ("cdua", "unknown device 'cdua'"),
    ],
)
def test_an_unavailable_device_is_one_line_and_exit_2(device, message, london_photo, tmp_path, capsys):
    out = tmp_path / "out.png"
    code, err = run_cli(["edit", str(london_photo("005", "neutral")), "-o", str(out), "--device", device], capsys)
    assert code == 2 and f"argument --device: {message}" in err
    assert len(err.strip().splitlines()) == 1, err  # not argparse's usage block first
    assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["edit", "x.jpg", "-o", "o.png", "--smile", "abc"], "portraitgan edit: error: argument --smile: invalid"),
        (["edit", "x.jpg", "-o", "o.png", "--frobnicate"], "portraitgan edit: error: unrecognized arguments: --frob"),
        (["landmarks"], "portraitgan landmarks: error: the following arguments are required"),
        (["app", "--port", "abc"], "portraitgan app: error: argument --port: invalid int value"),
    ],
)
def test_a_usage_error_is_one_line_naming_its_command(argv, message, capsys):
    code, err = run_cli(argv, capsys)
    assert code == 2 and err.startswith(message), err
    assert len(err.strip().splitlines()) == 1, err  # not argparse's usage block first
    assert err.strip().endswith(f"(see portraitgan {argv[0]} --help)")


# --- URLs ---------------------------------------------------------------------------------------
def test_a_url_as_the_image_is_refused_before_anything_loads(london_photo, tmp_path, capsys):
    with pytest.raises(ImageLoadError, match="URLs are not accepted"):
        load_image(URL)
    photo = str(london_photo("005", "neutral"))
    for argv in (
        ["edit", URL, "-o", str(tmp_path / "out.png")],
        ["edit", photo, "--reference", URL, "-o", str(tmp_path / "out.png")],
        ["landmarks", URL],
    ):
        code, err = run_cli(argv, capsys)
        assert code == 2 and f"{URL}: URLs are not accepted" in err and "Traceback" not in err, argv
    assert not (tmp_path / "out.png").exists()


# --- model folders, offline mode and ~ ------------------------------------------------------------
def test_a_missing_model_folder_is_named(tmp_path, capsys, london_photo):
    with pytest.raises(CheckpointError, match=f"no such folder: {tmp_path / 'nowhere'}$"):
        load_model(str(tmp_path / "nowhere"))
    photo = str(london_photo("005", "neutral"))
    code, err = run_cli(["edit", photo, "-o", str(tmp_path / "o.png"), "--model", "./no/such/model"], capsys)
    assert code == 2 and "no such folder: ./no/such/model" in err


def test_offline_an_uncached_hub_id_says_so(monkeypatch, tmp_path, model_dir):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    cache = tmp_path / "hub"
    with pytest.raises(CheckpointError, match="^HF_HUB_OFFLINE=1 and someone/not-downloaded is not in the cache"):
        load_model("someone/not-downloaded", cache_dir=cache)
    # A cached id still loads offline (the layout huggingface_hub keeps on disk).
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--someone--portraitgan-tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    (repo / "snapshots" / sha).mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(model_dir / name, repo / "snapshots" / sha / name)
    assert isinstance(load_model("someone/portraitgan-tiny", cache_dir=cache), PortraitGAN)


def test_a_tilde_in_the_model_and_in_paths_is_expanded(monkeypatch, tmp_path, model_dir, london_photo, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(model_dir, tmp_path / "models" / "x")
    shutil.copy(london_photo("005", "neutral"), tmp_path / "photo.jpg")
    assert isinstance(load_model("~/models/x"), PortraitGAN)
    assert load_image("~/photo.jpg").size == (640, 640)
    code, err = run_cli(["edit", "~/photo.jpg", "-o", "~/out.png", "--model", "~/models/x", "--smile", "0.5"], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "out.png").size == (640, 640)


# --- EXIF ----------------------------------------------------------------------------------------
def big_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010E] = "x" * (JPEG_MAX_EXIF + 5000)  # ImageDescription: more than one JPEG APP1 segment holds
    return exif.tobytes()


def test_exif_too_long_for_jpeg_is_dropped_with_a_note_and_the_photo_saved(tmp_path):
    picture = Image.new("RGB", (64, 48), (200, 120, 90))
    picture.info["exif"] = big_exif()
    notes = save_photo(picture, tmp_path / "out.jpg")
    assert len(notes) == 1 and "EXIF block" in notes[0] and "written without it" in notes[0]
    with Image.open(tmp_path / "out.jpg") as saved:
        assert saved.format == "JPEG" and saved.size == (64, 48) and not saved.info.get("exif")
    assert save_photo(picture, tmp_path / "out.png") == []  # PNG holds it: kept
    with Image.open(tmp_path / "out.png") as saved:
        assert len(saved.info["exif"]) > JPEG_MAX_EXIF


def test_the_cli_saves_the_edit_of_a_png_with_long_exif_as_jpeg(model_dir, london_photo, tmp_path, capsys):
    source = tmp_path / "tagged.png"
    Image.open(london_photo("005", "neutral")).save(source, exif=big_exif())
    out = tmp_path / "edited.jpg"
    code, err = run_cli(["edit", str(source), "-o", str(out), "--model", str(model_dir), "--smile", "0.5"], capsys)
    assert code == 0 and "warning: edited.jpg: the EXIF block" in err, err
    with Image.open(out) as saved:
        assert saved.format == "JPEG" and saved.size == (640, 640)
