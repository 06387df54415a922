"""Reference expression transfer: give a face the expression of another face, part by part.

The expression is taken in the same canonical frame as the expression controls of
:mod:`portraitgan_hub.faces.expressions` (:func:`~portraitgan_hub.faces.expression_model.to_canonical`:
a similarity transform onto the mean face, fitted on the eyes and nose; eye units where 1 = the
distance between the eye centres, y down), so it does not depend on either face's size, position or
in-plane tilt. Landmarks are ``(68, 2)`` points in pixels, each set in its own frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from portraitgan_hub.faces.alignment import apply_affine
from portraitgan_hub.faces.expression_model import expression_model
from portraitgan_hub.faces.expression_model import to_canonical as _to_canonical
from portraitgan_hub.faces.landmarks import (
    INNER_LIPS,
    JAW,
    LEFT_BROW,
    LEFT_EYE,
    NUM_LANDMARKS,
    OUTER_LIPS,
    RIGHT_BROW,
    RIGHT_EYE,
    check_landmarks,
)

#: Face parts :func:`transfer_expression` can take from a reference (``"all"`` = every landmark).
REFERENCE_PARTS: dict[str, tuple[int, ...]] = {
    "eyes": (*RIGHT_EYE, *LEFT_EYE),
    "brows": (*RIGHT_BROW, *LEFT_BROW),
    "mouth": (*OUTER_LIPS, *INNER_LIPS, *range(5, 12)),  # the lips and the chin that moves with them
    "all": tuple(range(NUM_LANDMARKS)),
}
#: Valid range of the reference strength (1 = the reference's expression as it is).
REFERENCE_STRENGTH_RANGE = (0.0, 1.5)


#: Parts whose expression displacement :func:`transfer_expression` rescales together.
_TRANSFER_PARTS = (JAW, RIGHT_BROW, LEFT_BROW, range(27, 36), RIGHT_EYE, LEFT_EYE, range(48, 68))


def transfer_expression(
    subject_landmarks: np.ndarray,
    reference_landmarks: np.ndarray,
    reference_neutral: np.ndarray | None = None,
    strength: float = 1.0,
    parts: str | Sequence[str] = "all",
) -> np.ndarray:
    """Give the subject the reference face's expression, on top of the subject's own.

    The expression is the reference's displacement from its neutral shape, taken in canonical eye
    units and rescaled part by part (each eye, brow, the nose, the mouth, the jaw) by the ratio of
    the subject's part size to the reference-neutral's, then added to the subject. The neutral shape
    is ``reference_neutral`` (the same person without expression) if given, else estimated from the
    reference's landmarks alone by the identity/expression model of
    :mod:`portraitgan_hub.faces.expression_model` (a linear face-shape model, PCA of London neutral
    shapes and of smile displacements; posterior mean under a spike-and-slab expression prior), so
    the reference's face shape is not carried over. ``(68, 2)`` points in any pixel frames.

    ``strength`` scales the taken expression, 0..1.5 (0 = none, 1 = as in the reference). ``parts``
    limits it to some of :data:`REFERENCE_PARTS` (``"eyes"``, ``"brows"``, ``"mouth"``, ``"all"``,
    a name or a list of names); other points stay as the subject's. Raises ValueError for a
    strength outside the range or an unknown part.
    """
    strength = check_reference_strength(strength)
    indices_taken = reference_part_indices(parts)
    subject, back = _to_canonical(check_landmarks(subject_landmarks))
    reference, _ = _to_canonical(check_landmarks(reference_landmarks))
    if reference_neutral is None:
        neutral = expression_model().neutral(reference)
    else:
        neutral = _to_canonical(check_landmarks(reference_neutral))[0]
    displacement = reference - neutral
    for part in _TRANSFER_PARTS:
        indices = list(part)
        ratio = _part_size(subject[indices]) / max(_part_size(neutral[indices]), 1e-9)
        displacement[indices] *= ratio
    keep = np.zeros(NUM_LANDMARKS, dtype=bool)
    keep[list(indices_taken)] = True
    displacement[~keep] = 0.0
    return apply_affine(back, subject + strength * displacement).astype(np.float32)


def check_reference_strength(strength: float) -> float:
    """``strength`` as a float if it is a number within :data:`REFERENCE_STRENGTH_RANGE`, else ValueError."""
    low, high = REFERENCE_STRENGTH_RANGE
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.floating, np.integer)):
        raise ValueError(f"reference strength must be a number in {low:g}..{high:g}, got {strength!r}")
    if not low <= float(strength) <= high:
        raise ValueError(f"reference strength must be in {low:g}..{high:g}, got {strength}")
    return float(strength)


def reference_part_indices(parts: str | Sequence[str]) -> tuple[int, ...]:
    """The landmark indices of ``parts`` (a name of :data:`REFERENCE_PARTS`, or several); ValueError if unknown.

    A comma-separated string (``"eyes,mouth"``) counts as several names.
    """
    names = [name.strip() for name in parts.split(",")] if isinstance(parts, str) else [str(p).strip() for p in parts]
    unknown = [name for name in names if name not in REFERENCE_PARTS]
    if unknown or not names:
        raise ValueError(
            f"unknown reference part(s) {', '.join(unknown) or '(none given)'}; valid: {', '.join(REFERENCE_PARTS)}"
        )
    return tuple(sorted({index for name in names for index in REFERENCE_PARTS[name]}))


def _part_size(points: np.ndarray) -> float:
    return float(np.sqrt(((points - points.mean(axis=0)) ** 2).sum(axis=1).mean()))
