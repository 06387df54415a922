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
