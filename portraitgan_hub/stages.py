"""The stages of one face edit, each a plain function that a test can call alone.

photo -> faces -> landmarks (:func:`align_face`) -> edited landmarks (:func:`target_landmarks`) ->
flow and map -> G (:func:`render`). The full-resolution composition is :mod:`portraitgan_hub.composition`
and the editor that strings the stages together is :class:`portraitgan_hub.editor.FaceEditor`.

Coordinate frames: *photo pixels* are the input picture's pixel indices; *crop pixels* are those of
the model's aligned square crop (``config.image_size``), reached by ``AlignedFace.alignment``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from portraitgan_hub.composition import blend, match_drawn_colour
from portraitgan_hub.condition import condition_vector, modality_change
from portraitgan_hub.edit_region import limit_to_edit_region
from portraitgan_hub.edit_request import check_modality_strength
from portraitgan_hub.eyelids import LidClosing, closing_eyes, lid_region, open_targets
from portraitgan_hub.faces.alignment import DEFAULT_FEATHER, DEFAULT_MARGIN, Alignment, estimate_alignment, warp_to_crop
from portraitgan_hub.faces.expressions import ExpressionControls, move_points, transfer_expression
from portraitgan_hub.faces.landmark_map import draw_landmark_map
from portraitgan_hub.faces.landmarks import NUM_LANDMARKS, Face, check_landmarks
from portraitgan_hub.flow_falloff import faded_flow, flow_falloff, neighbour_falloff
from portraitgan_hub.image_tensors import pil_to_tensor, tensor_to_pil
from portraitgan_hub.thin_plate_spline import landmark_displacement

if TYPE_CHECKING:
    from portraitgan_hub.model import PortraitGAN


@dataclass(frozen=True)
class AlignedFace:
    """One face of one photo, aligned to the model's canonical crop."""

    photo: Image.Image  # the full-resolution RGB photo
    face: Face  # its detection, in photo pixels
    alignment: Alignment  # photo pixels -> crop pixels
    crop: Image.Image  # the aligned crop the generator sees
    landmarks: np.ndarray  # (68, 2) landmarks in crop pixels


def align_face(photo: Image.Image, face: Face, crop_size: int, margin: float = DEFAULT_MARGIN) -> AlignedFace:
    """Of the editor's stage 1: the canonical crop of one detected face, and its landmarks in crop pixels."""
    alignment = estimate_alignment(face.landmarks, crop_size, margin)
    return AlignedFace(photo, face, alignment, warp_to_crop(photo, alignment), alignment.to_crop(face.landmarks))


def target_landmarks(aligned: AlignedFace, controls: ExpressionControls | None = None, **options: Any) -> np.ndarray:
    """Of stage 2 (plan): the edited landmarks, (68, 2) float32 in crop pixels: :func:`edited_landmarks` without
    its flag (the same keyword ``options``, the same errors)."""
    return edited_landmarks(aligned, controls, **options)[0]


def edited_landmarks(
    aligned: AlignedFace,
    controls: ExpressionControls | None = None,
    *,
    reference: np.ndarray | None = None,
    landmarks: np.ndarray | None = None,
    moves: Mapping[int, tuple[float, float]] | None = None,
    reference_strength: float = 1.0,
    reference_parts: str | Sequence[str] = "all",
) -> tuple[np.ndarray, bool]:
    """Of stage 2 (plan): the edited landmarks, (68, 2) float32 in crop pixels, and whether the expression
    controls reached their combined limit (:func:`limit_expression`).

    Start from ``landmarks`` (explicit target points in photo pixels) if given, else from the face's
    own; take on the expression of ``reference`` (a reference face's landmarks in crop pixels) if
    given, scaled by ``reference_strength`` (0..1.5) and limited to ``reference_parts`` (``"eyes"``,
    ``"brows"``, ``"mouth"``, ``"all"`` or a list; see ``transfer_expression``); then apply the
    expression ``controls``; then move single points (``moves`` in crop pixels). Raises ValueError
    for a strength out of range or an unknown part. Explicit ``landmarks`` that lie mostly outside
    this face's crop are a ``ValueError`` (they were found on another face or another photo).
    The controls together may move the points only so far (:func:`limit_expression`); the
    reference and the single moves are the user's own points and are not limited.
    """
    points, limited = aligned.landmarks, False
    if landmarks is not None:
        points = aligned.alignment.to_crop(check_landmarks(landmarks, "target"))
        check_inside_crop(points, aligned)
    if reference is not None:
        points = transfer_expression(points, reference, strength=reference_strength, parts=reference_parts)
    if controls is not None:
        points, limited = limit_expression(points, controls.apply(points))
    if moves:
        points = move_points(points, moves)
    return np.asarray(points, dtype=np.float32), limited


#: How far the expression controls together may move any landmark beyond a similarity transform
#: (rotation, scale, shift: ``roll`` is free), as a share of the landmark box's longer side. Each
#: control alone stays under it at the end of its range (the largest, ``mouth_open=1.5``, moves the
#: inner lip 0.143; measured on London 001); every control at its maximum asks for 0.65, which tears
#: the face (a lip into the nose, the neck cut).
EXPRESSION_LIMIT = 0.18


def limit_expression(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, bool]:
    """``after`` (68, 2) with its non-rigid move from ``before`` scaled down, if need be, so that no
    point moves more than :data:`EXPRESSION_LIMIT` of the landmark box beyond the similarity transform
    that best maps ``before`` onto ``after`` (Umeyama's least squares; the rigid part, e.g. a head
    roll, is kept whole). Returns the points and whether they were scaled. Both in the same frame."""
    before, after = np.asarray(before, np.float64), np.asarray(after, np.float64)
    centre_b, centre_a = before.mean(axis=0), after.mean(axis=0)
    b, a = before - centre_b, after - centre_a
    u, singular, vt = np.linalg.svd(a.T @ b)
    reflect = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ reflect @ vt
    scale = (singular * np.diag(reflect)).sum() / max((b**2).sum(), 1e-12)
    rigid = scale * b @ rotation.T + centre_a
    residual = after - rigid
    largest = float(np.linalg.norm(residual, axis=1).max())
    allowed = EXPRESSION_LIMIT * float(np.ptp(before, axis=0).max())
    if largest <= allowed:
        return after, False
    return rigid + residual * (allowed / largest), True


#: Explicit target landmarks are refused when fewer than this share of them fall inside the crop.
MIN_INSIDE_SHARE = 0.5


def check_inside_crop(points: np.ndarray, aligned: AlignedFace) -> None:
    """``ValueError`` unless most target ``points`` (crop pixels) lie inside the crop of ``aligned``."""
    size = aligned.alignment.crop_size
    inside = int(((points >= 0) & (points < size)).all(axis=1).sum())
    if inside < MIN_INSIDE_SHARE * NUM_LANDMARKS:
        raise ValueError(
            f"landmarks: only {inside} of {NUM_LANDMARKS} target points lie inside the crop of the face being "
            f"edited (box {aligned.face.box} in photo pixels): they belong to another face or another photo. "
            "Give the points of this face (with several faces, choose it with face= / --face)"
        )


@dataclass(frozen=True)
class Rendering:
    """What G made of one aligned face (stage 3), everything in the crop's frame.

    ``crop``: G's output image at the model's size. ``colour``: its tanh colour C, (1, 3, S, S) in
    [-1, 1]. ``mask``: the blend mask A, (1, 1, S, S) in [0, 1], or None for a G that draws every pixel.
    ``displacement``: the warp's coarse flow, (1, 2, g, g) in normalised crop units (see
    :mod:`portraitgan_hub.thin_plate_spline`), or None when G does not warp. ``lids``: the closing
    eyes, whose lid warp (:mod:`portraitgan_hub.eyelids`) the composition applies before the flow.
    """

    crop: Image.Image
    colour: torch.Tensor
    mask: torch.Tensor | None
    displacement: torch.Tensor | None
    lids: tuple[LidClosing, ...] = ()


def input_index(model: PortraitGAN, input_modality: str | int | None = None) -> int:
    """Index of the edit's input modality (None: the model's first, usually ``photo``); ValueError if unknown."""
    config = model.config
    return config.modality_index(config.modalities[0] if input_modality is None else input_modality)


def modality_condition(
    model: PortraitGAN,
    modality: str | int | None = None,
    input_modality: str | int | None = None,
    strength: float = 1.0,
) -> torch.Tensor:
    """The attribute vector c of an edit, (1, n) float32: ``(1 - strength) e_input + strength e_target``.

    ``modality``/``input_modality``: names or indices (None: the model's first, usually ``photo``).
    ``strength`` in [0, 1]: 0 keeps the input's modality, 1 is the full target modality (the paper's
    continuous conditioning, Sec. 3.2, applied to c; the demo model was trained on such mixtures).
    Raises ``ValueError`` for an unknown modality or a strength outside [0, 1], ``TypeError`` for a
    strength that is not a number.
    """
    config = model.config
    target = config.modality_index(config.modalities[0] if modality is None else modality)
    source = input_index(model, input_modality)
    strength = check_modality_strength(strength)
    source_c, target_c = condition_vector(torch.tensor([source, target]), config.num_modalities)
    return ((1.0 - strength) * source_c + strength * target_c)[None]


def render(
    model: PortraitGAN,
    aligned: AlignedFace,
    landmarks: np.ndarray,
    modality: str | int | torch.Tensor,
    input_modality: str | int | None = None,
    limit_region: bool = True,
    others: Sequence[np.ndarray] = (),
    feather: float = DEFAULT_FEATHER,
) -> Rendering:
    """Stage 3 (render): the landmark map L and (warp-guided G) the source -> target flow, then G(crop | L, c).

    ``landmarks``: the (68, 2) target points in crop pixels (:func:`target_landmarks`). ``modality``:
    the target modality's name or index, or a (1, n) condition from :func:`modality_condition`.
    ``input_modality``: the crop's own modality (None: the model's first, usually ``photo``).
    ``limit_region``: give a warp-guided G trained without the edit region the editor's narrower
    limit (:func:`~portraitgan_hub.edit_region.limit_to_edit_region`); False shows G's own mask
    (the evaluation's no-op fidelity, which measures G's re-rendering of an unchanged face).
    ``others``: the (68, 2) landmarks of the photo's other faces, in this crop's pixels. The flow the
    composition applies is weighted by :func:`~portraitgan_hub.flow_falloff.flow_falloff`: it stays
    off the neck, the composition's ``feather`` ramp (a share of the crop's side) and those faces.
    """
    size = model.config.image_size
    landmark_map = torch.from_numpy(draw_landmark_map(landmarks, size, model.config.landmark_line_width))
    source_index = input_index(model, input_modality)
    result = model.infer(
        pil_to_tensor(aligned.crop),
        landmark_map[None, None],
        modality,
        aligned.landmarks,
        landmarks,
        source_modality=source_index,
    )
    mask, image = result.mask, result.images[0]
    source = torch.tensor([source_index])
    change = modality_change(source, model._modality_indices(modality, 1).cpu(), model.config.num_modalities)
    change = change if mask is None else change.to(mask.device)
    if limit_region and mask is not None and result.guidance is not None and not model.config.edit_region:
        # A warp-guided G trained without the edit region gets its limit here (edit_region.py).
        points = [torch.from_numpy(np.float32(p))[None].to(mask.device) for p in (aligned.landmarks, landmarks)]
        mask = limit_to_edit_region(mask, *points, change, result.guidance.hallucination)
        image = blend(mask, result.base, result.colour)
    colour = result.colour
    if limit_region and mask is not None and float(change.max()) == 0.0:  # an expression edit
        colour = match_drawn_colour(colour, result.base, mask)  # what G draws, in the photo's light
        image = blend(mask, result.base, colour)
    warps = result.guidance is not None and result.guidance.displacement is not None
    lids = closing_eyes(aligned.landmarks, landmarks) if warps else ()
    if lids and limit_region and mask is not None:
        # The lid warp alone closes an eye (eyelids.lid_region); as much less as the modality changes,
        # since a conversion's G draws every pixel.
        region = lid_region(lids, *mask.shape[-2:]).to(mask) * (1 - change.to(mask).view(-1, 1, 1, 1))
        mask = 1 - (1 - mask) * (1 - region)
        image = blend(mask, result.base, colour)
    mask = None if mask is None else mask.float().cpu()
    displacement = None
    if warps:
        displacement = result.guidance.displacement.float().cpu()
        if lids:  # the flow keeps the eyes open; the lid warp closes them (eyelids.py)
            points = [torch.from_numpy(np.float32(p))[None] for p in (aligned.landmarks, open_targets(landmarks, lids))]
            displacement = landmark_displacement(*points, size, size, displacement.shape[-1])
        grid = displacement.shape[-1]
        falloff = flow_falloff(aligned.landmarks, landmarks, size, grid, feather)
        displacement = faded_flow(displacement, falloff, neighbour_falloff(others, size, grid))
    return Rendering(tensor_to_pil(image)[0], colour.float().cpu(), mask, displacement, lids)


def changes_modality(condition: torch.Tensor, input_index: int) -> bool:
    """Whether a (1, n) condition asks for anything but the input's own modality."""
    expected = torch.zeros_like(condition)
    expected[..., input_index] = 1.0
    return not torch.allclose(condition, expected, atol=1e-6)


def is_no_op(
    aligned: AlignedFace,
    landmarks: np.ndarray,
    modality: str | int | torch.Tensor,
    model: PortraitGAN,
    input_modality: str | int | None = None,
) -> bool:
    """Whether an edit asks for nothing: the face's own landmarks and the input's modality.

    ``modality``: the target's name or index, or a (1, n) condition (:func:`modality_condition`).
    The editor then returns the photo as it is rather than a re-rendering of it.
    """
    same_points = np.allclose(np.asarray(landmarks, np.float64), aligned.landmarks, atol=1e-3)
    if not same_points:
        return False
    source = input_index(model, input_modality)
    if isinstance(modality, torch.Tensor):
        return not changes_modality(modality, source)
    return model.config.modality_index(modality) == source
