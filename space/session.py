"""What one user of the app is editing, as plain immutable data: no gradio, no model.

The app keeps one :class:`Session` per browser tab in a ``gr.State``; every handler takes the old
session and returns a new one, so undo is a stack of earlier values and nothing is shared between
users. Everything here is cheap and deterministic, so the tests call it without a server. The
photo itself is the editor's stage 1 (``portraitgan_hub.editor.PreparedPhoto``): faces detected
once, the chosen face aligned; pictures made once per photo (previews, the whole photo converted to
a sketch, ...) are cached by the editor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from portraitgan_hub.editor import PreparedPhoto
from portraitgan_hub.faces.expressions import (
    CONTROL_RANGES,
    EXPRESSION_NAMES,
    REFERENCE_PARTS,
    REFERENCE_STRENGTH_RANGE,
    ExpressionControls,
)
from portraitgan_hub.faces.image_io import PhotoInfo
from portraitgan_hub.faces.landmarks import Face
from portraitgan_hub.stages import AlignedFace

Point = tuple[float, float]

CONTROL_STEP = 0.05
#: Slider steps that differ from CONTROL_STEP (roll is in degrees).
_STEPS = {"roll": 1.0}
_LABELS = {"aaa": 'Mouth "aaa"', "eee": 'Mouth "eee"', "woo": 'Mouth "woo"', "roll": "Head roll (\u00b0)"}
#: Reference strength slider: its range, and the parts one can take from a reference.
REFERENCE_STRENGTH = REFERENCE_STRENGTH_RANGE
REFERENCE_PART_CHOICES: tuple[str, ...] = tuple(REFERENCE_PARTS)
#: What the result shows: the whole picture (the face composed into it, every pixel converted on a
#: change of modality), or only the aligned portrait at twice the model's size (``output="portrait"``).
WHOLE_PICTURE = "whole picture"
PORTRAIT_ONLY = "portrait only"
VIEW_CHOICES: tuple[str, ...] = (WHOLE_PICTURE, PORTRAIT_ONLY)
#: Style strength slider (``modality_strength``): 0 keeps the input's modality, 1 is the full target.
STYLE_STRENGTH = (0.0, 1.0)
#: The before/after preview: longest side in pixels, from the browser's view size, within these bounds.
PREVIEW_SIDE_RANGE = (256, 1280)
DEFAULT_PREVIEW_SIDE = 1024
#: A click on the crop view picks the nearest landmark within this fraction of the crop size.
PICK_RADIUS = 0.06
#: The crop view is shown at least this many pixels wide, so that single points can be clicked.
CROP_VIEW_MIN_SIZE = 512
#: What the crop view shows: the whole aligned face, or its mouth or one eye with its brow enlarged,
#: so that every point of that part can be tapped on a phone (``crop_zoom.zoom_for``). The eyes are
#: the subject's, as the eye sliders' are.
WHOLE_FACE = "whole face"
ZOOM_CHOICES: tuple[str, ...] = (WHOLE_FACE, "mouth", "left eye", "right eye")


# --- expression sliders -------------------------------------------------------------------------
def control_label(name: str) -> str:
    """``left_eye_open`` -> ``Left eye open``; ``aaa`` -> ``Mouth "aaa"``, ``roll`` -> ``Head roll (°)``."""
    return _LABELS.get(name, name.replace("_", " ").capitalize())


def control_range(name: str) -> tuple[float, float, float]:
    """(minimum, maximum, step) of the slider of expression control ``name``: its row of the one
    table of valid values, ``portraitgan_hub.faces.expressions.CONTROL_RANGES``."""
    row = CONTROL_RANGES[name]
    return row.minimum, row.maximum, _STEPS.get(name, CONTROL_STEP)


def preview_side(value: float | None) -> int:
    """The preview's longest side in pixels: ``value`` (from the browser) clamped to PREVIEW_SIDE_RANGE.

    ``None`` or a value that is not a positive finite number gives :data:`DEFAULT_PREVIEW_SIDE`.
    """
    try:
        side = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return DEFAULT_PREVIEW_SIDE
    if not np.isfinite(side) or side <= 0:
        return DEFAULT_PREVIEW_SIDE
    low, high = PREVIEW_SIDE_RANGE
    return int(min(max(round(side), low), high))


def controls_from_values(values: Sequence[float | None]) -> ExpressionControls:
    """Slider values in :data:`EXPRESSION_NAMES` order -> controls; an empty slider counts as 0."""
    if len(values) != len(EXPRESSION_NAMES):
        raise ValueError(f"expected {len(EXPRESSION_NAMES)} slider values, got {len(values)}")
    return controls_from_mapping(dict(zip(EXPRESSION_NAMES, values)))


def controls_from_mapping(values: Mapping[str, float | None]) -> ExpressionControls:
    """Controls by name (unknown names are a ValueError that lists the valid ones); None counts as 0."""
    return ExpressionControls.from_dict({name: 0.0 if v is None else float(v) for name, v in values.items()})


# --- modalities -----------------------------------------------------------------------------------
def target_for_source(source: str, current: str | None, modalities: Sequence[str]) -> str:
    """The target modality once the user has said what the input is.

    The source is the ``input_modality`` of the edit: at a style strength s below 1 the generator
    is conditioned on ``(1 - s) c_source + s c_target``, target = source asks for no change of
    modality, and on a stylized input where the detector finds no face the model converts it to a
    photo to find one. It also sets the default target: a stylized input (a sketch, a cartoon) is
    mostly to be turned back into a photo, so it selects ``photo``; a photo input keeps the current one.
    """
    if source != "photo" and "photo" in modalities:
        return "photo"
    return current if current in modalities else modalities[0]


# --- landmark editing on the crop view ---------------------------------------------------------
@dataclass(frozen=True)
class LandmarkEdits:
    """Points moved by hand (crop pixels), the undo stack of earlier ``moves``, and a picked point."""

    moves: Mapping[int, Point] = field(default_factory=dict)
    undo_stack: tuple[Mapping[int, Point], ...] = ()
    picked: int | None = None

    def click(self, points: np.ndarray, xy: Point, radius: float) -> tuple[LandmarkEdits, str]:
        """The paper's two-click interface: the first click picks a landmark, the second moves it there.

        ``points`` are the current target landmarks (68, 2) and ``xy`` the click, both in crop
        pixels. Returns the new edits and a one-line status for the user.
        """
        if self.picked is None:
            index = nearest_landmark(points, xy, radius)
            if index is None:
                return self, "No landmark there: click on one of the dots first."
            return dataclasses.replace(self, picked=index), f"Point {index} picked: now click where it should go."
        moves = {**self.moves, self.picked: (float(xy[0]), float(xy[1]))}
        moved = LandmarkEdits(moves, (*self.undo_stack, dict(self.moves)), None)
        return moved, f"Point {self.picked} moved. Click another point, or undo."

    def undo(self) -> tuple[LandmarkEdits, str]:
        """Drop a pending pick, else restore the moves before the last one."""
        if self.picked is not None:
            return dataclasses.replace(self, picked=None), "Pick cancelled."
        if not self.undo_stack:
            return self, "Nothing to undo."
        return LandmarkEdits(self.undo_stack[-1], self.undo_stack[:-1], None), "Last move undone."


def nearest_landmark(points: np.ndarray, xy: Point, radius: float) -> int | None:
    """Index of the landmark closest to ``xy`` if it is within ``radius``, else None."""
    distances = np.hypot(*(np.asarray(points, dtype=np.float64) - np.asarray(xy, dtype=np.float64)).T)
    index = int(np.argmin(distances))
    return index if distances[index] <= radius else None


def crop_view_scale(crop_size: int) -> int:
    """Integer zoom of the whole-face crop view: a 256 px crop is shown at 512 px."""
    return max(1, -(-CROP_VIEW_MIN_SIZE // crop_size))


def view_to_crop(xy: Sequence[float], scale: float, offset: Sequence[float] = (0.0, 0.0)) -> Point:
    """A click on the crop view (pixel indices) -> crop pixels (integer = pixel centre).

    The view shows the crop from ``offset`` (crop pixels: the left and top edge of the part shown,
    ``(0, 0)`` for the whole crop) enlarged ``scale`` times (view pixels per crop pixel).
    """
    return (
        (xy[0] + 0.5) / scale - 0.5 + offset[0],
        (xy[1] + 0.5) / scale - 0.5 + offset[1],
    )


def crop_to_view(points: np.ndarray, scale: float, offset: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    """Inverse of :func:`view_to_crop`, for drawing crop-pixel points (``(N, 2)``) on the view."""
    return (np.asarray(points, dtype=np.float64) - np.asarray(offset, dtype=np.float64) + 0.5) * scale - 0.5


def portrait_view(view: str | None) -> bool:
    """Whether the result option ``view`` (one of :data:`VIEW_CHOICES`; None: the whole picture) asks
    for the portrait only; ValueError naming the choices for anything else."""
    if view is None or view == WHOLE_PICTURE:
        return False
    if view == PORTRAIT_ONLY:
        return True
    raise ValueError(f"the result shows one of {', '.join(repr(v) for v in VIEW_CHOICES)}, got {view!r}")


# --- the session ----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Session:
    """One photo being edited: the editor's prepared photo (faces detected once, the chosen face
    aligned), its reference photo and the hand-moved points."""

    prepared: PreparedPhoto
    name: str = "portrait"  # file stem, for the download's name
    reference: Image.Image | None = None  # a reference photo whose expression the face takes on
    edits: LandmarkEdits = field(default_factory=LandmarkEdits)
    last: Any = None  # the latest pipeline.ScreenEdit, from which the download is made

    @classmethod
    def start(cls, prepared: PreparedPhoto, name: str = "portrait") -> Session:
        """A session on the face ``prepared`` aligned (the largest, unless asked otherwise)."""
        return cls(prepared, name)

    @property
    def photo(self) -> Image.Image:
        return self.prepared.picture

    @property
    def faces(self) -> tuple[Face, ...]:
        return self.prepared.faces

    @property
    def face(self) -> int:
        return self.prepared.face

    @property
    def aligned(self) -> AlignedFace:
        return self.prepared.aligned

    @property
    def info(self) -> PhotoInfo:
        return self.prepared.info

    def with_face(self, prepared: PreparedPhoto) -> Session:
        """The same photo with another face aligned (``FaceEditor.choose_face``); hand-moved points
        belong to a face, so they go."""
        if prepared.face == self.face:
            return self
        return dataclasses.replace(self, prepared=prepared, edits=LandmarkEdits(), last=None)

    def with_last(self, rendered: Any) -> Session:
        """The same session with its latest render (a ``pipeline.ScreenEdit``) remembered for the download."""
        return dataclasses.replace(self, last=rendered)

    def with_edits(self, edits: LandmarkEdits) -> Session:
        return dataclasses.replace(self, edits=edits)

    def with_reference(self, reference: Image.Image | None) -> Session:
        return dataclasses.replace(self, reference=reference)

    def reset(self) -> Session:
        """Back to the photo as it is: no moved points, no reference (sliders are reset by the UI)."""
        return dataclasses.replace(self, reference=None, edits=LandmarkEdits(), last=None)


def face_choices(faces: Sequence[Face], photo_size: tuple[int, int]) -> list[tuple[str, int]]:
    """Labels for the face picker, largest face first: ``[("face 1 (largest)", 0), ("face 2 (left)", 1)]``.

    Other faces are named by where they are in the photo (``photo_size`` = width, height), by
    thirds: ``left``, ``centre``, ``right``, with ``upper`` / ``lower`` when not in the middle band.
    """
    width, height = photo_size
    labels = []
    for index, face in enumerate(faces):
        if index == 0:
            labels.append(("face 1 (largest)", 0))
            continue
        left, top, right, bottom = face.box
        x, y = (left + right) / 2 / max(width, 1), (top + bottom) / 2 / max(height, 1)
        across = "left" if x < 1 / 3 else "right" if x > 2 / 3 else "centre"
        down = "upper " if y < 1 / 3 else "lower " if y > 2 / 3 else ""
        labels.append((f"face {index + 1} ({down}{across})", index))
    return labels
