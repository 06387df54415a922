"""The app's work on pictures, without gradio: open a photo, render an edit, draw views, write files.

Faces are found once per photo (``model.face_editor.faces`` caches by pixel content, and the
:class:`Session` keeps them), so a slider release runs only stages 3-5 of the edit: target
landmarks, the generator, and a paste back into a *preview* of the photo sized to the browser's
view. The full-resolution, lossless PNG is made from the same render only for the download
(:func:`full_result`, :meth:`OutputFiles.save_png`), keeping the photo's ICC profile and EXIF.

A change of modality converts the whole picture, as ``model.edit`` does (issue #12): G runs over the
photo in tiles (``editing.convert_picture``) and the face is composed on top. That conversion
depends on the photo's size and the condition c only, not on the expression, so it is made once per
(size, c) and kept in the session (:func:`converted_background`): an expression slider re-renders
the face only.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import uuid
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from portraitgan_hub.editing import (
    Rendering,
    align_face,
    changes_modality,
    compose,
    convert_picture,
    finish_colours,
    input_index,
    is_no_op,
    modality_condition,
    portrait_crop,
    target_landmarks,
)
from portraitgan_hub.editing import render as render_face
from portraitgan_hub.errors import NoFaceError
from portraitgan_hub.faces.alignment import Alignment
from portraitgan_hub.faces.expressions import ExpressionControls, interpolate
from portraitgan_hub.faces.image_io import ImageSource, load_image, load_photo, restore_photo_info, source_name
from portraitgan_hub.faces.landmarks import FACE_PARTS, Face, default_detector, no_face_message
from portraitgan_hub.io_utils import atomic_path, atomic_save_image, save_photo
from portraitgan_hub.model import PortraitGAN

if __package__:  # imported as a package: space.pipeline, or portraitgan_hub_space.pipeline
    from .session import Session, crop_to_view, crop_view_scale
else:  # imported by app.py run as a script, as a Hugging Face Space does
    from session import Session, crop_to_view, crop_view_scale  # type: ignore[no-redef]

DETECTED_COLOUR = (0, 200, 255)
TARGET_COLOUR = (255, 70, 70)
MOVED_COLOUR = (255, 220, 0)
PICKED_COLOUR = (255, 0, 255)
OTHER_FACE_COLOUR = (255, 255, 255)
#: Animations are rendered on a copy of the photo whose longest side is at most this.
GIF_MAX_SIDE = 512
#: Animation options: frame rate (frames per second) and length of one loop (seconds).
FPS_RANGE = (4, 30)
LENGTH_RANGE = (1.0, 8.0)
#: At most this many distinct frames are rendered for one animation (each is a generator run).
MAX_RENDERED_FRAMES = 48
#: The share of an animation's loop spent holding still at each end.
HOLD_SHARE = 0.1
ANIMATION_FORMATS = ("MP4", "GIF")
_EXIF_ORIENTATION = 0x0112


def detect_faces(model: PortraitGAN | None, photo: Image.Image) -> list[Face]:
    """All faces of ``photo``, largest first; through the model's cache when there is a model."""
    return model.face_editor.faces(photo) if model is not None else default_detector().detect(photo)


def open_photo(model: PortraitGAN, source: ImageSource, source_modality: str | None = None) -> Session:
    """Load ``source`` (any size up to the pixel limit), find its faces and start a session on the largest.

    ``source_modality``: what the picture is ("Input is"; None: the model's first modality, a photo).
    When the detector finds no face on a stylized picture, the model converts the picture to a
    photo and the detector looks there (``FaceEditor.faces_via_cycle``); the faces' points are the
    picture's. Raises ``ImageLoadError`` for a file that is not a readable image and ``NoFaceError``
    when no face is found. The file's alpha, ICC profile and EXIF are kept for the download.
    """
    photo, info = load_photo(source)
    detected = detect_faces(model, photo)
    faces = list(detected)
    modalities = model.config.modalities
    stylized = source_modality is not None and input_index(model, source_modality) != 0
    if not faces and stylized:
        faces = model.face_editor.faces_via_cycle(photo, source_modality)
    if not faces:
        message = no_face_message(source_name(source), detected)
        if stylized:
            message += (
                f" (the landmark detector is trained on photos and often misses faces in a {source_modality}; "
                f"none was found on the picture converted to a {modalities[0]} either)"
            )
        elif len(modalities) > 1:
            message += f' (a {" or a ".join(modalities[1:])}? Say so under "Input is", then upload it again)'
        raise NoFaceError(message)
    stem = _safe_stem(Path(source).stem) if isinstance(source, (str, Path)) else "portrait"
    return Session.start(photo, faces, model.config.image_size, name=stem, margin=model.face_editor.margin, info=info)


def _safe_stem(stem: str) -> str:
    """A file stem safe in a download name: letters, digits, ``-`` and ``_`` only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:60] or "portrait"


def reference_landmarks(model: PortraitGAN, source: ImageSource) -> np.ndarray:
    """The landmarks of the largest face of a reference photo, in the model's crop pixels."""
    photo = load_image(source)
    faces = detect_faces(model, photo)
    if not faces:
        raise NoFaceError(no_face_message(f"the reference photo {source_name(source)}", faces))
    return align_face(photo, faces[0], model.config.image_size, model.face_editor.margin).landmarks


def target_points(
    session: Session,
    controls: ExpressionControls,
    reference_strength: float = 1.0,
    reference_parts: str | Sequence[str] = "all",
) -> np.ndarray:
    """The edited landmarks of the session's face (crop pixels): reference, then controls, then moves.

    The reference's expression is scaled by ``reference_strength`` (0..1.5) and limited to
    ``reference_parts`` (see ``transfer_expression``); ValueError outside those.
    """
    return target_landmarks(
        session.aligned,
        controls,
        reference=session.reference,
        moves=session.edits.moves,
        reference_strength=reference_strength,
        reference_parts=reference_parts,
    )


@dataclass(frozen=True, eq=False)
class Rendered:
    """One edit of the session's face: what G made (``editing.Rendering``: crop, colour, mask, flow),
    the landmarks it used, and how it is shown: composed into the whole picture, or (``portrait``)
    the aligned portrait of that at twice the model's size. ``no_op``: nothing was asked, the photo
    is the result. ``condition``: G's (1, n) condition c; ``converts``: c asks for another modality
    than the input's, so the whole picture is converted under the face. ``model``: the model that
    made it, for that conversion and for the colour a grey modality takes out."""

    rendering: Rendering
    target: np.ndarray  # (68, 2) crop pixels
    condition: torch.Tensor
    model: PortraitGAN
    portrait: bool = False
    feather: float = 0.0
    no_op: bool = False
    converts: bool = False
    source: int = 0  # the input's modality index (what G converts from)

    @property
    def crop(self) -> Image.Image:
        """G's output at the model's size, crop pixels."""
        return self.rendering.crop


def render(
    model: PortraitGAN,
    session: Session,
    controls: ExpressionControls,
    modality: str,
    *,
    portrait: bool = False,
    reference_strength: float = 1.0,
    reference_parts: str | Sequence[str] = "all",
    modality_strength: float = 1.0,
    input_modality: str | None = None,
) -> Rendered:
    """Stages 3-4 of the edit on the session's (already aligned) face: no detection, no paste back yet.

    G is conditioned on ``(1 - modality_strength) c_input + modality_strength c_target``
    (``editing.modality_condition``; ``input_modality`` None: the model's first, a photo).
    Composition happens at the size it is needed: :func:`preview_pair` for the view,
    :func:`full_result` for the download; with ``portrait`` both give the aligned portrait.
    """
    condition = modality_condition(model, modality, input_modality, modality_strength)
    source = input_index(model, input_modality)
    target = target_points(session, controls, reference_strength, reference_parts)
    rendering = render_face(model, session.aligned, target, condition, source)
    no_op = is_no_op(session.aligned, target, condition, model, source)
    converts = changes_modality(condition, source)
    return Rendered(rendering, target, condition, model, portrait, model.face_editor.feather, no_op, converts, source)


def full_result(session: Session, rendered: Rendered) -> Image.Image:
    """The result at full resolution: the photo with the edit composed in at its own resolution
    (``editing.compose``), on the whole photo converted for a change of modality; with
    ``rendered.portrait``, the aligned portrait of that (as ``model.edit(..., portrait=True)``)."""
    result = _composed(session, rendered, session.aligned.photo, session.aligned.alignment)
    return portrait_crop(result, session.aligned.alignment) if rendered.portrait else result


def converted_background(
    session: Session, rendered: Rendered, photo: Image.Image, alignment: Alignment
) -> Image.Image | None:
    """``photo`` (the session's photo at some size, ``alignment`` its face's alignment at that size)
    converted whole by G to ``rendered``'s condition (``editing.convert_picture`` at the face's scale,
    with the face's own landmarks); None when the edit keeps the input's modality. Made once per
    (size, face, condition) and kept in ``session.pictures``: an expression edit reuses it."""
    if not rendered.converts:
        return None
    model, condition = rendered.model, rendered.condition
    key = (
        "converted",
        photo.size,
        session.face,
        rendered.source,
        tuple(round(float(v), 6) for v in condition.flatten()),
    )
    landmarks = alignment.to_image(session.aligned.landmarks)
    source = rendered.source
    return session.pictures.get(
        key, lambda: convert_picture(model, photo, alignment.scale, condition, landmarks, source)
    )


def _composed(session: Session, rendered: Rendered, photo: Image.Image, alignment: Alignment) -> Image.Image:
    """``rendered`` composed into ``photo`` (the session's photo at any size, with the matching
    ``alignment``), as ``model.edit`` composes: onto the converted picture for a change of modality,
    then with a grey modality's share of colour taken out."""
    if rendered.no_op:
        result = photo.copy()
    else:
        background = converted_background(session, rendered, photo, alignment)
        result = compose(photo, alignment, rendered.rendering, rendered.feather, background)
    return _finished(result, rendered, photo)


def _finished(result: Image.Image, rendered: Rendered, photo: Image.Image) -> Image.Image:
    """The editor's last step (``editing.finish_colours``), as ``model.edit`` takes it."""
    return finish_colours(result, photo, rendered.model, rendered.condition, rendered.converts)


def downscaled(photo: Image.Image, max_side: int) -> tuple[Image.Image, float]:
    """``photo`` with its longest side at most ``max_side`` pixels, and the factor used (<= 1)."""
    factor = min(1.0, max_side / max(photo.size))
    if factor >= 1.0:
        return photo, 1.0
    size = (max(1, round(photo.width * factor)), max(1, round(photo.height * factor)))
    return photo.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0), size[0] / photo.width


# --- views ----------------------------------------------------------------------------------------
def draw_points(image: Image.Image, points: np.ndarray, colour: tuple[int, int, int], radius: float) -> Image.Image:
    """A copy of ``image`` with a dot on every point (``(N, 2)``, pixel coordinates)."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    for x, y in np.asarray(points, dtype=np.float64):
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    return out


def dot_radius(image: Image.Image) -> float:
    return max(2.0, max(image.size) / 320)


def preview_pair(
    session: Session, rendered: Rendered, overlay: bool, max_side: int = 1024
) -> tuple[Image.Image, Image.Image]:
    """(before, after) for the before/after view, longest side at most ``max_side`` pixels.

    The face is composed into a downscaled copy of the photo (on that copy converted whole, for a
    change of modality), so a preview costs a fraction of a full-resolution one. "Before" is the
    input as it is, whichever way the modality goes. With ``rendered.portrait`` the pair is the
    aligned portrait (twice the model's size) of the input and of the result, composed on a copy
    just large enough for it. With ``overlay``, the detected and the target points are drawn; when
    the photo has several faces the other faces' boxes are outlined on "before", so the face
    picker's numbers match faces.
    """
    if rendered.portrait:
        # A portrait pixel is 1 / (2 * scale) photo pixels: a copy at that scale loses nothing.
        needed = max(session.photo.size) * min(1.0, 2.0 * session.aligned.alignment.scale)
        small, factor = downscaled(session.photo, max(1, int(np.ceil(needed))))
        alignment = _at_factor(session.aligned.alignment, factor)
        before = portrait_crop(small, alignment)
        after = portrait_crop(_composed(session, rendered, small, alignment), alignment)
        if overlay:
            to_portrait = lambda points: (np.asarray(points, np.float64) + 0.5) * 2 - 0.5  # noqa: E731
            radius = dot_radius(before)
            before = draw_points(before, to_portrait(session.aligned.landmarks), DETECTED_COLOUR, radius)
            after = draw_points(after, to_portrait(rendered.target), TARGET_COLOUR, radius)
        return before, after
    before, factor = downscaled(session.photo, max_side)
    alignment = _at_factor(session.aligned.alignment, factor)
    after = _composed(session, rendered, before, alignment)
    if not overlay:
        return before, after
    to_preview = lambda points: (np.asarray(points, np.float64) + 0.5) * factor - 0.5  # noqa: E731
    radius = dot_radius(before)
    before = draw_points(before, to_preview(session.aligned.face.landmarks), DETECTED_COLOUR, radius)
    after = draw_points(after, to_preview(session.aligned.alignment.to_image(rendered.target)), TARGET_COLOUR, radius)
    if len(session.faces) > 1:
        draw = ImageDraw.Draw(before)
        for index, face in enumerate(session.faces):
            if index != session.face:
                left, top = to_preview(face.box[:2])
                right, bottom = to_preview(face.box[2:])
                draw.rectangle((left, top, right, bottom), outline=OTHER_FACE_COLOUR, width=max(2, int(radius)))
                draw.text((left + 4, top + 4), str(index + 1), fill=OTHER_FACE_COLOUR)
    return before, after


def crop_view(session: Session, target: np.ndarray) -> Image.Image:
    """The aligned input crop, zoomed, with the target landmarks drawn for clicking.

    Parts are outlined as in the landmark map the generator sees; moved points are yellow and a
    picked point is ringed in magenta.
    """
    crop = session.aligned.crop
    scale = crop_view_scale(crop.width)
    view = crop.resize((crop.width * scale, crop.height * scale), Image.Resampling.BICUBIC)
    points = crop_to_view(target, scale)
    draw = ImageDraw.Draw(view)
    for _name, indices, closed in FACE_PARTS:
        part = [tuple(points[i]) for i in indices]
        draw.line(part + part[:1] if closed else part, fill=TARGET_COLOUR, width=1)
    radius = 2.5 * scale / 2 + 1
    for index, (x, y) in enumerate(points):
        colour = MOVED_COLOUR if index in session.edits.moves else TARGET_COLOUR
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    if session.edits.picked is not None:
        x, y = points[session.edits.picked]
        ring = radius * 3
        draw.ellipse((x - ring, y - ring, x + ring, y + ring), outline=PICKED_COLOUR, width=2)
    return view


# --- motion -----------------------------------------------------------------------------------------
def scaled_alignment(alignment: Alignment, factor: float) -> Alignment:
    """The alignment of the same face in the photo resized by ``factor`` (pixel centres kept)."""
    linear = alignment.matrix[:, :2] / factor
    offset = alignment.matrix[:, 2] + alignment.matrix[:, :2] @ np.full(2, 0.5 / factor - 0.5)
    return Alignment(matrix=np.hstack([linear, offset[:, None]]), crop_size=alignment.crop_size)


def _at_factor(alignment: Alignment, factor: float) -> Alignment:
    """:func:`scaled_alignment`, and ``alignment`` itself at factor 1 (the same photo)."""
    return scaled_alignment(alignment, factor) if factor < 1.0 else alignment


def animation_frames(
    model: PortraitGAN,
    session: Session,
    controls: ExpressionControls,
    modality: str,
    frames: int = 12,
    max_side: int = GIF_MAX_SIDE,
    *,
    portrait: bool = False,
    reference_strength: float = 1.0,
    reference_parts: str | Sequence[str] = "all",
    modality_strength: float = 1.0,
    input_modality: str | None = None,
) -> list[Image.Image]:
    """The face moving from its own expression to the edited one, one rendered photo per step.

    Landmarks are interpolated linearly (the modality stays the target's, at ``modality_strength``);
    every frame is a real G(crop | L_t, c) composed into the photo, downscaled so that its longest
    side is at most ``max_side``, on that photo converted whole for a change of modality (the
    conversion does not depend on the landmarks, so it is made once, not per frame); with
    ``portrait``: the aligned portraits, twice the model's size. ValueError for fewer than 2 frames.
    """
    if frames < 2:
        raise ValueError(f"an animation needs at least 2 frames, got {frames}")
    photo = session.photo
    if portrait:  # a copy just large enough for the portrait, as in preview_pair
        max_side = max(1, int(np.ceil(max(photo.size) * min(1.0, 2.0 * session.aligned.alignment.scale))))
    factor = min(1.0, max_side / max(photo.size))
    small = photo.resize((max(1, round(photo.width * factor)), max(1, round(photo.height * factor))), Image.LANCZOS)
    alignment = scaled_alignment(session.aligned.alignment, small.width / photo.width)
    start = session.aligned.landmarks
    end = target_points(session, controls, reference_strength, reference_parts)
    condition = modality_condition(model, modality, input_modality, modality_strength)
    source = input_index(model, input_modality)
    converts = changes_modality(condition, source)
    pictures = []
    for t in np.linspace(0.0, 1.0, frames):
        points = interpolate(start, end, float(t))
        rendering = render_face(model, session.aligned, points, condition, source)
        frame = Rendered(
            rendering, points, condition, model, portrait, model.face_editor.feather, False, converts, source
        )
        picture = _composed(session, frame, small, alignment)
        pictures.append(portrait_crop(picture, alignment) if portrait else picture)
    return pictures


def animation_plan(fps: float, seconds: float) -> tuple[int, int]:
    """(distinct frames to render, frames to hold at each end) for a loop of ``seconds`` at ``fps``.

    The loop plays forward, holds, plays back and holds (see :func:`loop_order`); it has about
    ``fps * seconds`` frames. ``fps`` must be in :data:`FPS_RANGE` and ``seconds`` in
    :data:`LENGTH_RANGE` (ValueError otherwise). At most :data:`MAX_RENDERED_FRAMES` are rendered.
    """
    if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
        raise ValueError(f"frame rate must be {FPS_RANGE[0]}..{FPS_RANGE[1]} frames per second, got {fps}")
    if not LENGTH_RANGE[0] <= seconds <= LENGTH_RANGE[1]:
        raise ValueError(f"length must be {LENGTH_RANGE[0]:g}..{LENGTH_RANGE[1]:g} seconds, got {seconds}")
    total = max(4, round(fps * seconds))
    hold = max(1, round(total * HOLD_SHARE))
    rendered = max(2, min(MAX_RENDERED_FRAMES, round((total - 2 * hold + 2) / 2)))
    return rendered, hold


def loop_order(frames: int, hold: int) -> list[int]:
    """Frame indices of a loop: hold the first, play forward, hold the last, play back (not repeating ends)."""
    return [0] * hold + list(range(frames)) + [frames - 1] * hold + list(range(frames - 2, 0, -1))


def save_mp4(pictures: list[Image.Image], path: Path, fps: float = 12, hold: int = 2) -> Path:
    """Write a looping-order H.264 MP4 (PyAV, its own FFmpeg) of ``pictures`` at ``fps``, atomically.

    The frames play as :func:`loop_order` says. Odd sizes are cropped by a pixel (yuv420p needs even
    sides); ``+faststart`` puts the index first, so browsers start playing at once.
    """
    import av  # a dependency of the app only (the "space" extra)

    width, height = (pictures[0].width // 2) * 2, (pictures[0].height // 2) * 2
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=round(fps))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": "20", "preset": "veryfast"}
            for index in loop_order(len(pictures), hold):
                picture = pictures[index].convert("RGB").crop((0, 0, width, height))
                for packet in stream.encode(av.VideoFrame.from_image(picture)):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path


def save_gif(pictures: list[Image.Image], path: Path, frame_ms: int = 80, hold_ms: int = 600) -> Path:
    """Write a looping GIF that plays forward, holds, and plays back (atomically).

    All frames share one palette (from the first and the last frame) without dithering: the
    background does not flicker, and encoding takes milliseconds instead of seconds of per-frame
    quantizing.
    """
    first, last = pictures[0], pictures[-1]
    both_ends = Image.new("RGB", (first.width + last.width, max(first.height, last.height)))
    both_ends.paste(first, (0, 0))
    both_ends.paste(last, (first.width, 0))
    palette = both_ends.quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    indexed = [picture.quantize(palette=palette, dither=Image.Dither.NONE) for picture in pictures]
    sequence = indexed + indexed[-2:0:-1]
    durations = [frame_ms] * len(sequence)
    durations[0] = durations[len(pictures) - 1] = hold_ms
    atomic_save_image(
        sequence[0], path, format="GIF", save_all=True, append_images=sequence[1:], duration=durations, loop=0
    )
    return path


# --- files ------------------------------------------------------------------------------------------
class OutputFiles:
    """Files the app offers for download, each in its own folder; only the newest ``keep`` are kept.

    Gradio copies a returned file into its own cache, so an old file here can go once newer ones
    have been offered. Writes are atomic, so a download never sees half a file.
    """

    def __init__(self, directory: str | Path | None = None, keep: int = 64) -> None:
        """Files go to ``directory``; by default a new temporary folder, removed with this object."""
        if directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="portraitgan-app-"))
            weakref.finalize(self, shutil.rmtree, self.directory, True)
        else:
            self.directory = Path(directory)
        self.keep = keep
        self._folders: deque[Path] = deque()
        self._lock = threading.Lock()

    def path(self, filename: str) -> Path:
        """A fresh path for ``filename`` (its folder is new); prunes the oldest folders."""
        folder = self.directory / uuid.uuid4().hex
        folder.mkdir(parents=True)
        with self._lock:
            self._folders.append(folder)
            while len(self._folders) > self.keep:
                shutil.rmtree(self._folders.popleft(), ignore_errors=True)
        return folder / filename

    def save_png(self, image: Image.Image, stem: str) -> Path:
        """The lossless full-resolution PNG (fast zlib level: the size is close, the time a third).

        Keeps the alpha channel, ICC profile and EXIF that ``image`` carries (``restore_photo_info``).
        """
        path = self.path(f"{stem}-portraitgan.png")
        save_photo(image, path, compress_level=1)
        return path


def download_image(session: Session, rendered: Rendered) -> Image.Image:
    """The edit as the download gives it: the full-resolution photo in the upload's mode, with its
    alpha, ICC profile and EXIF; with ``rendered.portrait``, the aligned portrait (twice the model's
    size) with the ICC profile."""
    if rendered.portrait:
        portrait = full_result(session, rendered)
        if session.info.icc_profile:
            portrait.info["icc_profile"] = session.info.icc_profile
        return portrait
    return restore_photo_info(full_result(session, rendered), session.info)
