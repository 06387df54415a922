"""Prepare a training folder: aligned face crops, their landmarks, pseudo-target modalities, a split.

    python -m train.prepare --source london SRC_DIR OUT_DIR --size 256 --modalities sketch cartoon

For every (identity, expression) photo: 68 dlib landmarks, a crop aligned on them, the landmarks in
crop coordinates, and one image per extra modality made from the crop (a built-in stylizer or a
trained style network, ``--style NAME=net.safetensors``). Real paired modality images of the generic
layout are cropped with the *photo's* alignment, because a landmark detector is not reliable on
sketches and paintings; they must therefore be framed like the photo (same picture, restyled).

Output (``OUT_DIR``)::

    photo/<identity>_<expression>.png      one folder per modality, same names
    sketch/<identity>_<expression>.png
    context/<modality>/<identity>_<expression>.png
                                            the same alignment on a canvas ``context_scale`` times as
                                            wide (face in the middle): hair, shoulders and background,
                                            so that G learns to convert the whole picture (issue #12)
    landmarks/<identity>_<expression>.json  crop-space landmarks, alignment matrix, source path
    manifest.jsonl                          one row per image (identity, expression, modality, split,
                                            path, landmarks)
    failures.json                           photos that could not be used, and why
    prepare_config.json, README.md          the options used, and a dataset card

Every file is written atomically, item by item, so a killed run leaves only whole files and a
re-run redoes only what is missing (it rewrites nothing that is already there). Use one run per
output folder at a time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from portraitgan_hub.faces.alignment import Alignment, estimate_alignment, warp_to_crop
from portraitgan_hub.faces.image_io import load_image
from portraitgan_hub.faces.landmarks import LandmarkDetector
from portraitgan_hub.io_utils import atomic_save_image, atomic_write_text, read_json
from train.sources import PHOTO, Record, load_records
from train.style_network import NeuralStylizer
from train.stylize import Stylizer, get_stylizer, stylize

MANIFEST = "manifest.jsonl"
FAILURES = "failures.json"
CONFIG = "prepare_config.json"
CARD = "README.md"
LANDMARKS_DIR = "landmarks"
CONTEXT_DIR = "context"
#: Options that change the pixels of a crop: a folder prepared with other values cannot be resumed.
CROP_OPTIONS = ("size", "margin", "detect_max_side", "landmark_model")


@dataclass
class PrepareConfig:
    """Every option of ``python -m train.prepare``; stored as ``prepare_config.json`` in the output."""

    source_dir: str
    out_dir: str
    source: str = "auto"
    size: int = 256
    #: Built-in stylizers (``train.stylize.STYLIZERS``) or names given in ``styles``.
    modalities: list[str] = field(default_factory=lambda: ["sketch", "cartoon"])
    #: Extra modalities from trained Johnson networks: name -> .safetensors path.
    styles: dict[str, str] = field(default_factory=dict)
    val_fraction: float = 0.1
    seed: int = 0
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    #: Alignment margin passed to ``estimate_alignment``; None keeps the faces module's default.
    margin: float | None = None
    detect_max_side: int = 640
    landmark_model: str | None = None
    rafd_angle: str = "090"
    #: RaFD gaze to keep; None keeps all three gazes.
    rafd_gaze: str | None = "frontal"
    #: Side of the context crops as a multiple of ``size`` (same scale, face in the middle); 0: none.
    context_scale: float = 1.5

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrepareConfig:
        return cls(**data)

    def synthetic_modalities(self) -> list[str]:
        """Modalities rendered from the photo crop, in order, without repeats."""
        return list(dict.fromkeys([*self.modalities, *self.styles]))

    def command(self) -> str:
        """An equivalent command line (reconstructed, so that it is the same on every re-run)."""
        parts = ["python -m train.prepare", f"--source {self.source}", self.source_dir, self.out_dir]
        parts.append(f"--size {self.size}")
        plain = [m for m in self.modalities if m not in self.styles]
        parts.append("--modalities" + "".join(f" {m}" for m in plain))
        parts += [f"--style {name}={path}" for name, path in self.styles.items()]
        parts += [f"--val-fraction {self.val_fraction}", f"--seed {self.seed}"]
        if self.margin is not None:
            parts.append(f"--margin {self.margin}")
        if self.context_scale != 1.5:
            parts.append(f"--context-scale {self.context_scale}")
        return " ".join(parts)

    @property
    def context_size(self) -> int:
        """Side of a context crop in pixels (0 when there are none)."""
        return int(round(self.context_scale * self.size)) if self.context_scale else 0


@dataclass
class Item:
    """One (identity, expression): its photo and any real images of other modalities."""

    identity: str
    expression: str
    photo: Path
    real: dict[str, Path]

    @property
    def stem(self) -> str:
        return f"{self.identity}_{self.expression}".replace(os.sep, "-").replace("/", "-")


def group_items(records: Iterable[Record]) -> tuple[list[Item], list[dict[str, Any]]]:
    """Items with a photo, and failure entries for (identity, expression) groups without one."""
    groups: dict[tuple[str, str], dict[str, Path]] = {}
    for record in records:
        groups.setdefault(record.key, {})[record.modality] = record.path
    items, orphans = [], []
    for (identity, expression), by_modality in sorted(groups.items()):
        photo = by_modality.pop(PHOTO, None)
        if photo is None:
            orphans.append(
                _failure(identity, expression, next(iter(by_modality.values())), "NoPhoto", "no photo to align on")
            )
        else:
            items.append(Item(identity, expression, photo, dict(sorted(by_modality.items()))))
    stems = [item.stem for item in items]
    if len(set(stems)) != len(stems):
        clash = next(stem for stem in stems if stems.count(stem) > 1)
        raise ValueError(f"two (identity, expression) pairs share the output name {clash!r}; rename one")
    return items, orphans


def split_identities(identities: Iterable[str], val_fraction: float, seed: int) -> dict[str, str]:
    """identity -> "train" | "val": a seeded shuffle; at least one val id when the fraction is > 0."""
    ordered = sorted(set(identities))
    random.Random(seed).shuffle(ordered)
    n_val = round(val_fraction * len(ordered))
    if val_fraction > 0 and len(ordered) > 1:
        n_val = min(max(n_val, 1), len(ordered) - 1)
    return {identity: ("val" if i < n_val else "train") for i, identity in enumerate(ordered)}


def _failure(identity: str, expression: str, path: Path, error: str, message: str) -> dict[str, Any]:
    return {
        "identity": identity,
        "expression": expression,
        "path": str(path),
        "error": error,
        "message": message,
    }


def output_paths(out: Path, item: Item, synthetic: Iterable[str], context: bool = False) -> dict[str, Path]:
    """modality -> crop path for the photo, the rendered and the real modalities; "landmarks" -> json;
    with ``context``, also ``"context/<modality>"`` -> that modality's context crop."""
    modalities = [PHOTO, *synthetic, *item.real]
    paths = {m: out / m / f"{item.stem}.png" for m in modalities}
    if context:
        paths.update({f"{CONTEXT_DIR}/{m}": out / CONTEXT_DIR / m / f"{item.stem}.png" for m in modalities})
    paths[LANDMARKS_DIR] = out / LANDMARKS_DIR / f"{item.stem}.json"
    return paths


def context_alignment(alignment: Alignment, context_size: int) -> Alignment:
    """The face crop's alignment on a wider canvas of ``context_size`` px, the crop in its middle.

    Crop pixel ``p`` is context pixel ``p + (context_size - crop_size) / 2``: same scale and rotation.
    """
    offset = (context_size - alignment.crop_size) / 2.0
    matrix = alignment.matrix.copy()
    matrix[:, 2] += offset
    return Alignment(matrix=matrix, crop_size=int(context_size))


# --- per-item work (runs in worker processes) ------------------------------------------------------


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
            return {"failed": _failure(item.identity, item.expression, item.photo, type(error).__name__, str(error))}

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


# --- the run -------------------------------------------------------------------------------------


def _remove_stale_temporaries(out: Path) -> None:
    """Temporary files left by a killed run (``atomic_path`` names them ``.<name>.<random>.tmp``)."""
    for tmp in out.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def _check_resumable(config: PrepareConfig, out: Path) -> None:
    stored_path = out / CONFIG
    if not stored_path.exists():
        return
    stored = read_json(stored_path, "the PrepareConfig an earlier run of train.prepare wrote")
    if not isinstance(stored, dict):
        raise ValueError(f"{stored_path}: expected the JSON object of a PrepareConfig; delete it or use a new folder")
    changed = [k for k in CROP_OPTIONS if stored.get(k) != getattr(config, k)]
    if changed:
        details = ", ".join(f"{k}: {stored.get(k)!r} -> {getattr(config, k)!r}" for k in changed)
        raise ValueError(f"{out} was prepared with other crop options ({details}); use a new output folder")


def _write_if_changed(path: Path, text: str) -> None:
    """Atomic write that leaves an identical file alone, so that a no-op re-run touches nothing."""
    if not (path.exists() and path.read_text(encoding="utf-8") == text):
        atomic_write_text(path, text)


def _process(items: list[Item], config: PrepareConfig) -> Iterator[tuple[Item, dict[str, Any]]]:
    workers = max(1, min(config.workers, len(items)))
    if workers == 1:
        worker = Worker(config)  # in the caller's process, leaving its torch threads alone
        yield from ((item, worker.run(item)) for item in items)
        return
    with multiprocessing.get_context().Pool(workers, _init_worker, (config,)) as pool:
        yield from pool.imap_unordered(_run_in_worker, items, chunksize=1)


def prepare(config: PrepareConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run the whole preparation; returns a summary (counts, failures, timings)."""
    from tqdm import tqdm

    out = Path(config.out_dir)
    layout, records = load_records(
        config.source_dir, config.source, rafd_angle=config.rafd_angle, rafd_gaze=config.rafd_gaze
    )
    config = dataclasses.replace(config, source=layout)
    real_modalities = sorted({r.modality for r in records} - {PHOTO})
    clash = set(real_modalities) & set(config.synthetic_modalities())
    if clash:
        raise ValueError(f"modalities {sorted(clash)} exist as real images in the source; do not also render them")
    for name in config.synthetic_modalities():
        if name == PHOTO:
            raise ValueError("'photo' is the source modality; it cannot be rendered")
        if name not in config.styles:
            get_stylizer(name)  # fail early on a typo
    out.mkdir(parents=True, exist_ok=True)
    _check_resumable(config, out)
    _remove_stale_temporaries(out)

    items, failures = group_items(records)
    synthetic = config.synthetic_modalities()
    done: dict[str, dict[str, Any]] = {}
    todo = []
    for item in items:
        paths = output_paths(out, item, synthetic, context=bool(config.context_size))
        if all(p.exists() for p in paths.values()):
            done[item.stem] = json.loads(paths[LANDMARKS_DIR].read_text(encoding="utf-8"))
        else:
            todo.append(item)

    start = time.monotonic()
    results = _process(todo, config) if todo else iter(())
    for item, result in tqdm(results, total=len(todo), desc="prepare", unit="photo", disable=not progress):
        if "ok" in result:
            done[item.stem] = result["ok"]
        else:
            failures.append(result["failed"])
    seconds = time.monotonic() - start

    modalities = [PHOTO, *synthetic, *real_modalities]
    splits = split_identities((r.identity for r in records), config.val_fraction, config.seed)
    rows = _manifest_rows(items, done, modalities, splits, synthetic, out, config.context_size)
    failures.sort(key=lambda f: (f["identity"], f["expression"]))
    _write_if_changed(out / MANIFEST, "".join(json.dumps(row) + "\n" for row in rows))
    _write_if_changed(out / FAILURES, json.dumps(failures, indent=2) + "\n")
    _write_if_changed(out / CONFIG, json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
    unpaired = unpaired_photos(items, real_modalities)
    _write_if_changed(out / CARD, dataset_card(config, rows, failures, modalities, unpaired))
    return {
        "items": len(items),
        "processed": len(todo),
        "skipped": len(items) - len(todo),
        "rows": len(rows),
        "failures": len(failures),
        "unpaired": {modality: len(stems) for modality, stems in unpaired.items()},
        "seconds": seconds,
        "seconds_per_photo": seconds / len(todo) if todo else 0.0,
    }


def unpaired_photos(items: list[Item], real_modalities: list[str]) -> dict[str, list[str]]:
    """For each real (brought) modality, the photos that have no image of it: reported, not an error."""
    return {m: [item.stem for item in items if m not in item.real] for m in real_modalities}


def _manifest_rows(
    items: list[Item],
    done: dict[str, dict[str, Any]],
    modalities: list[str],
    splits: dict[str, str],
    synthetic: list[str],
    out: Path,
    context_size: int = 0,
) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        if item.stem not in done:
            continue
        paths = output_paths(out, item, synthetic, context=bool(context_size))
        for modality in modalities:
            if modality in paths:
                row = {
                    "identity": item.identity,
                    "expression": item.expression,
                    "modality": modality,
                    "split": splits[item.identity],
                    "path": paths[modality].relative_to(out).as_posix(),
                    "landmarks": done[item.stem]["landmarks"],
                }
                if context_size:  # its landmarks are the crop's, shifted by (context_size - size) / 2
                    row["context_path"] = paths[f"{CONTEXT_DIR}/{modality}"].relative_to(out).as_posix()
                    row["context_size"] = context_size
                rows.append(row)
    return rows


LONDON_ATTRIBUTION = (
    "Derived from the Face Research Lab London Set, Lisa DeBruine and Benedict Jones, 2017, figshare, "
    "doi:10.6084/m9.figshare.5047666.v5, licensed CC-BY 4.0 "
    "(https://creativecommons.org/licenses/by/4.0/). Changes: faces aligned and cropped, resized, "
    "and re-rendered as stylized modalities."
)


def dataset_card(
    config: PrepareConfig,
    rows: list[dict[str, Any]],
    failures: list[dict[str, Any]],
    modalities: list[str],
    unpaired: dict[str, list[str]] | None = None,
) -> str:
    """The README.md of a prepared folder: source, counts, modalities, licence, command."""
    identities = {s: sorted({r["identity"] for r in rows if r["split"] == s}) for s in ("train", "val")}
    lines = [
        "# Prepared PortraitGAN training data",
        "",
        f"- Source: `{config.source_dir}` ({config.source} layout)",
        f"- Crops: {config.size}x{config.size}, aligned on 68 dlib landmarks; landmarks in crop pixels",
        f"- Identities: {len(identities['train'])} train, {len(identities['val'])} val "
        f"(split by identity, val fraction {config.val_fraction}, seed {config.seed})",
        f"- Expressions: {', '.join(sorted({r['expression'] for r in rows}))}",
        "- Images per modality: " + ", ".join(f"{m} {sum(r['modality'] == m for r in rows)}" for m in modalities),
        (
            f"- Context crops: {config.context_size}x{config.context_size} (`{CONTEXT_DIR}/`), the same alignment "
            "with the face crop in the middle"
            if config.context_size
            else "- Context crops: none"
        ),
        f"- Photos that could not be used: {len(failures)} (see `{FAILURES}`)",
        *(
            f"- Photos without a `{modality}` image: {len(stems)}"
            + (f" ({', '.join(stems[:5])}{', ...' if len(stems) > 5 else ''})" if stems else "")
            for modality, stems in (unpaired or {}).items()
        ),
        "",
        "Modalities other than `photo` are pseudo-targets rendered from the aligned photo crop "
        "(built-in stylizers or Johnson et al. style networks), or real paired images cropped with the "
        "photo's alignment. They share the photo's landmarks.",
        "",
        f"`{MANIFEST}` has one JSON row per image: identity, expression, modality, split, path, landmarks "
        "(and context_path, context_size).",
        "",
        "Made with:",
        "",
        "```bash",
        config.command(),
        "```",
    ]
    if config.source == "london":
        lines += ["", "## Licence", "", LONDON_ATTRIBUTION]
    return "\n".join(lines) + "\n"


# --- command line --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> PrepareConfig:
    defaults = PrepareConfig("", "")
    parser = argparse.ArgumentParser(prog="python -m train.prepare", description=__doc__.split("\n")[0])
    parser.add_argument("source_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--source", default="auto", choices=["auto", "london", "rafd", "generic"])
    parser.add_argument("--size", type=int, default=defaults.size)
    parser.add_argument("--modalities", nargs="*", default=defaults.modalities, help="built-in stylizers")
    parser.add_argument(
        "--style",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="trained style network as a modality",
    )
    parser.add_argument("--val-fraction", type=float, default=defaults.val_fraction)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--margin", type=float, default=None, help="alignment margin (faces default if unset)")
    parser.add_argument("--detect-max-side", type=int, default=defaults.detect_max_side)
    parser.add_argument("--landmark-model", default=None, help="dlib 68-point shape predictor file")
    parser.add_argument(
        "--context-scale",
        type=float,
        default=defaults.context_scale,
        help="side of the context crops as a multiple of --size (0: none)",
    )
    parser.add_argument("--rafd-angle", default=defaults.rafd_angle)
    parser.add_argument("--rafd-gaze", default=defaults.rafd_gaze, help="frontal, left, right or any")
    args = vars(parser.parse_args(argv))
    styles = {}
    for spec in args.pop("style"):
        name, sep, path = spec.partition("=")
        if not sep or not name or not path.endswith(".safetensors"):
            parser.error(f"--style takes NAME=path/to/net.safetensors, got {spec!r}")
        styles[name] = path
    if args["rafd_gaze"] == "any":
        args["rafd_gaze"] = None
    return PrepareConfig(**args, styles=styles)


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    try:
        summary = prepare(config)
    except ValueError as error:  # bad options or source folder: one line, no traceback
        raise SystemExit(f"error: {error}") from None
    print(
        f"{summary['rows']} images in {config.out_dir}/{MANIFEST}: {summary['processed']} photos prepared "
        f"({summary['seconds']:.1f} s, {summary['seconds_per_photo']:.2f} s/photo), {summary['skipped']} "
        f"already done, {summary['failures']} failed (see {FAILURES})"
        + "".join(f"; {n} photos without a {m} image" for m, n in summary["unpaired"].items() if n),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
