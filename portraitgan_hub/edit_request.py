"""``EditRequest``: every option of one edit, in one frozen, typed object that checks itself once.

The library (``PortraitGAN.edit``, ``edit_many``), the CLI, the app's handlers and API, the plugin and
the evaluation all build one and hand it to the one editor (:class:`portraitgan_hub.editor.FaceEditor`).
Everything that can be checked without the model is checked on construction; the modality names,
which only the model knows, by :meth:`EditRequest.check_modalities`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from portraitgan_hub.config import PortraitGANConfig
from portraitgan_hub.faces.expressions import (
    ExpressionControls,
    check_reference_strength,
    move_points,
    reference_part_indices,
)
from portraitgan_hub.faces.image_io import ImageSource, check_image_source
from portraitgan_hub.faces.landmarks import check_landmarks, check_min_face

if TYPE_CHECKING:
    from PIL import Image

#: What an edit returns: the whole picture at its own size, the edited aligned crop at the model's
#: size, or the aligned portrait at twice the model's size (the paper's 512 px square for ``lite``).
OUTPUTS = ("photo", "crop", "portrait")

Point = tuple[float, float]
#: Older spellings of ``output`` that :meth:`EditRequest.from_options` still takes.
LEGACY_OPTIONS = frozenset({"paste_back", "portrait"})


@dataclass(frozen=True, eq=False)
class EditRequest:
    """One edit of one face.

    - ``modality``: the target modality, a name or an index (None: the model's first, ``photo``).
    - ``input_modality``: what the input is (None: the model's first); on a stylized input where the
      detector finds no face, the editor converts the picture to a photo to find it.
    - ``modality_strength`` in [0, 1]: G is conditioned on ``(1 - s) c_input + s c_target``.
    - ``face``: which face, 0 = the largest. ``min_face``: the smallest face to search for (box side,
      photo pixels; None: as small as the detection budget allows).
    - ``controls``: the expression sliders (:class:`ExpressionControls`, each 0 = no change).
    - ``reference``: a photo whose expression the face takes on, scaled by ``reference_strength``
      (0..1.5) and limited to ``reference_parts`` (``"eyes"``, ``"brows"``, ``"mouth"``, ``"all"`` or
      a list of them).
    - ``landmarks``: explicit target points in **photo pixels**, ``(68, 2)``; given as ``(N, 68, 2)``
      (N faces, as ``portraitgan landmarks`` writes them), face ``face``'s points are taken.
    - ``moves``: single points moved by hand, ``{index: (x, y)}`` in **crop pixels**.
    - ``output``: one of :data:`OUTPUTS`.

    Raises ``TypeError`` / ``ValueError`` naming the first bad option.
    """

    modality: str | int | None = None
    input_modality: str | int | None = None
    modality_strength: float = 1.0
    face: int = 0
    min_face: int | None = None
    controls: ExpressionControls = field(default_factory=ExpressionControls)
    reference: ImageSource | None = None
    reference_strength: float = 1.0
    reference_parts: str | tuple[str, ...] = "all"
    landmarks: np.ndarray | None = None
    moves: Mapping[int, Point] | None = field(default_factory=dict)
    output: str = "photo"

    def __post_init__(self) -> None:
        face = self.face
        if isinstance(face, bool) or not isinstance(face, (int, np.integer)):
            raise TypeError(f"face must be an int (0 = the largest face), got {type(face).__name__} {face!r}")
        if face < 0:
            raise ValueError(f"face must be 0 or more (0 = the largest face), got {face}")
        object.__setattr__(self, "face", int(face))
        for name in ("modality", "input_modality"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
                raise TypeError(f"{name} must be a name or an index, got {type(value).__name__} {value!r}")
        object.__setattr__(self, "modality_strength", check_modality_strength(self.modality_strength))
        object.__setattr__(self, "min_face", check_min_face(self.min_face))
        if not isinstance(self.controls, ExpressionControls):
            raise TypeError(f"controls must be ExpressionControls, got {type(self.controls).__name__}")
        if self.reference is not None:
            check_image_source(self.reference, "reference")
        object.__setattr__(self, "reference_strength", check_reference_strength(self.reference_strength))
        parts = self.reference_parts if isinstance(self.reference_parts, str) else tuple(self.reference_parts)
        reference_part_indices(parts)
        object.__setattr__(self, "reference_parts", parts)
        if self.landmarks is not None:  # kept whole: replace(face=...) takes another face's points
            select_target_landmarks(self.landmarks, self.face)
            object.__setattr__(self, "landmarks", np.asarray(self.landmarks, np.float64))
        if self.moves is None:
            object.__setattr__(self, "moves", {})
        if not isinstance(self.moves, Mapping):
            raise TypeError(f"moves must be a mapping {{index: (x, y)}}, got {type(self.moves).__name__}")
        move_points(np.zeros((68, 2)), self.moves)  # indices 0..67, finite positions: ValueError
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {self.output!r}")

    @classmethod
    def from_options(cls, **options: Any) -> EditRequest:
        """A request from keyword options: the fields above, the expression controls by name
        (``smile=0.5``, ...; see ``faces.expressions.CONTROL_RANGES``), and the older spellings of
        ``output``: ``paste_back=False`` (the crop) and ``portrait=True``. Any other name is taken for
        an expression control: an unknown one is a ``ValueError`` listing the valid ones."""
        fields = {f.name for f in dataclasses.fields(cls)}
        # Every other name is an expression control: ExpressionControls names an unknown one.
        controls = {name: options.pop(name) for name in list(options) if name not in fields | LEGACY_OPTIONS}
        paste_back, portrait = options.pop("paste_back", True), options.pop("portrait", False)
        for name, value in (("paste_back", paste_back), ("portrait", portrait)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
        if "controls" in options and controls:
            raise ValueError("give the expression either as controls= or by name, not both")
        if "controls" not in options:
            options["controls"] = ExpressionControls.from_dict(controls)
        if "output" in options and (portrait or not paste_back):
            raise ValueError("give output= or the older paste_back= / portrait=, not both")
        if portrait and not paste_back:
            raise ValueError("portrait=True and paste_back=False ask for two outputs: give output='portrait' or 'crop'")
        if "output" not in options:
            options["output"] = "portrait" if portrait else "photo" if paste_back else "crop"
        return cls(**options)

    def replace(self, **changes: Any) -> EditRequest:
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)

    def check_modalities(self, config: PortraitGANConfig) -> None:
        """``ValueError`` naming a modality that ``config`` does not have, and the valid ones."""
        for value in (self.modality, self.input_modality):
            if value is not None:
                config.modality_index(value)


def check_modality_strength(strength: object) -> float:
    """``modality_strength`` as a float in [0, 1]; ``TypeError``/``ValueError`` naming it otherwise."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.integer, np.floating)):
        raise TypeError(f"modality_strength must be a number in [0, 1], got {type(strength).__name__} {strength!r}")
    if not 0.0 <= float(strength) <= 1.0:
        raise ValueError(
            f"modality_strength must be in [0, 1] (0 = the input's modality, 1 = the full target), got {strength}"
        )
    return float(strength)


def select_target_landmarks(landmarks: object, face: int) -> np.ndarray:
    """The ``(68, 2)`` target points for face number ``face`` from ``landmarks`` (photo pixels).

    ``landmarks``: ``(68, 2)`` points, or ``(N, 68, 2)`` points of N faces (largest first, as
    ``portraitgan landmarks`` writes them), of which face ``face`` is taken. Raises ``TypeError``
    for what is not an array of numbers, ``ValueError`` naming ``landmarks`` for another shape, for
    non-finite values, or when face ``face`` is not there.
    """
    try:
        points = np.asarray(landmarks, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"landmarks must be an array of (68, 2) points, got {type(landmarks).__name__}") from None
    if points.ndim == 3:
        if not 0 <= face < points.shape[0]:
            raise ValueError(f"landmarks hold {points.shape[0]} face(s), so there are no points for face {face}")
        points = points[face]
    return check_landmarks(points, "target")


@dataclass(frozen=True)
class EditOutcome:
    """One photo of :meth:`~portraitgan_hub.editor.FaceEditor.edit_many`: ``image`` on success, else the
    ``error``; ``warnings``: the text of each ``UserWarning`` the edit of this photo emitted."""

    source: ImageSource
    image: Image.Image | None
    error: Exception | None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the photo was edited."""
        return self.error is None


def as_request(request: EditRequest | None, options: dict[str, Any]) -> EditRequest:
    """``request``, or one built from keyword ``options``; ``TypeError`` when both or a non-request is given."""
    if request is None:
        return EditRequest.from_options(**options)
    if not isinstance(request, EditRequest):
        raise TypeError(f"request must be an EditRequest, got {type(request).__name__}")
    if options:
        raise TypeError(f"give the edit as request= or as options, not both (got {', '.join(sorted(options))})")
    return request
