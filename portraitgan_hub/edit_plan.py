"""What the editor's first two stages hand on: the prepared photo and the plan of an edit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from portraitgan_hub.faces.image_io import PhotoInfo
from portraitgan_hub.faces.landmarks import Face
from portraitgan_hub.stages import AlignedFace


@dataclass(frozen=True, eq=False)
class PreparedPhoto:
    """Stage 1: one photo, its faces (largest first, photo pixels) and the chosen face aligned."""

    picture: Image.Image  # the full-resolution RGB working copy
    info: PhotoInfo  # what the result gets back: alpha, ICC profile, EXIF
    name: str  # for messages
    key: str  # a digest of the pixels, for the editor's caches
    faces: tuple[Face, ...]
    face: int  # which of ``faces`` is aligned
    aligned: AlignedFace


@dataclass(frozen=True, eq=False)
class EditPlan:
    """Stage 2: what G is asked for. ``target``: (68, 2) landmarks in crop pixels; ``condition``: c,
    (1, n) float32; ``source``: the input's modality index; ``converts``: c asks for another modality
    than the input's (the whole picture is converted under the face); ``no_op``: the face's own
    landmarks and the input's modality, so the photo itself is the result; ``warp_only``: the face is
    too small to draw on, G's colour is not used (``edit_warnings``); ``warnings``: what it warned of."""

    target: np.ndarray
    condition: torch.Tensor
    source: int
    converts: bool
    no_op: bool
    warp_only: bool = False
    warnings: tuple[str, ...] = ()
