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


def read_json(path: str | Path, expected: str) -> object:
    """The JSON document in ``path``; an unreadable or invalid file is a ``ValueError`` naming the file.

    ``expected`` says what the file should hold, for the message ("the model's configuration", ...).
    A missing file is a ``FileNotFoundError`` naming it.
    """
    import json

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file (expected {expected})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {path} (expected {expected}): {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON ({error.msg} at line {error.lineno} column {error.colno}); expected {expected}"
        ) from None


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


#: JPEG and WebP quality of edited photos (Pillow's own default, 75, visibly blurs a face).
DEFAULT_QUALITY = 95
_METADATA_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF")
#: The most EXIF bytes a JPEG holds: one APP1 segment (Pillow refuses more, "EXIF data is too long").
JPEG_MAX_EXIF = 65533
_NO_ALPHA_FORMATS = ("JPEG", "BMP")


def check_quality(quality: object, name: str = "quality") -> int:
    """``quality`` as an int in 1..100, else ``TypeError``/``ValueError`` naming ``name``."""
    if isinstance(quality, bool) or not isinstance(quality, int):
        raise TypeError(f"{name} must be an int from 1 to 100, got {type(quality).__name__} {quality!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"{name} must be from 1 to 100 (JPEG/WebP quality), got {quality}")
    return quality


def save_photo(image, path: str | Path, *, quality: int = DEFAULT_QUALITY, **save_kwargs) -> list[str]:
    """Write an edited photo atomically, keeping what the input had; return notes for the user.

    The format follows the suffix of ``path``. JPEG and WebP are written at ``quality`` (1..100);
    the ICC profile and EXIF block in ``image.info`` (see ``image_io.restore_photo_info``) are
    written to JPEG, PNG, WebP and TIFF; an EXIF block too long for JPEG (over 64 KB) is left out
    of a JPEG and a note says so. An alpha channel is kept where the format has one; for JPEG and
    BMP the picture is put on white and a note says so. Raises ``ValueError`` for an unknown suffix
    or a bad ``quality``.
    """
    from PIL import Image

    check_quality(quality)
    path = Path(path)
    fmt = save_kwargs.pop("format", None) or _format_from_suffix(path)
    notes = []
    options: dict = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    if fmt in _METADATA_FORMATS:
        for key in ("icc_profile", "exif"):
            if image.info.get(key):
                options[key] = image.info[key]
    if fmt in _NO_ALPHA_FORMATS and image.mode in ("RGBA", "LA"):
        notes.append(f"{path.name}: {fmt} has no transparency, the transparent area is written white")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(background, image.convert("RGBA"))
        image = flat.convert("L" if image.mode == "LA" else "RGB")
    options.update(save_kwargs)
    exif = options.get("exif")
    size = len(exif.tobytes() if isinstance(exif, Image.Exif) else exif) if exif else 0
    if fmt == "JPEG" and size > JPEG_MAX_EXIF:
        del options["exif"]
        notes.append(f"{path.name}: the EXIF block ({size:,} bytes) is longer than a JPEG holds, written without it")
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **options)
    return notes


def _format_from_suffix(path: Path) -> str:
    from PIL import Image

    Image.init()
    try:
        return Image.EXTENSION[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"cannot tell an image format from the file name {path.name!r}") from None
