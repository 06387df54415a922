"""Expression controls: named, composable edits of the 68 landmarks (0 = no change).

Every control acts in the face's own canonical frame: the landmarks are mapped by a similarity
transform onto the mean face (fitted on the eyes and nose, in eye units where 1 = the distance
between the eye centres, y down), edited there, and mapped back. So the same values give the same
expression in a 256 px crop, a 1024 px crop or a tilted face in the full photo.

* ``smile`` is learnt from data: the mean (smiling - neutral) displacement of the 72 London
  training face pairs (``data/expression_directions.json``); 1.0 is the average real smile of that set.
* The others are geometric, each measured against the face's own parts (eye height, mouth width,
  brow-to-eye gap, jaw-to-midline distance), never in pixels.

"Left" and "right" are the subject's own: ``left_eye_open=-1`` closes the eye on the right of the
picture (points 42-47).

Taking the expression of another face (a reference) is :mod:`portraitgan_hub.faces.expression_transfer`;
its names are importable from here too.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from portraitgan_hub.faces.alignment import DATA_DIR, apply_affine, mean_face
from portraitgan_hub.faces.expression_model import to_canonical as _to_canonical
from portraitgan_hub.faces.expression_transfer import REFERENCE_PARTS as REFERENCE_PARTS
from portraitgan_hub.faces.expression_transfer import REFERENCE_STRENGTH_RANGE as REFERENCE_STRENGTH_RANGE
from portraitgan_hub.faces.expression_transfer import check_reference_strength as check_reference_strength
from portraitgan_hub.faces.expression_transfer import reference_part_indices as reference_part_indices
from portraitgan_hub.faces.expression_transfer import transfer_expression as transfer_expression
from portraitgan_hub.faces.landmarks import (
    INNER_LIPS,
    JAW,
    LEFT_BROW,
    LEFT_EYE,
    NOSE_BASE,
    NOSE_BRIDGE,
    NUM_LANDMARKS,
    OUTER_LIPS,
    RIGHT_BROW,
    RIGHT_EYE,
    check_landmarks,
)

DIRECTIONS_FILE = DATA_DIR / "expression_directions.json"

# Strength of the geometric controls at value 1.0, each relative to a measure of the face itself.
#: mouth_open=1 parts the inner lips by this fraction of the mouth width.
MOUTH_OPEN_PER_WIDTH = 0.5
#: Of the extra lip gap, the share taken by the upper lip (the rest moves the lower lip and chin).
UPPER_LIP_SHARE = 0.2
#: eye_open=1 adds this fraction of the lid distance (the larger of the eye's own and the mean face's).
EYE_OPEN_GAIN = 0.5
#: mouth_width=1 widens the lips by this fraction along the mouth axis.
MOUTH_WIDTH_GAIN = 0.25
#: brow_raise=1 lifts a brow by this fraction of its distance above the eye centre.
BROW_RAISE_PER_GAP = 0.3
#: brow_furrow=1 pulls the inner brow ends this fraction of the way to the midline, and down by
#: this fraction of the brow-to-eye gap.
BROW_FURROW_INWARD = 0.5
BROW_FURROW_DOWN = 0.35
#: face_slim=1 pulls the jaw line this fraction of the way to the face's midline (at most).
FACE_SLIM_GAIN = 0.2
#: Mouth shapes at value 1.0, as (mouth_open, mouth_width) amounts of the controls above: "aaa" drops
#: the jaw, "eee" spreads the lips over a small gap, "woo" narrows and rounds them.
MOUTH_SHAPES: dict[str, tuple[float, float]] = {"aaa": (1.0, -0.3), "eee": (0.1, 0.8), "woo": (0.55, -1.2)}
#: "woo" also pushes the inner lip corners towards the centre by this fraction of their distance.
WOO_ROUNDING = 0.4
#: Head roll is in degrees and at most this much either way (a larger in-plane turn is a photo rotation).
MAX_ROLL_DEGREES = 20.0


@functools.lru_cache(maxsize=1)
def _directions() -> dict[str, np.ndarray]:
    data = json.loads(DIRECTIONS_FILE.read_text(encoding="utf-8"))
    directions = {}
    for name, entry in data["directions"].items():
        field = np.asarray(entry["displacement"], dtype=np.float64)
        if field.shape != (NUM_LANDMARKS, 2):
            raise ValueError(f"{DIRECTIONS_FILE}: {name} has shape {field.shape}, expected ({NUM_LANDMARKS}, 2)")
        field.setflags(write=False)
        directions[name] = field
    return directions


@dataclass
class ExpressionControls:
    """Expression edits; each field is a float where 0 changes nothing. Applied in this order.

    ``aaa``, ``eee`` and ``woo`` are mouth shapes (1.0 = a clear vowel); ``roll`` tilts the whole
    head in the picture plane, in degrees (positive = clockwise as seen in the picture), about the
    face centre.

    Each value must be a real number (else ``TypeError``) in its row of :data:`CONTROL_RANGES` (else
    ``ValueError``).
    Negative values invert a control (``smile=-1`` turns the corners down, ``eye_open=-1`` and
    ``mouth_open=-1`` close fully and cannot close further). Per-side values add to the
    two-sided one: ``eye_open=0.5, left_eye_open=-1.5`` closes the left eye and opens the right.
    """

    smile: float = 0.0
    face_slim: float = 0.0
    mouth_width: float = 0.0
    mouth_open: float = 0.0
    eye_open: float = 0.0
    left_eye_open: float = 0.0
    right_eye_open: float = 0.0
    brow_raise: float = 0.0
    left_brow_raise: float = 0.0
    right_brow_raise: float = 0.0
    brow_furrow: float = 0.0
    aaa: float = 0.0
    eee: float = 0.0
    woo: float = 0.0
    roll: float = 0.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise TypeError(f"expression control {f.name} must be a number, got {type(value).__name__} {value!r}")
            if not np.isfinite(value):
                raise ValueError(f"expression control {f.name} must be finite, got {value}")
            CONTROL_RANGES[f.name].check(f.name, float(value))
            setattr(self, f.name, float(value))

    @classmethod
    def from_dict(cls, controls: Mapping[str, float]) -> ExpressionControls:
        """Controls by name; an unknown name is a ValueError listing the valid ones."""
        unknown = sorted(set(controls) - set(EXPRESSION_NAMES))
        if unknown:
            raise ValueError(
                f"unknown expression control{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                f"valid: {', '.join(EXPRESSION_NAMES)}"
            )
        return cls(**controls)

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    @property
    def is_neutral(self) -> bool:
        return not any(self.to_dict().values())

    def apply(self, landmarks: np.ndarray) -> np.ndarray:
        """The edited ``(68, 2)`` float32 landmarks, in the same frame as ``landmarks``."""
        points = check_landmarks(landmarks)
        if self.is_neutral:
            return points.astype(np.float32)
        canonical, back = _to_canonical(points)
        if self.smile:
            canonical = canonical + self.smile * _directions()["smile"]
        canonical = _slim_face(canonical, self.face_slim)
        canonical = _widen_mouth(canonical, self.mouth_width)
        canonical = _open_mouth(canonical, self.mouth_open)
        for shape in MOUTH_SHAPES:
            canonical = _mouth_shape(canonical, shape, getattr(self, shape))
        canonical = _open_eye(canonical, RIGHT_EYE, self.eye_open + self.right_eye_open)
        canonical = _open_eye(canonical, LEFT_EYE, self.eye_open + self.left_eye_open)
        canonical = _raise_brow(canonical, RIGHT_BROW, self.brow_raise + self.right_brow_raise)
        canonical = _raise_brow(canonical, LEFT_BROW, self.brow_raise + self.left_brow_raise)
        canonical = _furrow_brows(canonical, self.brow_furrow)
        canonical = _roll(canonical, self.roll)
        return apply_affine(back, canonical).astype(np.float32)


EXPRESSION_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ExpressionControls))


@dataclass(frozen=True)
class ControlRange:
    """The valid values of one expression control, both ends included (0 = unchanged is always inside)."""

    minimum: float
    maximum: float
    #: What the ends mean, for help texts and error messages.
    meaning: str

    def check(self, name: str, value: float) -> None:
        """Raise ``ValueError`` naming the control ``name`` and this range if ``value`` is outside it."""
        if not self.minimum <= value <= self.maximum:
            raise ValueError(
                f"expression control {name}={value:g} is outside its valid range "
                f"[{self.minimum:g}, {self.maximum:g}] ({self.meaning})"
            )


#: The one table of valid control values, shared by :class:`ExpressionControls` (so the Python API),
#: the ``portraitgan edit`` options and the app's sliders. A new control adds a field above and a row
#: here; a value outside its row is a ``ValueError`` naming the control and the range.
CONTROL_RANGES: dict[str, ControlRange] = {
    "smile": ControlRange(-2.0, 2.0, "1 = the average London smile, -1 turns the corners down"),
    "face_slim": ControlRange(-1.5, 1.5, "1 pulls the jaw 20% towards the midline, negative widens"),
    "mouth_width": ControlRange(-1.5, 1.5, "1 widens the lips by 25%"),
    "mouth_open": ControlRange(-1.5, 1.5, "1 parts the lips by half the mouth width, -1 closes"),
    "eye_open": ControlRange(-1.5, 1.5, "-1 closes both eyes; adds to the per-side controls"),
    "left_eye_open": ControlRange(-1.5, 1.5, "-1 closes the subject's left eye"),
    "right_eye_open": ControlRange(-1.5, 1.5, "-1 closes the subject's right eye"),
    "brow_raise": ControlRange(-1.5, 1.5, "1 lifts the brows by 30% of their height above the eyes"),
    "left_brow_raise": ControlRange(-1.5, 1.5, "the subject's left brow only"),
    "right_brow_raise": ControlRange(-1.5, 1.5, "the subject's right brow only"),
    "brow_furrow": ControlRange(-1.5, 1.5, "1 pulls the inner brow ends in and down"),
    "aaa": ControlRange(0.0, 1.5, 'mouth shape "aaa": 1 = a clear vowel, 0 = none'),
    "eee": ControlRange(0.0, 1.5, 'mouth shape "eee": 1 = a clear vowel, 0 = none'),
    "woo": ControlRange(0.0, 1.5, 'mouth shape "woo": 1 = a clear vowel, 0 = none'),
    "roll": ControlRange(-MAX_ROLL_DEGREES, MAX_ROLL_DEGREES, "head tilt in degrees, positive = clockwise"),
}
if set(CONTROL_RANGES) != set(EXPRESSION_NAMES):  # a new control without a row (or a stale row)
    raise RuntimeError(
        f"CONTROL_RANGES and ExpressionControls disagree: {sorted(set(CONTROL_RANGES) ^ set(EXPRESSION_NAMES))}"
    )


def apply_expression(landmarks: np.ndarray, **controls: float) -> np.ndarray:
    """``ExpressionControls(**controls).apply(landmarks)``, e.g. ``apply_expression(lm, smile=0.8)``."""
    return ExpressionControls.from_dict(controls).apply(landmarks)


# --- helpers on landmark sets ---------------------------------------------------------------------
def interpolate(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """``(1 - t) * a + t * b``; ``t`` outside [0, 1] extrapolates (exaggerates or reverses)."""
    a, b = check_landmarks(a), check_landmarks(b)
    return ((1.0 - t) * a + t * b).astype(np.float32)


def move_points(landmarks: np.ndarray, moves: Mapping[int, tuple[float, float]]) -> np.ndarray:
    """A copy of ``landmarks`` with the points ``{index: (x, y)}`` moved to new positions."""
    points = check_landmarks(landmarks).astype(np.float32)
    for index, xy in moves.items():
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < NUM_LANDMARKS:
            raise ValueError(f"landmark index must be an integer in 0..{NUM_LANDMARKS - 1}, got {index!r}")
        position = np.asarray(xy, dtype=np.float64)
        if position.shape != (2,) or not np.isfinite(position).all():
            raise ValueError(f"the new position of point {index} must be two finite numbers, got {xy!r}")
        points[index] = position
    return points


# --- the geometric controls, in canonical eye units (x right, y down) ------------------------------
def _slim_face(points: np.ndarray, value: float) -> np.ndarray:
    """Pull the jaw line towards the midline, most at the cheeks and chin sides, not at the ears."""
    if not value:
        return points
    out = points.copy()
    midline_x = points[list(NOSE_BRIDGE)][:, 0].mean()
    jaw = np.array(JAW)
    weight = np.sin(np.pi * (jaw - jaw[0]) / (jaw[-1] - jaw[0]))
    out[jaw, 0] -= value * FACE_SLIM_GAIN * weight * (points[jaw, 0] - midline_x)
    return out


def _widen_mouth(points: np.ndarray, value: float) -> np.ndarray:
    """Stretch both lip contours along the line between the mouth corners, about the mouth centre."""
    if not value:
        return points
    out = points.copy()
    lips = [*OUTER_LIPS, *INNER_LIPS]
    axis = points[54] - points[48]
    axis /= np.hypot(*axis)
    centre = points[lips].mean(axis=0)
    along = (points[lips] - centre) @ axis
    out[lips] += value * MOUTH_WIDTH_GAIN * along[:, None] * axis
    return out


_UPPER_LIP = [49, 50, 51, 52, 53, 61, 62, 63]
_LOWER_LIP = [55, 56, 57, 58, 59, 65, 66, 67]
_MOUTH_CORNERS = [48, 54, 60, 64]
_INNER_PAIRS = ((61, 67), (62, 66), (63, 65))


def _open_mouth(points: np.ndarray, value: float) -> np.ndarray:
    """Part the lips: the lower lip and chin drop, the upper lip rises a little.

    Opening is measured in mouth widths (the gap may start at 0); closing in the current gap, so
    -1 brings the inner lips exactly together.
    """
    if not value:
        return points
    gap = float(np.mean([points[lower, 1] - points[upper, 1] for upper, lower in _INNER_PAIRS]))
    if value > 0:
        change = value * MOUTH_OPEN_PER_WIDTH * float(np.hypot(*(points[54] - points[48])))
    else:
        change = max(value, -1.0) * max(gap, 0.0)
    up, down = UPPER_LIP_SHARE * change, (1.0 - UPPER_LIP_SHARE) * change
    out = points.copy()
    out[_UPPER_LIP, 1] -= up
    out[_LOWER_LIP, 1] += down
    out[_MOUTH_CORNERS, 1] += (down - up) / 2.0
    # The chin goes with the lower lip, fading out along the jaw towards the ears.
    jaw = np.array(JAW)
    chin = jaw[len(jaw) // 2]
    reach = 5.0  # jaw points either side of the chin that follow (points 3-13 of 0-16)
    weight = np.cos(np.pi / 2 * np.clip(np.abs(jaw - chin) / reach, 0.0, 1.0))
    out[jaw, 1] += down * weight
    return out


def _open_eye(points: np.ndarray, eye: range, value: float) -> np.ndarray:
    """Move the eyelids apart (value > 0) or together (-1 = closed) across the eye's own axis.

    Opening adds ``value * EYE_OPEN_GAIN`` times the larger of the current and the mean face's lid
    distance, so a closed eye can be opened; closing scales the current distance, so -1 closes
    exactly.
    """
    if not value:
        return points
    value = max(value, -1.0)
    idx = list(eye)  # outer/inner corner, two upper-lid points, inner/outer corner, two lower-lid points
    corner_a, upper, corner_b, lower = idx[0], idx[1:3], idx[3], idx[5:3:-1]
    axis = points[corner_b] - points[corner_a]
    axis /= np.hypot(*axis)
    normal = np.array([-axis[1], axis[0]])
    if normal[1] < 0:  # point down the face
        normal = -normal
    reference = mean_face()
    out = points.copy()
    for top, bottom in zip(upper, lower):
        height = float((points[bottom] - points[top]) @ normal)
        if value > 0:
            typical = float((reference[bottom] - reference[top]) @ np.array([0.0, 1.0]))
            shift = value * EYE_OPEN_GAIN * max(height, typical) / 2.0
        else:
            shift = value * max(height, 0.0) / 2.0
        out[top] -= shift * normal
        out[bottom] += shift * normal
    return out


def _brow_gap(points: np.ndarray, brow: range) -> float:
    eye = RIGHT_EYE if brow == RIGHT_BROW else LEFT_EYE
    return float(points[list(eye), 1].mean() - points[list(brow), 1].mean())


def _raise_brow(points: np.ndarray, brow: range, value: float) -> np.ndarray:
    """Lift one brow by a fraction of its own height above the eye."""
    if not value:
        return points
    out = points.copy()
    out[list(brow), 1] -= value * BROW_RAISE_PER_GAP * max(_brow_gap(points, brow), 0.0)
    return out


def _furrow_brows(points: np.ndarray, value: float) -> np.ndarray:
    """Draw the inner brow ends together and down (negative: apart and up, a worried look)."""
    if not value:
        return points
    out = points.copy()
    midline_x = points[list(NOSE_BRIDGE) + list(NOSE_BASE)][:, 0].mean()
    falloff = np.array([0.0, 0.1, 0.3, 0.6, 1.0])  # outer end .. inner end
    for brow, order in ((RIGHT_BROW, list(RIGHT_BROW)), (LEFT_BROW, list(LEFT_BROW)[::-1])):
        gap = max(_brow_gap(points, brow), 0.0)
        out[order, 0] -= value * BROW_FURROW_INWARD * falloff * (points[order, 0] - midline_x)
        out[order, 1] += value * BROW_FURROW_DOWN * falloff * gap
    return out


def _mouth_shape(points: np.ndarray, shape: str, value: float) -> np.ndarray:
    """A vowel shape (:data:`MOUTH_SHAPES`) as amounts of mouth opening and width; ``woo`` also rounds."""
    value = max(value, 0.0)
    if not value:
        return points
    opening, width = MOUTH_SHAPES[shape]
    out = _widen_mouth(points, value * width)
    out = _open_mouth(out, value * opening)
    if shape == "woo":  # the inner corners come in, so that the inner lips form an "o"
        centre = out[list(INNER_LIPS)].mean(axis=0)
        for corner in (60, 64):
            out[corner] += min(value, 1.5) * WOO_ROUNDING * (centre - out[corner])
    return out


def _roll(points: np.ndarray, degrees: float) -> np.ndarray:
    """Turn every point by ``degrees`` about the face centre (clockwise on screen for positive, y down)."""
    if not degrees:
        return points
    angle = np.deg2rad(degrees)
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]])  # with y down this turns clockwise as seen
    centre = points.mean(axis=0)
    return (points - centre) @ rotation.T + centre
