"""Clear errors for avoidable dead ends (issue 27, item 7): an EXIF block too long for JPEG.

It is a warning, and the edit is saved.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from portraitgan_hub import PortraitGAN, PortraitGANConfig
from portraitgan_hub.cli import main
from portraitgan_hub.io_utils import JPEG_MAX_EXIF, save_photo


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    PortraitGAN(PortraitGANConfig.preset("lite")).save_pretrained(folder)
    return folder


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """(exit status, stderr) of ``portraitgan ARGV``, whether argparse or the command refused it."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


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
