"""Evaluate a PortraitGAN model against three baselines on held-out pairs of a prepared folder.

    python train/evaluate.py --model runs/lite/model --data data/london256 [--split val] [--out DIR]
        [--pairs neutral:smiling ...] [--no-modality-translation] [--no-op-photos N]

The command-line entry (also ``python -m train.evaluate``); the evaluation itself is the package
:mod:`train.evaluation`, its command line :mod:`train.evaluation.cli`.
"""

# ruff: noqa: E402  (the path set-up below must run before the package imports)
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `train` the package, not this file's folder
    _ROOT = Path(__file__).resolve().parents[1]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "train"]
    sys.path.insert(0, str(_ROOT))

from train.evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
