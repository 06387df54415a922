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
                                            so that G learns to convert the whole picture
    landmarks/<identity>_<expression>.json  crop-space landmarks, alignment matrix, source path
    manifest.jsonl                          one row per image (identity, expression, modality, split,
                                            path, landmarks)
    failures.json                           photos that could not be used, and why
    prepare_config.json, README.md          the options used, and a dataset card

Every file is written atomically, item by item, so a killed run leaves only whole files and a
re-run redoes only what is missing (it rewrites nothing that is already there). Use one run per
output folder at a time.

The folder's layout and options are in :mod:`train.prepare_layout`, the work on one item (align,
crop, stylize) in :mod:`train.prepare_crops`, the card in :mod:`train.prepare_card`; this module
runs them and writes the manifest.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from portraitgan_hub.io_utils import atomic_write_text, read_json
from train.prepare_card import dataset_card
from train.prepare_crops import process
from train.prepare_layout import (
    CARD,
    CONFIG,
    CONTEXT_DIR,
    CROP_OPTIONS,
    FAILURES,
    LANDMARKS_DIR,
    MANIFEST,
    Item,
    PrepareConfig,
    group_items,
    output_paths,
    split_identities,
    unpaired_photos,
)
from train.sources import PHOTO, load_records
from train.stylize import get_stylizer


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
    results = process(todo, config) if todo else iter(())
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


# --- command line --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> PrepareConfig:
    """The :class:`PrepareConfig` of a ``python -m train.prepare`` command line."""
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
    """``python -m train.prepare``: prepare the folder and print a one-line summary to stderr."""
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
