"""Shared test fixtures: paths of the photos in ``tests/assets`` (see its ATTRIBUTION.md)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _use_this_checkouts_app() -> None:
    """Import ``portraitgan_hub_space`` from this checkout's ``space/``, whatever pip installed.

    The wheel maps ``space/`` to ``portraitgan_hub_space``; an editable install made from another
    checkout (a git worktree) would otherwise test that checkout's app.
    """
    init = ROOT / "space" / "__init__.py"
    if not init.is_file() or "portraitgan_hub_space" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(
        "portraitgan_hub_space", init, submodule_search_locations=[str(init.parent)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["portraitgan_hub_space"] = module
    spec.loader.exec_module(module)


_use_this_checkouts_app()

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
LONDON_DIR = ASSETS_DIR / "london"
#: Identities with both a neutral and a smiling photo. 001_neutral is the original 1350x1350 file;
#: the other three are 640x640.
LONDON_IDS = ("001", "005")
EXPRESSIONS = ("neutral", "smiling")


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    return ASSETS_DIR


@pytest.fixture(scope="session")
def london_photo() -> Callable[[str, str], Path]:
    """``london_photo("005", "smiling")`` -> path of that photo."""

    def path(identity: str, expression: str) -> Path:
        found = LONDON_DIR / f"{identity}_{expression}.jpg"
        if not found.is_file():
            raise FileNotFoundError(
                f"no test photo {found.name}; have {sorted(p.name for p in LONDON_DIR.glob('*.jpg'))}"
            )
        return found

    return path


@pytest.fixture(scope="session")
def london_pairs(london_photo) -> list[tuple[Path, Path]]:
    """``[(neutral, smiling), ...]`` of the same person, one pair per identity."""
    return [(london_photo(i, "neutral"), london_photo(i, "smiling")) for i in LONDON_IDS]


@pytest.fixture(scope="session")
def full_size_photo(london_photo) -> Path:
    """An original, full-size (1350x1350) photo with one face about 465 px wide."""
    return london_photo("001", "neutral")


# --- photos rebuilt from the London faces, as users bring them (issue #14) ---------------------------
def paste_faces(size: tuple[int, int], placements: list[tuple[Path, int, tuple[int, int]]]):
    """A grey canvas of ``size`` with each ``(photo, side, (x, y))`` scaled to ``side`` px and pasted."""
    from PIL import Image

    canvas = Image.new("RGB", size, (118, 124, 130))
    for photo, side, where in placements:
        with Image.open(photo) as face:
            canvas.paste(face.convert("RGB").resize((side, side), Image.Resampling.LANCZOS), where)
    return canvas


@pytest.fixture(scope="session")
def small_face_photo(tmp_path_factory, london_photo) -> Path:
    """A 12 MP (4000x3000) JPEG with one London face scaled to 700 px: a face box of about 240 px,
    invisible to a detector that only looks at a 640 px copy."""
    path = tmp_path_factory.mktemp("small_face") / "small_face.jpg"
    paste_faces((4000, 3000), [(london_photo("001", "neutral"), 700, (900, 1100))]).save(path, quality=90)
    return path


@pytest.fixture(scope="session")
def three_faces_photo(tmp_path_factory, london_photo) -> Path:
    """Three London faces of clearly different sizes on one 1500x700 photo; dlib's boxes are about
    246, 206 and 171 px: face 0 in the middle, face 1 on the right, face 2 on the left."""
    path = tmp_path_factory.mktemp("three_faces") / "three_faces.jpg"
    placements = [
        (london_photo("005", "neutral"), 400, (20, 150)),
        (london_photo("001", "smiling"), 600, (440, 50)),
        (london_photo("005", "smiling"), 500, (1000, 100)),
    ]
    paste_faces((1500, 700), placements).save(path, quality=92)
    return path


@pytest.fixture(scope="session")
def lite_model_dir(tmp_path_factory) -> Path:
    """A random-weight ``lite`` model folder (the real pipeline, noise-like output)."""
    import torch

    from portraitgan_hub import PortraitGAN, PortraitGANConfig

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("lite_model")
    PortraitGAN(PortraitGANConfig.preset("lite")).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def lite_model(lite_model_dir):
    from portraitgan_hub import PortraitGAN

    return PortraitGAN.from_pretrained(lite_model_dir)
