"""Whole-picture modality conversion (issue #12): before/after pictures and the figures of the issue.

For a held-out London photo and a simulated casual phone photo of another held-out person (cropped
off-centre to 4:3, tilted 6 degrees, dimmed, a warm cast, JPEG quality 70), converts

* photo -> sketch and photo -> cartoon (``model.edit(photo, modality=...)``), and
* sketch -> photo and cartoon -> photo, where the input is the whole picture rendered by the
  training stylizers (``train.stylize``: the pseudo-targets G learned from), with ``input_modality``,

and measures, per conversion: the brightness step across where the face crop's edge lies (inside vs
outside, ``train.metrics.crop_border_step``; the input's own step beside it), the mean chroma, the
extra time of converting the whole picture over converting the face alone, and for
photo -> sketch -> photo the dlib identity distance and the SSIM against the input photo.

python benchmarks/modality_conversion.py [--model DIR] [--out docs/modality_conversion.jpg]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from portraitgan_hub import DEFAULT_MODEL, PortraitGAN
from portraitgan_hub.composition import compose
from portraitgan_hub.faces.identity import descriptor_distance, face_descriptor
from portraitgan_hub.image_tensors import pil_to_tensor
from portraitgan_hub.stages import modality_condition, render
from train.metrics import crop_border_step, mean_chroma, ssim
from train.stylize import get_stylizer

LONDON = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "london_faces"
VAL_PHOTO = "neutral/019.jpg"  # val split of data/london256 (seed 0): never seen in training
CASUAL_SOURCE = "smiling/063.jpg"  # another val person


def casual_photo(path: Path) -> Image.Image:
    """A phone-like snapshot made from a studio photo: off-centre 4:3 crop, 6 degree tilt, dimmer,
    warmer, JPEG-compressed at quality 70, 1024 px wide."""
    studio = Image.open(path).convert("RGB")
    width, height = studio.size
    tilted = studio.rotate(6, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(90, 80, 70))
    box = (
        int(0.02 * width),
        int(0.12 * height),
        int(0.02 * width) + int(0.9 * width),
        int(0.12 * height) + int(0.675 * width),
    )
    picture = tilted.crop(box).resize((1024, 768), Image.Resampling.LANCZOS)
    picture = ImageEnhance.Brightness(picture).enhance(0.6)
    warm = np.asarray(picture, np.float32) * np.array([1.08, 1.0, 0.85], np.float32)
    picture = Image.fromarray(np.clip(warm, 0, 255).astype(np.uint8))
    from io import BytesIO

    buffer = BytesIO()
    picture.save(buffer, "JPEG", quality=70)
    return Image.open(BytesIO(buffer.getvalue())).convert("RGB")


def chroma(image: Image.Image) -> float:
    """Mean chroma in grey levels (``train.metrics.mean_chroma``)."""
    return float(mean_chroma(pil_to_tensor(image.convert("RGB")))[0])


def timed(function, repeats: int = 3) -> tuple[Image.Image, float]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def identity_and_ssim(model: PortraitGAN, photo: Image.Image, back: Image.Image) -> tuple[float, float]:
    """dlib identity distance of the face found on ``back`` to ``photo``'s (inf when none is found),
    and SSIM of the two aligned crops (photo's alignment)."""
    aligned = model.face_editor.align(photo)
    found = model.face_editor.faces(back)
    distance = float("inf")
    if found:
        mine = face_descriptor(photo, aligned.face.landmarks)
        distance = descriptor_distance(mine, face_descriptor(back, found[0].landmarks))
    from portraitgan_hub.faces.alignment import warp_to_crop

    crops = [pil_to_tensor(warp_to_crop(image, aligned.alignment)) for image in (photo, back)]
    return distance, float(ssim(crops[1], crops[0])[0])


def landmarks_on_stylized(
    model: PortraitGAN, stylized: Image.Image, modality: str, photo_landmarks: np.ndarray
) -> dict[str, float | None]:
    """NME (inter-ocular) against the photo's dlib landmarks of the landmarks found on a stylized
    picture by dlib directly and through the model's cycle (``faces_via_cycle``); None: no face."""
    from train.metrics import landmark_nme

    direct = model.face_editor.faces(stylized)
    cycle = model.face_editor.faces_via_cycle(stylized, modality)
    return {
        "dlib_found_face": bool(direct),
        "nme_dlib_on_stylized": landmark_nme(direct[0].landmarks, photo_landmarks) if direct else None,
        "nme_through_cycle": landmark_nme(cycle[0].landmarks, photo_landmarks) if cycle else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--london", default=str(LONDON))
    parser.add_argument("--out", default="docs/modality_conversion.jpg")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = PortraitGAN.from_pretrained(args.model).eval()
    london = Path(args.london)
    pictures = {
        "val photo": Image.open(london / VAL_PHOTO).convert("RGB"),
        "casual photo": casual_photo(london / CASUAL_SOURCE),
    }
    figures: dict[str, dict] = {}
    rows = []
    for label, photo in pictures.items():
        aligned = model.face_editor.align(photo)
        row = [(label, photo)]
        stats: dict[str, dict] = {
            "input": {"border_step": abs(np.subtract(*crop_border_step(photo, aligned.alignment)))}
        }
        for target in ("sketch", "cartoon"):
            result, seconds = timed(lambda photo=photo, target=target: model.edit(photo, modality=target))
            condition = modality_condition(model, target)

            def face_only(aligned=aligned, condition=condition):
                rendering = render(model, aligned, aligned.landmarks, condition)
                return compose(aligned.photo, aligned.alignment, rendering)

            _, face_seconds = timed(face_only)
            stats[f"photo->{target}"] = {
                "border_step": abs(np.subtract(*crop_border_step(result, aligned.alignment))),
                "chroma": chroma(result),
                "seconds": seconds,
                "face_only_seconds": face_seconds,
            }
            row.append((f"-> {target}", result))
            if target == "sketch":
                back = model.edit(result, input_modality="sketch", modality="photo")
                distance, similarity = identity_and_ssim(model, photo, back)
                stats["photo->sketch->photo"] = {"identity_distance": distance, "ssim": similarity}
                row.append(("-> sketch -> photo", back))
        for source in ("sketch", "cartoon"):
            stylized = get_stylizer(source)(photo)
            result = model.edit(stylized, input_modality=source, modality="photo")
            stats[f"{source}->photo"] = {
                "input_border_step": abs(np.subtract(*crop_border_step(stylized, aligned.alignment))),
                "border_step": abs(np.subtract(*crop_border_step(result, aligned.alignment))),
                "chroma": chroma(result),
                **landmarks_on_stylized(model, stylized, source, aligned.face.landmarks),
            }
            row += [(f"{source} (stylizer)", stylized), (f"{source} -> photo", result)]
        figures[label] = stats
        rows.append(row)
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    height, pad, header = 300, 4, 20
    widths = [[round(image.width * height / image.height) for _, image in row] for row in rows]
    sheet_width = max(sum(w) + pad * (len(w) + 1) for w in widths)
    sheet = Image.new("RGB", (sheet_width, len(rows) * (height + header + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    y = pad
    for row, row_widths in zip(rows, widths, strict=True):
        x = pad
        for (title, image), width in zip(row, row_widths, strict=True):
            draw.text((x + 2, y + 2), title, fill="black", font=font)
            sheet.paste(image.resize((width, height), Image.Resampling.LANCZOS), (x, y + header))
            x += width + pad
        y += height + header + pad
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
