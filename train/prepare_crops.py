"""The per-item work of ``train.prepare``: detect, align, crop, stylize and write one item's files.

Runs in the caller's process or in a pool of worker processes (:func:`process`), one
:class:`Worker` per process.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from portraitgan_hub.faces.alignment import Alignment, estimate_alignment, warp_to_crop
from portraitgan_hub.faces.image_io import load_image
from portraitgan_hub.faces.landmarks import LandmarkDetector
from portraitgan_hub.io_utils import atomic_save_image, atomic_write_text
from train.prepare_layout import CONTEXT_DIR, LANDMARKS_DIR, Item, PrepareConfig, failure_entry, output_paths
from train.sources import PHOTO
from train.style_network import NeuralStylizer
from train.stylize import Stylizer, get_stylizer, stylize


def context_alignment(alignment: Alignment, context_size: int) -> Alignment:
    """The face crop's alignment on a wider canvas of ``context_size`` px, the crop in its middle.

    Crop pixel ``p`` is context pixel ``p + (context_size - crop_size) / 2``: same scale and rotation.
    """
    offset = (context_size - alignment.crop_size) / 2.0
    matrix = alignment.matrix.copy()
    matrix[:, 2] += offset
    return Alignment(matrix=matrix, crop_size=int(context_size))


class Worker:
    """What one process needs to prepare items: a landmark detector and the stylizers, made once."""

    def __init__(self, config: PrepareConfig) -> None:
        self.config = config
        self.out = Path(config.out_dir)
        self.detector = LandmarkDetector(model_path=config.landmark_model, detect_max_side=config.detect_max_side)
        self.stylizers: dict[str, Stylizer] = {
            name: NeuralStylizer(config.styles[name]) if name in config.styles else get_stylizer(name)
            for name in config.synthetic_modalities()
        }

    def run(self, item: Item) -> dict[str, Any]:
        """Make the item's missing files; returns its landmark record, or a failure entry."""
        try:
            return {"ok": self._make(item)}
        except Exception as error:  # a bad photo must never stop the run: report it instead
            return {
                "failed": failure_entry(item.identity, item.expression, item.photo, type(error).__name__, str(error))
            }

    def _make(self, item: Item) -> dict[str, Any]:
        context_size = self.config.context_size
        paths = output_paths(self.out, item, self.stylizers, context=bool(context_size))
        missing = {name for name, path in paths.items() if not path.exists()}
        real_keys = {*item.real, *(f"{CONTEXT_DIR}/{m}" for m in [PHOTO, *item.real])}
        need_alignment = bool(missing & {PHOTO, LANDMARKS_DIR, *real_keys})
        crops: dict[str, Image.Image] = {}  # "photo" and, with context, "context/photo"
        if need_alignment:
            photo = load_image(item.photo)
            landmarks = self.detector.landmarks(photo)
            kwargs = {} if self.config.margin is None else {"margin": self.config.margin}
            alignment = estimate_alignment(landmarks, self.config.size, **kwargs)
            record = {
                "identity": item.identity,
                "expression": item.expression,
                "source": item.photo.relative_to(self.config.source_dir).as_posix(),
                "size": self.config.size,
                "landmarks": _rounded(alignment.to_crop(landmarks)),
                "alignment": _rounded(alignment.matrix),
            }
            frames = {PHOTO: alignment}
            if context_size:
                frames[f"{CONTEXT_DIR}/{PHOTO}"] = context_alignment(alignment, context_size)
            for key, frame in frames.items():
                crops[key] = _crop_edge_extended(photo, frame)
                if key in missing:
                    atomic_save_image(crops[key], paths[key])
                prefix = key[: -len(PHOTO)]
                for modality, path in item.real.items():
                    if prefix + modality in missing:
                        real = _crop_edge_extended(_framed_like(load_image(path), photo), frame)
                        atomic_save_image(real, paths[prefix + modality])
        else:
            record = json.loads(paths[LANDMARKS_DIR].read_text(encoding="utf-8"))
            for key in [PHOTO, *([f"{CONTEXT_DIR}/{PHOTO}"] if context_size else [])]:
                with Image.open(paths[key]) as stored:
                    crops[key] = stored.convert("RGB")
        for modality, stylizer in self.stylizers.items():
            for key in crops:  # the stylizers work on any picture: the context crop is restyled whole,
                target = key[: -len(PHOTO)] + modality  # with the face crop's strokes (same scale)
                if target in missing:
                    atomic_save_image(stylize(stylizer, crops[key], scale=self.config.size / 256), paths[target])
        if LANDMARKS_DIR in missing:  # last, so that its presence means the photo crop is there too
            atomic_write_text(paths[LANDMARKS_DIR], json.dumps(record) + "\n")
        return record


def _crop_edge_extended(image: Image.Image, alignment: Alignment) -> Image.Image:
    """``warp_to_crop``, where the crop reaches past the picture's edge: the edge pixels are repeated
    there instead of black fill (a context crop of a tightly framed photo would otherwise teach G to
    draw black borders). Inside the picture the pixels are those of ``warp_to_crop``."""
    corners = alignment.to_image(np.array([[0, 0], [1, 0], [0, 1], [1, 1]], float) * alignment.crop_size)
    low, high = np.floor(corners.min(axis=0)), np.ceil(corners.max(axis=0))
    pad = int(max(0, -low.min(), high[0] - image.width, high[1] - image.height)) + 4
    if pad <= 4 and low.min() >= 0:
        return warp_to_crop(image, alignment)
    padded = Image.fromarray(np.pad(np.asarray(image.convert("RGB")), ((pad, pad), (pad, pad), (0, 0)), mode="edge"))
    matrix = alignment.matrix.copy()
    matrix[:, 2] -= matrix[:, :2] @ np.array([pad, pad], float)  # padded pixel p is image pixel p - pad
    return warp_to_crop(padded, Alignment(matrix=matrix, crop_size=alignment.crop_size))


def _framed_like(image: Image.Image, photo: Image.Image) -> Image.Image:
    """A real modality image at the photo's resolution (it is assumed to have the same framing)."""
    return image if image.size == photo.size else image.resize(photo.size, Image.BICUBIC)


def _rounded(array: Any) -> list:
    return [[round(float(v), 3) for v in row] for row in array]


_WORKER: Worker | None = None


def _init_worker(config: PrepareConfig) -> None:
    global _WORKER
    import torch

    torch.set_num_threads(1)  # one process per core already
    _WORKER = Worker(config)


def _run_in_worker(item: Item) -> tuple[Item, dict[str, Any]]:
    assert _WORKER is not None
    return item, _WORKER.run(item)


def process(items: list[Item], config: PrepareConfig) -> Iterator[tuple[Item, dict[str, Any]]]:
    """``(item, Worker.run(item))`` for every item, in ``config.workers`` processes (in completion order)."""
    workers = max(1, min(config.workers, len(items)))
    if workers == 1:
        worker = Worker(config)  # in the caller's process, leaving its torch threads alone
        yield from ((item, worker.run(item)) for item in items)
        return
    with multiprocessing.get_context().Pool(workers, _init_worker, (config,)) as pool:
        yield from pool.imap_unordered(_run_in_worker, items, chunksize=1)
