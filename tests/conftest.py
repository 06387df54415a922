"""Shared test fixtures: paths of the photos in ``tests/assets`` (see its ATTRIBUTION.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

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
