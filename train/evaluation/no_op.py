"""No-op fidelity: an edit that changes nothing, through the whole edit path at full resolution."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from portraitgan_hub.composition import compose
from portraitgan_hub.edit_request import EditRequest
from portraitgan_hub.errors import PortraitGANError
from portraitgan_hub.model import PortraitGAN
from portraitgan_hub.stages import render
from train.evaluation.pairs import SOURCE_MODALITY
from train.metrics import grey, laplacian_variance, psnr
from train.prepare_layout import CONFIG as PREPARE_CONFIG
from train.prepare_layout import LANDMARKS_DIR


def original_photo(data: str | Path, row: dict[str, Any]) -> tuple[Path | None, str | None]:
    """The full-resolution photo a prepared crop (a manifest ``row``) was made from: ``(path, None)``,
    or ``(None, why not)``.

    ``train.prepare`` records it as ``landmarks/<stem>.json`` "source", relative to
    ``prepare_config.json`` "source_dir" (itself relative to the folder ``train.prepare`` ran in, if
    relative).
    """
    data = Path(data)
    config_path = data / PREPARE_CONFIG
    record_path = data / LANDMARKS_DIR / f"{Path(row['path']).stem}.json"
    for path in (config_path, record_path):
        if not path.is_file():
            return None, f"{path} is missing"
    try:
        source_dir = json.loads(config_path.read_text(encoding="utf-8"))["source_dir"]
        source = json.loads(record_path.read_text(encoding="utf-8"))["source"]
    except (ValueError, KeyError, TypeError) as error:
        return None, f"cannot read the source path from {record_path} and {config_path}: {error!r}"
    path = Path(source_dir) / source
    if not path.is_file():
        return None, f"source photo {path} not found"
    return path, None


def no_op_fidelity(model: PortraitGAN, photo: str | Path | Image.Image) -> dict[str, Any]:
    """The whole edit path of an edit that changes nothing, on one full-resolution photo.

    The editor prepares the photo for an empty ``EditRequest`` (``FaceEditor.prepare``: the largest
    face, aligned); G renders it with its own landmarks and the ``photo`` modality
    (``stages.render``, with G's own mask: the editor's region limit would make an unchanged face
    exact by construction) and the result is put back at the photo's resolution
    (``composition.compose``), as an edit would. The editor's own render stage is not used, since
    it returns a no-op edit's photo unchanged. Compared with the photo inside the detected face box (clamped to
    the photo): ``psnr`` in dB (0..255 RGB; inf when identical, ``Infinity`` in metrics.json) and
    ``detail_ratio`` = Laplacian variance of the output's grey box / the input's (1 = fine detail
    kept, below 1 = blurred; None when the input box is flat). Raises ``PortraitGANError`` (e.g. no
    face), ``ValueError`` and ``OSError``.
    """
    editor = model.face_editor
    aligned = editor.prepare(photo, EditRequest()).aligned
    rendering = render(model, aligned, aligned.landmarks, SOURCE_MODALITY, limit_region=False)
    composed = compose(aligned.photo, aligned.alignment, rendering, editor.feather)
    left, top, right, bottom = aligned.face.box
    width, height = aligned.photo.size
    box = (max(0, left), max(0, top), min(width, right), min(height, bottom))
    if box[0] >= box[2] or box[1] >= box[3]:
        raise ValueError(f"face box {aligned.face.box} lies outside the {width}x{height} photo")
    before = np.asarray(aligned.photo.crop(box), dtype=np.float64)
    after = np.asarray(composed.crop(box), dtype=np.float64)
    detail = laplacian_variance(grey(before))
    return {
        "size": [width, height],
        "face_box": list(box),
        "psnr": psnr(after, before),
        "detail_ratio": laplacian_variance(grey(after)) / detail if detail > 0 else None,
    }


def no_op_evaluation(
    model: PortraitGAN, data: str | Path, rows: list[dict[str, Any]], limit: int, progress: bool = False
) -> dict[str, Any]:
    """:func:`no_op_fidelity` of the originals of the first ``limit`` photo ``rows`` (0 = none).

    A photo whose original is not found, or in which no face is found, is skipped with a note on
    stderr and listed under ``skipped``. ``psnr`` and ``detail_ratio`` are means over the evaluated
    photos (None when none was).
    """
    from tqdm.auto import tqdm

    chosen = [row for row in rows if row["modality"] == SOURCE_MODALITY][: max(0, limit)]
    photos, skipped = [], []
    start = time.perf_counter()
    for row in tqdm(chosen, desc="no-op fidelity", unit="photo", disable=not progress):
        path, reason = original_photo(data, row)
        if path is not None:
            try:
                photos.append({"input": row["path"], "source": str(path), **no_op_fidelity(model, path)})
                continue
            except (PortraitGANError, OSError, ValueError) as error:
                reason = f"{type(error).__name__}: {error}"
        print(f"note: no-op fidelity skips {row['path']}: {reason}", file=sys.stderr)
        skipped.append({"input": row["path"], "reason": reason})
    ratios = [p["detail_ratio"] for p in photos if p["detail_ratio"] is not None]
    return {
        "requested": limit,
        "evaluated": len(photos),
        "psnr": float(np.mean([p["psnr"] for p in photos])) if photos else None,
        "detail_ratio": float(np.mean(ratios)) if ratios else None,
        "seconds_per_photo": (time.perf_counter() - start) / len(photos) if photos else None,
        "photos": photos,
        "skipped": skipped,
    }
