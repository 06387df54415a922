"""Turn a folder of portraits into records (identity, expression, modality, path).

Three layouts are understood:

* ``london``: the Face Research Lab London Set, ``neutral/<id>.jpg`` and ``smiling/<id>.jpg``.
* ``rafd``: the Radboud Faces Database, flat or nested files named
  ``Rafd<angle>_<id>_<ethnicity>_<gender>_<expression>_<gaze>.jpg``; one camera angle and one gaze
  are kept (frontal camera ``090`` and ``frontal`` gaze by default).
* ``generic``: ``<root>/<identity>/<expression>.<ext>`` are photos; ``<root>/<identity>/<modality>/
  <expression>.<ext>`` are the same person and expression in another modality (a real sketch, a
  painting...). The paper's iCV set, once sorted into this tree, fits it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
PHOTO = "photo"
LONDON_EXPRESSIONS = ("neutral", "smiling")
RAFD_PATTERN = re.compile(
    r"^Rafd(?P<angle>\d{3})_(?P<identity>\d+)_(?P<ethnicity>[A-Za-z]+)_(?P<gender>[A-Za-z]+)_"
    r"(?P<expression>[A-Za-z]+)_(?P<gaze>[A-Za-z]+)$"
)


@dataclass(frozen=True, order=True)
class Record:
    """One source image: who, which expression, which modality, and where it is."""

    identity: str
    expression: str
    modality: str
    path: Path

    @property
    def key(self) -> tuple[str, str]:
        """The (identity, expression) pair that groups a photo with its other modalities."""
        return (self.identity, self.expression)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def parse_london(root: Path) -> list[Record]:
    """``neutral/<id>.jpg`` and ``smiling/<id>.jpg``: identity = file stem."""
    records = [
        Record(path.stem, expression, PHOTO, path)
        for expression in LONDON_EXPRESSIONS
        if (root / expression).is_dir()
        for path in _images(root / expression)
    ]
    return _checked(records, root, "london")


def parse_rafd(root: Path, *, angle: str = "090", gaze: str | None = "frontal") -> list[Record]:
    """RaFD file names anywhere under ``root``; ``gaze=None`` keeps every gaze (then the gaze
    becomes part of the expression name, so that records stay unique)."""
    records = []
    for path in sorted(root.rglob("Rafd*")):
        match = RAFD_PATTERN.match(path.stem)
        if not match or path.suffix.lower() not in IMAGE_SUFFIXES or match["angle"] != angle:
            continue
        if gaze is not None and match["gaze"].lower() != gaze.lower():
            continue
        expression = match["expression"].lower()
        if gaze is None:
            expression = f"{expression}-{match['gaze'].lower()}"
        records.append(Record(match["identity"], expression, PHOTO, path))
    return _checked(records, root, "rafd")


def parse_generic(root: Path) -> list[Record]:
    """``<identity>/<expression>.ext`` (photo) and ``<identity>/<modality>/<expression>.ext``."""
    records = []
    for identity_dir in _subdirs(root):
        identity = identity_dir.name
        records += [Record(identity, p.stem, PHOTO, p) for p in _images(identity_dir)]
        for modality_dir in _subdirs(identity_dir):
            records += [Record(identity, p.stem, modality_dir.name, p) for p in _images(modality_dir)]
    return _checked(records, root, "generic")


def _checked(records: list[Record], root: Path, layout: str) -> list[Record]:
    if not records:
        raise ValueError(f"no images found in {root} for the {layout!r} layout")
    counts = Counter((r.identity, r.expression, r.modality) for r in records)
    duplicates = sorted(k for k, n in counts.items() if n > 1)
    if duplicates:
        raise ValueError(
            f"{len(duplicates)} (identity, expression, modality) triples appear more than once in {root}, "
            f"e.g. {duplicates[0]}: keep one file per triple"
        )
    return sorted(records)


def detect_layout(root: Path) -> str:
    """Guess the layout of ``root``: ``london``, ``rafd`` or ``generic``."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"source folder {root} does not exist")
    if all((root / e).is_dir() and _images(root / e) for e in LONDON_EXPRESSIONS):
        return "london"
    if any(RAFD_PATTERN.match(p.stem) for p in root.rglob("Rafd*")):
        return "rafd"
    if any(_images(d) or any(_images(m) for m in _subdirs(d)) for d in _subdirs(root)):
        return "generic"
    raise ValueError(
        f"cannot tell the layout of {root}: expected neutral/ and smiling/ (london), Rafd*.jpg files "
        "(rafd) or <identity>/<expression>.jpg (generic)"
    )


PARSERS: dict[str, Callable[..., list[Record]]] = {
    "london": parse_london,
    "rafd": parse_rafd,
    "generic": parse_generic,
}


def load_records(
    root: str | Path, source: str = "auto", *, rafd_angle: str = "090", rafd_gaze: str | None = "frontal"
) -> tuple[str, list[Record]]:
    """Parse ``root`` with the named layout (or the detected one); returns ``(layout, records)``."""
    root = Path(root)
    layout = detect_layout(root) if source == "auto" else source
    if layout not in PARSERS:
        raise ValueError(f"unknown source layout {source!r}; choose auto, {', '.join(PARSERS)}")
    if layout == "rafd":
        return layout, parse_rafd(root, angle=rafd_angle, gaze=rafd_gaze)
    return layout, PARSERS[layout](root)
