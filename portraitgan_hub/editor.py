"""The one editor: the library, the CLI, the app, the plugin and the evaluation all call it.

An edit is four stage methods of :class:`FaceEditor`, each callable and testable alone:

1. :meth:`~FaceEditor.prepare`: load the photo, find its faces (cached per photo), align the chosen
   face (for a stylized input where no face is found, through the model's own cycle);
2. :meth:`~FaceEditor.plan`: the target landmarks, G's condition c, whether the edit changes
   modality and whether it asks for nothing at all;
3. :meth:`~FaceEditor.render`: G on the aligned face (:func:`portraitgan_hub.stages.render`);
4. :meth:`~FaceEditor.compose`: the result at full size, or at a preview size, as the whole
   picture, the crop or the portrait.

:meth:`~FaceEditor.edit` is these four calls; the app's preview, download and animation frames are
the same calls at another size.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from portraitgan_hub.composition import (
    compose,
    downscaled,
    finish_colours,
    portrait_crop,
    remove_achromatic_share,
    scaled_alignment,
)
from portraitgan_hub.conversion import convert_picture
from portraitgan_hub.edit_plan import EditPlan, PreparedPhoto
from portraitgan_hub.edit_request import EditOutcome, EditRequest, as_request, select_target_landmarks
from portraitgan_hub.edit_warnings import PoorResultWarning, draws_on, face_side_px, plan_notes, warp_only
from portraitgan_hub.errors import PortraitGANError
from portraitgan_hub.faces.alignment import DEFAULT_FEATHER, DEFAULT_MARGIN, Alignment, warp_to_crop
from portraitgan_hub.faces.expressions import interpolate
from portraitgan_hub.faces.image_io import (
    ImageSource,
    check_image_source,
    load_image,
    load_photo,
    restore_photo_info,
    source_name,
)
from portraitgan_hub.faces.landmarks import Face, LandmarkDetector, check_min_face, default_detector, select_face
from portraitgan_hub.picture_cache import PictureCache, photo_key
from portraitgan_hub.stages import (
    AlignedFace,
    Rendering,
    align_face,
    changes_modality,
    edited_landmarks,
    input_index,
    is_no_op,
    modality_condition,
    render,
)

if TYPE_CHECKING:
    from portraitgan_hub.model import PortraitGAN

#: Face sizes, as a share of the picture's shorter side, at which :meth:`FaceEditor.faces_via_cycle`
#: converts a stylized picture to a photo to find its face (portraits first).
CYCLE_FACE_SHARES = (0.45, 0.25)
#: The warning when the expression controls together reach ``stages.EXPRESSION_LIMIT``.
LIMIT_REACHED = "the expression controls together move the face further than it can follow: scaled back to the limit"


class FaceEditor:
    """Edits faces in photos with one model; remembers the faces of the last few photos it saw."""

    def __init__(
        self,
        model: PortraitGAN,
        detector: LandmarkDetector | None = None,
        margin: float = DEFAULT_MARGIN,
        feather: float = DEFAULT_FEATHER,
        cache_size: int = 8,
    ) -> None:
        self.model = model
        self.detector = detector
        self.margin = margin
        self.feather = feather
        self._faces = PictureCache(keep=cache_size)  # thread-safe: one editor serves several threads
        self.converted = PictureCache(keep=4)  # whole photos converted to another modality
        self._copies = PictureCache(keep=4)  # photos downscaled for previews

    # --- stage 1 -----------------------------------------------------------------------------------
    def faces(self, photo: Image.Image, min_face: int | None = None) -> list[Face]:
        """All faces of ``photo`` (RGB), largest first, in photo pixels; detected once per distinct
        photo and ``min_face`` (the smallest face to search for, px; see ``LandmarkDetector.detect``)."""
        return self._detect(photo, photo_key(photo), min_face)

    def _detect(self, photo: Image.Image, digest: str, min_face: int | None) -> list[Face]:
        min_face = check_min_face(min_face)
        detect = lambda: (self.detector or default_detector()).detect(photo, min_face)  # noqa: E731
        return self._faces.get(f"{digest}/{min_face}", detect)  # a list that knows its search

    @property
    def detections(self) -> int:
        """How many times a detector actually ran (cache misses)."""
        return self._faces.made

    def prepare(self, photo: ImageSource, request: EditRequest | None = None) -> PreparedPhoto:
        """Stage 1: load ``photo`` (a path, bytes, file object, PIL image or uint8 array), find its
        faces and align face ``request.face``. An animated input is read at frame 0, with a
        ``UserWarning``. For a stylized ``request.input_modality`` where the detector finds no face,
        the faces found on the picture converted to a photo by G are used (:meth:`faces_via_cycle`).
        Raises ``ImageLoadError``, ``NoFaceError`` (naming the smallest face searched for) or
        ``FaceIndexError``."""
        request = request or EditRequest()
        picture, info = load_photo(photo)
        name = source_name(photo)
        if info.frames > 1:
            warnings.warn(
                f"{name} has {info.frames} frames: only frame 0 was edited, "
                f"the other {info.frames - 1} are dropped from the result",
                UserWarning,
                stacklevel=3,
            )
        key = photo_key(picture)
        found = self._detect(picture, key, request.min_face)
        stylized = request.input_modality is not None and input_index(self.model, request.input_modality) != 0
        if not found and stylized:
            found = self.faces_via_cycle(picture, request.input_modality, request.min_face)
        chosen = select_face(found, request.face, name)
        aligned = align_face(picture, chosen, self.model.config.image_size, self.margin)
        return PreparedPhoto(picture, info, name, key, tuple(found), request.face, aligned)

    def choose_face(self, prepared: PreparedPhoto, face: int) -> PreparedPhoto:
        """``prepared`` with face number ``face`` (0 = largest) aligned instead; ``FaceIndexError``."""
        if face == prepared.face:
            return prepared
        chosen = select_face(list(prepared.faces), face, prepared.name)
        aligned = align_face(prepared.picture, chosen, self.model.config.image_size, self.margin)
        return dataclasses.replace(prepared, face=face, aligned=aligned)

    def align(self, photo: ImageSource, face: int = 0, min_face: int | None = None) -> AlignedFace:
        """Stage 1's aligned face alone: face number ``face`` (0 = largest) of ``photo``."""
        return self.prepare(photo, EditRequest(face=face, min_face=min_face)).aligned

    def faces_via_cycle(
        self, picture: Image.Image, input_modality: str | int, min_face: int | None = None
    ) -> list[Face]:
        """Faces of a stylized picture found through the model's own cycle: G converts the whole
        picture from ``input_modality`` to a photo (:func:`convert_picture`, no landmarks) and the
        detector runs on that; the paper notes that its model lets landmarks be extracted on other
        modalities this way. The face's scale is unknown before detection, so G runs at the scales
        of :data:`CYCLE_FACE_SHARES` until a face is found; returns [] when none is. The faces'
        coordinates are the picture's."""
        config = self.model.config
        condition = modality_condition(self.model, config.modalities[0], input_modality, 1.0)
        # The aligned crop's landmark box spans 1 / (1 + 2 * margin) of the crop (faces.alignment).
        face_in_crop = config.image_size / (1.0 + 2.0 * self.margin)
        for share in CYCLE_FACE_SHARES:
            scale = face_in_crop / (share * min(picture.size))
            as_photo = convert_picture(self.model, picture, scale, condition, None, input_modality)
            found = self.faces(as_photo, min_face)
            if found:
                return found
        return []

    def reference_face(self, reference: ImageSource, min_face: int | None = None) -> AlignedFace:
        """The largest face of a reference photo, aligned; ``NoFaceError`` naming the reference."""
        picture = load_image(reference)
        chosen = select_face(self.faces(picture, min_face), 0, f"the reference photo {source_name(reference)}")
        return align_face(picture, chosen, self.model.config.image_size, self.margin)

    def reference_landmarks(self, reference: ImageSource, min_face: int | None = None) -> np.ndarray:
        """The (68, 2) landmarks of the largest face of a reference photo, in crop pixels."""
        return self.reference_face(reference, min_face).landmarks

    # --- stages 2 and 3 ----------------------------------------------------------------------------
    def plan(self, prepared: PreparedPhoto, request: EditRequest) -> EditPlan:
        """Stage 2: the target landmarks (explicit points, then reference, then controls, then moves;
        :func:`~portraitgan_hub.stages.target_landmarks`) and G's condition c. Raises ``ValueError``
        for an unknown modality or explicit landmarks of another face, and what :meth:`prepare`
        raises for the reference photo. Where the result will be poor, a ``PoorResultWarning`` each
        (:func:`~portraitgan_hub.edit_warnings.plan_notes`); a face too small to draw on is edited by
        the warp alone."""
        model = self.model
        request.check_modalities(model.config)
        condition = modality_condition(model, request.modality, request.input_modality, request.modality_strength)
        source = input_index(model, request.input_modality)
        reference = reference_face = None
        if request.reference is not None:
            reference_face = self.reference_face(request.reference, request.min_face)
            reference = reference_face.landmarks
        target, limited = edited_landmarks(
            prepared.aligned,
            request.controls,
            reference=reference,
            landmarks=None if request.landmarks is None else select_target_landmarks(request.landmarks, request.face),
            moves=request.moves,
            reference_strength=request.reference_strength,
            reference_parts=request.reference_parts,
        )
        if limited:
            warnings.warn(LIMIT_REACHED, UserWarning, stacklevel=2)
        no_op = is_no_op(prepared.aligned, target, condition, model, source)
        converts = changes_modality(condition, source)
        notes = plan_notes(model.config, prepared, request, self.margin, target, converts, no_op, reference_face)
        for note in notes:
            warnings.warn(note, PoorResultWarning, stacklevel=2)
        warp_alone = not draws_on(face_side_px(prepared.aligned.alignment, self.margin))
        return EditPlan(target, condition, source, converts, no_op, warp_alone, (LIMIT_REACHED,) * limited + notes)

    def in_between(self, prepared: PreparedPhoto, plan: EditPlan, t: float) -> EditPlan:
        """An animation's frame at ``t`` in [0, 1]: the landmarks interpolated linearly from the face's
        own (0) to ``plan``'s target (1), with ``plan``'s condition; rendered even where unchanged."""
        target = interpolate(prepared.aligned.landmarks, plan.target, float(t))
        return dataclasses.replace(plan, target=np.asarray(target, np.float32), no_op=False)

    def render(self, prepared: PreparedPhoto, plan: EditPlan) -> Rendering | None:
        """Stage 3: G on the aligned face (map, flow, G at the model's size); None for a no-op. With
        ``plan.warp_only`` G's colour is not used (:func:`~portraitgan_hub.edit_warnings.warp_only`)."""
        if plan.no_op:
            return None
        to_crop = prepared.aligned.alignment.to_crop
        others = [to_crop(face.landmarks) for index, face in enumerate(prepared.faces) if index != prepared.face]
        rendering = render(
            self.model, prepared.aligned, plan.target, plan.condition, plan.source, others=others, feather=self.feather
        )
        return warp_only(rendering, prepared.aligned.crop, self.feather) if plan.warp_only else rendering

    # --- stage 4 -----------------------------------------------------------------------------------
    def compose(
        self,
        prepared: PreparedPhoto,
        plan: EditPlan,
        rendering: Rendering | None,
        output: str = "photo",
        max_side: int | None = None,
    ) -> Image.Image:
        """Stage 4: the result as ``output`` (one of ``edit_request.OUTPUTS``).

        ``photo``: the whole picture, the face composed in at full resolution (on the picture
        converted whole for a change of modality), in the input's mode with its alpha, ICC profile
        and EXIF; with ``max_side``, an RGB preview whose longest side is at most that many pixels.
        ``portrait``: the aligned portrait at twice the model's size (with ``max_side``, composed on
        a copy just large enough for it). ``crop``: the edited aligned crop at the model's size (for a
        warp-guided G, cut from the composed picture).
        """
        aligned = prepared.aligned
        if output == "crop":
            if rendering is None:
                return aligned.crop.copy()
            if rendering.displacement is None and not (plan.warp_only and plan.converts):
                return remove_achromatic_share(rendering.crop, self.model, plan.condition)
            # A warp-guided G's crop is cut from the composition below: the lid warp and the flow's
            # falloff are there, not in G's own crop.
        if max_side is not None and output == "portrait":
            max_side = self._portrait_side(prepared)
        picture, alignment = self.at_size(prepared, max_side)
        if rendering is None:
            result = picture.copy()
        else:
            background = self.converted_picture(prepared, plan, picture, alignment)
            if plan.warp_only and background is not None:  # a small face: the converted picture is warped
                result = compose(background, alignment, rendering, self.feather)
            else:
                result = compose(picture, alignment, rendering, self.feather, background)
        result = finish_colours(result, picture, self.model, plan.condition, plan.converts)
        if output == "crop":
            return warp_to_crop(result, alignment)
        if output == "portrait":
            portrait = portrait_crop(result, alignment)
            if prepared.info.icc_profile:
                portrait.info["icc_profile"] = prepared.info.icc_profile
            return portrait
        return restore_photo_info(result, prepared.info) if max_side is None else result

    def unedited(self, prepared: PreparedPhoto, output: str = "photo", max_side: int | None = None) -> Image.Image:
        """The input as :meth:`compose` would show it with nothing edited (a "before" picture):
        ``output`` and ``max_side`` as there, RGB."""
        if output == "crop":
            return prepared.aligned.crop.copy()
        if max_side is not None and output == "portrait":
            max_side = self._portrait_side(prepared)
        picture, alignment = self.at_size(prepared, max_side)
        return portrait_crop(picture, alignment) if output == "portrait" else picture.copy()

    @staticmethod
    def _portrait_side(prepared: PreparedPhoto) -> int:
        """The photo's long side at which a portrait (twice the model's size) loses nothing: a
        portrait pixel is 1 / (2 * scale) photo pixels."""
        scale = prepared.aligned.alignment.scale
        return int(np.ceil(max(prepared.picture.size) * min(1.0, 2.0 * scale)))

    def at_size(self, prepared: PreparedPhoto, max_side: int | None) -> tuple[Image.Image, Alignment]:
        """The photo with its longest side at most ``max_side`` px (None: as it is; copies are
        cached) and the chosen face's alignment in it."""
        if max_side is None or max_side >= max(prepared.picture.size):
            return prepared.picture, prepared.aligned.alignment
        picture, factor = self._copies.get((prepared.key, max_side), lambda: downscaled(prepared.picture, max_side))
        return picture, scaled_alignment(prepared.aligned.alignment, factor)

    def converted_picture(
        self, prepared: PreparedPhoto, plan: EditPlan, picture: Image.Image, alignment: Alignment
    ) -> Image.Image | None:
        """``picture`` (the photo at some size; ``alignment``: its face's there) converted whole by G
        to ``plan``'s condition, at the face's scale with the face's own landmarks; None when the edit
        keeps the input's modality. Cached per photo, size, face and condition: an expression edit
        reuses it."""
        if not plan.converts:
            return None
        condition = tuple(round(float(v), 6) for v in plan.condition.flatten())
        key = (prepared.key, picture.size, prepared.aligned.alignment.matrix.tobytes(), plan.source, condition)
        landmarks = alignment.to_image(prepared.aligned.landmarks)
        return self.converted.get(
            key,
            lambda: convert_picture(self.model, picture, alignment.scale, plan.condition, landmarks, plan.source),
        )

    # --- the whole edit ------------------------------------------------------------------------------
    def edit(self, photo: ImageSource, request: EditRequest | None = None, **options: Any) -> Image.Image:
        """One edit: :meth:`prepare`, :meth:`plan`, :meth:`render`, :meth:`compose`. ``request`` or the
        keyword ``options`` of :meth:`EditRequest.from_options` (not both); see :meth:`PortraitGAN.edit`."""
        check_image_source(photo, "photo")
        request = as_request(request, options)
        request.check_modalities(self.model.config)
        prepared = self.prepare(photo, request)
        plan = self.plan(prepared, request)
        return self.compose(prepared, plan, self.render(prepared, plan), request.output)

    def edit_many(
        self, photos: Iterable[ImageSource], request: EditRequest | None = None, **options: Any
    ) -> Iterator[EditOutcome]:
        """Edit every photo of ``photos`` with the same request, one by one.

        The request is checked at once (``TypeError``/``ValueError`` naming the bad option, before
        any photo). Returns an iterator of one :class:`EditOutcome` per photo, in order: the result,
        or the error that stopped that photo (a :class:`PortraitGANError`, ``ValueError``,
        ``TypeError`` or ``OSError``) while the others go on. Warnings (e.g. dropped animation
        frames) are collected per photo into the outcome instead of being emitted.
        """
        if isinstance(photos, (str, bytes, bytearray, Image.Image, np.ndarray)) or not isinstance(photos, Iterable):
            raise TypeError(f"photos must be an iterable of photos (paths, ...), got {type(photos).__name__}")
        request = as_request(request, options)
        request.check_modalities(self.model.config)
        return self._edit_each(photos, request)

    def _edit_each(self, photos: Iterable[ImageSource], request: EditRequest) -> Iterator[EditOutcome]:
        for photo in photos:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    image, failure = self.edit(photo, request), None
                except (PortraitGANError, ValueError, TypeError, OSError) as error:
                    image, failure = None, error
            notes = []
            for caught_warning in caught:  # the user's warnings go into the outcome, others pass on
                if issubclass(caught_warning.category, UserWarning):
                    notes.append(str(caught_warning.message))
                else:
                    warnings.warn_explicit(
                        caught_warning.message, caught_warning.category, caught_warning.filename, caught_warning.lineno
                    )
            yield EditOutcome(photo, image, failure, tuple(notes))
