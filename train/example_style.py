"""A made-up "watercolour" style for trying fine-tuning without artists' drawings.

    python -m train.example_style SRC_LONDON_DIR OUT_DIR [--identities 40] [--drop-photos 2]

Writes the generic pair layout that ``python -m train.prepare --source generic`` reads::

    OUT_DIR/<identity>/<expression>.jpg              the photo
    OUT_DIR/<identity>/watercolour/<expression>.jpg  the same picture in the style

from a folder of the London layout (``neutral/<id>.jpg``, ``smiling/<id>.jpg``). ``--drop-photos``
leaves out the photos of the last few identities (their watercolours stay), to show that prepare
reports a style image without a photo and goes on. The style is Pillow filters only: flattened
colours, softened edges, saturation, a warm paper tint. It is a pseudo-target, not a painting.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageEnhance, ImageFilter, ImageOps
from tqdm import tqdm

#: Longest side the example pairs are stored at (prepare crops the face from it).
MAX_SIDE = 640


def watercolour(image: Image.Image) -> Image.Image:
    """The style of one RGB image (same size): mode filter, smoothing, 3-bit posterise, +80 % colour,
    blended 30 % with warm paper (250, 230, 190)."""
    flat = image.convert("RGB").filter(ImageFilter.ModeFilter(3)).filter(ImageFilter.SMOOTH_MORE)
    vivid = ImageEnhance.Color(ImageOps.posterize(flat, 3)).enhance(1.8)
    return Image.blend(vivid, Image.new("RGB", image.size, (250, 230, 190)), 0.3)


def make_pairs(source: Path, out: Path, identities: int, drop_photos: int = 0) -> int:
    """Write up to ``identities`` identities' pairs; returns the number of images written.

    Raises ``ValueError`` if ``source`` has no ``neutral/*.jpg``.
    """
    ids = sorted(p.stem for p in (source / "neutral").glob("*.jpg"))[:identities]
    if not ids:
        raise ValueError(f"{source}/neutral has no .jpg photos (London layout expected)")
    written = 0
    for index, identity in enumerate(tqdm(ids, desc="pairs", unit="identity")):
        for expression in ("neutral", "smiling"):
            path = source / expression / f"{identity}.jpg"
            if not path.is_file():
                continue
            with Image.open(path) as stored:
                photo = stored.convert("RGB")
            photo.thumbnail((MAX_SIDE, MAX_SIDE), Image.BICUBIC)
            (out / identity / "watercolour").mkdir(parents=True, exist_ok=True)
            if index < len(ids) - drop_photos:
                photo.save(out / identity / f"{expression}.jpg", quality=92)
                written += 1
            watercolour(photo).save(out / identity / "watercolour" / f"{expression}.jpg", quality=92)
            written += 1
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m train.example_style", description=__doc__.split("\n")[0])
    parser.add_argument("source_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--identities", type=int, default=40)
    parser.add_argument("--drop-photos", type=int, default=0, help="identities whose photos are left out")
    args = parser.parse_args(argv)
    count = make_pairs(args.source_dir, args.out_dir, args.identities, args.drop_photos)
    print(f"{count} images in {args.out_dir}")


if __name__ == "__main__":
    main()
