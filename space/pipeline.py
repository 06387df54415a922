"""The app's work on pictures, without gradio: open a photo, render an edit, draw views, write files.

Faces are found once per photo (``model.face_editor.faces`` caches by pixel content, and the
:class:`Session` keeps them), so a slider release runs only stages 3-5 of the edit: target
landmarks, the generator, paste back.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import uuid
import weakref
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from portraitgan_hub.editing import align_face, render_crop, target_landmarks
from portraitgan_hub.errors import NoFaceError
from portraitgan_hub.faces.alignment import Alignment, paste_back
from portraitgan_hub.faces.expressions import ExpressionControls, interpolate
from portraitgan_hub.faces.image_io import ImageSource, load_image, load_photo, restore_photo_info, source_name
from portraitgan_hub.faces.landmarks import FACE_PARTS, Face, default_detector, no_face_message
from portraitgan_hub.io_utils import atomic_save_image, save_photo
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


def detect_faces(model: PortraitGAN | None, photo: Image.Image) -> list[Face]:
    """All faces of ``photo``, largest first; through the model's cache when there is a model."""
    return model.face_editor.faces(photo) if model is not None else default_detector().detect(photo)


def open_photo(model: PortraitGAN, source: ImageSource, source_modality: str = "photo") -> Session:
    """Load ``source`` (any size up to the pixel limit), find its faces and start a session on the largest."""
    photo, info = load_photo(source)
    faces = detect_faces(model, photo)
    if not faces:
        message = no_face_message(source_name(source), faces)
        if source_modality != "photo":
            message += f" (the landmark detector is trained on photos and often misses faces in a {source_modality})"
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


def target_points(session: Session, controls: ExpressionControls) -> np.ndarray:
    """The edited landmarks of the session's face (crop pixels): reference, then controls, then moves."""
    return target_landmarks(session.aligned, controls, reference=session.reference, moves=session.edits.moves)


@dataclass(frozen=True, eq=False)
class Rendered:
    """One edit: the full-resolution photo with the new face pasted back, and the landmarks it used."""

    result: Image.Image
    target: np.ndarray  # (68, 2) crop pixels


def render(model: PortraitGAN, session: Session, controls: ExpressionControls, modality: str) -> Rendered:
    """Stages 3-5 of the edit on the session's (already aligned) face; no detection."""
    target = target_points(session, controls)
    crop = render_crop(model, session.aligned, target, modality)
    result = paste_back(session.aligned.photo, crop, session.aligned.alignment, model.face_editor.feather)
    return Rendered(result, target)


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


def preview_pair(session: Session, rendered: Rendered, overlay: bool) -> tuple[Image.Image, Image.Image]:
    """(before, after) for the before/after view; with ``overlay``, the detected and the target points.

    When the photo has several faces the other faces' boxes are outlined on "before", so the face
    picker's numbers can be matched to faces.
    """
    before, after = session.photo, rendered.result
    if not overlay:
        return before, after
    radius = dot_radius(before)
    before = draw_points(before, session.aligned.face.landmarks, DETECTED_COLOUR, radius)
    after = draw_points(after, session.aligned.alignment.to_image(rendered.target), TARGET_COLOUR, radius)
    if len(session.faces) > 1:
        draw = ImageDraw.Draw(before)
        for index, face in enumerate(session.faces):
            if index != session.face:
                draw.rectangle(face.box, outline=OTHER_FACE_COLOUR, width=max(2, int(radius)))
                draw.text((face.box[0] + 4, face.box[1] + 4), str(index + 1), fill=OTHER_FACE_COLOUR)
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


def animation_frames(
    model: PortraitGAN,
    session: Session,
    controls: ExpressionControls,
    modality: str,
    frames: int = 12,
    max_side: int = GIF_MAX_SIDE,
) -> list[Image.Image]:
    """The face moving from its own expression to the edited one, one rendered photo per step.

    Landmarks are interpolated linearly; every frame is a real G(crop | L_t, c) pasted back into the
    photo, downscaled so that its longest side is at most ``max_side``.
    """
    if frames < 2:
        raise ValueError(f"an animation needs at least 2 frames, got {frames}")
    photo = session.photo
    factor = min(1.0, max_side / max(photo.size))
    small = photo.resize((max(1, round(photo.width * factor)), max(1, round(photo.height * factor))), Image.LANCZOS)
    alignment = scaled_alignment(session.aligned.alignment, small.width / photo.width)
    start, end = session.aligned.landmarks, target_points(session, controls)
    pictures = []
    for t in np.linspace(0.0, 1.0, frames):
        crop = render_crop(model, session.aligned, interpolate(start, end, float(t)), modality)
        pictures.append(paste_back(small, crop, alignment, model.face_editor.feather))
    return pictures


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
    """The edited photo as the download gives it: the upload's mode, alpha, ICC profile and EXIF."""
    return restore_photo_info(rendered.result, session.info)
