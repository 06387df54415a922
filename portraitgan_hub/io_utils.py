"""Atomic file writes: a reader (or a killed process) never sees a half-written file.

Every file this package writes goes to a temporary sibling first and is moved into place with
``os.replace``, which is atomic on POSIX and Windows when both paths are on one file system.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, default_file_mode())  # mkstemp makes files 0600; give them the usual mode
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def default_file_mode() -> int:
    """The mode ``open()`` would give a new file under the current umask (0644 usually)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_image(image, path: str | Path, **save_kwargs) -> None:
    """Save a PIL image atomically; the format follows the file suffix of ``path``."""
    path = Path(path)
    fmt = save_kwargs.pop("format", None) or _format_from_suffix(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **save_kwargs)


def _format_from_suffix(path: Path) -> str:
    from PIL import Image

    Image.init()
    try:
        return Image.EXTENSION[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"cannot tell an image format from the file name {path.name!r}") from None
