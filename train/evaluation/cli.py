"""Evaluate a PortraitGAN model against three baselines on held-out pairs of a prepared folder.

    python train/evaluate.py --model runs/lite/model --data data/london256 [--split val] [--out DIR]
        [--pairs neutral:smiling ...] [--no-modality-translation] [--no-op-photos N]

(or ``python -m train.evaluate ...``). What it measures and writes: :mod:`train.evaluation`.
"""

from __future__ import annotations

import argparse
import sys

from portraitgan_hub.errors import PortraitGANError
from train.evaluation.pairs import EvaluationConfig
from train.evaluation.run import evaluate


def parse_args(argv: list[str] | None = None) -> EvaluationConfig:
    """The :class:`EvaluationConfig` of a ``train/evaluate.py`` command line."""
    defaults = EvaluationConfig("", "")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="saved PortraitGAN folder or Hub id")
    parser.add_argument("--data", required=True, help="folder prepared by train.prepare")
    parser.add_argument("--split", default=defaults.split)
    parser.add_argument("--out", default=defaults.out)
    parser.add_argument("--pairs", nargs="+", metavar="A:B", help="photo expression pairs (default: all ordered)")
    parser.add_argument("--no-modality-translation", action="store_true")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument(
        "--no-op-photos",
        type=int,
        default=defaults.no_op_photos,
        metavar="N",
        help="no-op fidelity of the whole edit path on the originals of N source photos (0: off; "
        f"default {defaults.no_op_photos})",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    pairs = None
    if args.pairs:
        if any(spec.count(":") != 1 for spec in args.pairs):
            parser.error("--pairs takes EXPRESSION_A:EXPRESSION_B, e.g. neutral:smiling")
        pairs = [tuple(spec.split(":")) for spec in args.pairs]
    if args.no_op_photos < 0:
        parser.error(f"--no-op-photos takes 0 or more photos, got {args.no_op_photos}")
    return EvaluationConfig(
        model=args.model,
        data=args.data,
        split=args.split,
        out=args.out,
        pairs=pairs,
        modality_translation=not args.no_modality_translation,
        batch_size=args.batch_size,
        no_op_photos=args.no_op_photos,
        progress=not args.no_progress,
    )


def main(argv: list[str] | None = None) -> int:
    """``train/evaluate.py``: evaluate, print a one-line summary; 1 with a one-line error on bad input."""
    config = parse_args(argv)
    try:
        result = evaluate(config)
    except (PortraitGANError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    passed = sum(g["passed"] is True for g in result["gates"])
    print(
        f"{len(result['pairs'])} pairs, {result['seconds_per_pair']:.2f} s per pair; "
        f"{passed} of {len(result['gates'])} gates pass; wrote {config.out}"
    )
    return 0
