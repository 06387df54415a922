"""A smaller copy of a ``train.prepare`` folder, for a machine that takes a size-limited folder.

    python -m train.pack_data data/london256_wide data/london256_wide_packed [--max-mib 44]

Every image of the manifest (``path`` and ``context_path``) is re-encoded: photos as JPEG at quality
95 without chroma subsampling (the London photos are JPEGs to begin with), every other modality
(sketch, cartoon: flat colours and hard outlines) as lossless WebP, so their pixels stay exactly
the prepared ones and a grey sketch stays grey (``dataset.achromatic_modalities``). The manifest is
rewritten with the new paths; the other files (landmarks, configs, README) are copied unchanged. The
copy trains like the folder (``train/train.py data.path=...``); the 84 MB of the London faces at
3x context become 34.8 MiB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from train.dataset import read_manifest
from train.prepare_layout import MANIFEST

#: JPEG quality of the photos (libjpeg's scale, 1-100), without chroma subsampling.
PHOTO_QUALITY = 95


class PackTooLargeError(RuntimeError):
    """The packed folder would exceed the size asked for (nothing is left at the destination)."""


def _packed_name(path: str, modality: str) -> str:
    stem = path.rsplit(".", 1)[0]
    return f"{stem}.jpg" if modality == "photo" else f"{stem}.webp"


def _encode(source: Path, destination: Path, modality: str) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as image:
        rgb = image.convert("RGB")
    if modality == "photo":
        rgb.save(destination, "JPEG", quality=PHOTO_QUALITY, subsampling=0)
    else:
        rgb.save(destination, "WEBP", lossless=True, method=4)


def pack(source: Path, destination: Path, max_mib: float | None = None, progress: bool = True) -> int:
    """Write the packed copy of the prepared folder ``source`` to ``destination``; returns its bytes.

    The copy is written to ``destination.partial`` and renamed when complete. Raises
    FileNotFoundError without a manifest, FileExistsError if ``destination`` or its ``.partial``
    exists, ValueError for a ``destination`` inside ``source`` or a ``max_mib`` not above 0, and
    :class:`PackTooLargeError` (after removing the partial copy) if it exceeds ``max_mib`` MiB.
    """
    rows = read_manifest(source)
    if max_mib is not None and not max_mib > 0:
        raise ValueError(f"max_mib must be above 0, got {max_mib}")
    if destination.resolve().is_relative_to(source.resolve()):
        raise ValueError(f"{destination} is inside {source}: pack into a folder outside it")
    partial = destination.with_name(destination.name + ".partial")
    for taken in (destination, partial):
        if taken.exists():
            raise FileExistsError(f"{taken} exists: pack into a new folder")
    try:
        partial.mkdir(parents=True)
        for item in source.iterdir():  # everything but the images and the manifest, as it is
            if item.is_file() and item.name != MANIFEST:
                shutil.copy2(item, partial / item.name)
        if (source / "landmarks").is_dir():
            shutil.copytree(source / "landmarks", partial / "landmarks")
        packed_rows = []
        for row in tqdm(rows, desc="pack", unit="image", disable=not progress):
            row = dict(row)
            for key in ("path", "context_path"):
                if row.get(key):
                    name = _packed_name(row[key], row["modality"])
                    _encode(source / row[key], partial / name, row["modality"])
                    row[key] = name
            packed_rows.append(row)
        (partial / MANIFEST).write_text("".join(json.dumps(r) + "\n" for r in packed_rows), encoding="utf-8")
        size = sum(f.stat().st_size for f in partial.rglob("*") if f.is_file())
        if max_mib is not None and size > max_mib * 2**20:
            raise PackTooLargeError(f"the packed copy of {source} is {size / 2**20:.1f} MiB, over {max_mib} MiB")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    partial.rename(destination)
    return size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a folder made by train.prepare")
    parser.add_argument("destination", type=Path, help="a new folder")
    parser.add_argument("--max-mib", type=float, default=None, help="fail (and write nothing) above this size")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        size = pack(args.source, args.destination, args.max_mib, progress=not args.no_progress)
    except (FileNotFoundError, FileExistsError, ValueError, PackTooLargeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"packed {args.source} into {args.destination}: {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
