"""The app's work on pictures, without gradio: sessions on the editor, views, overlays and files.

Every edit goes through the one editor (``portraitgan_hub.editor.FaceEditor``) with an
``EditRequest``: a photo is prepared once (faces detected, the chosen face aligned), and a slider
release runs the editor's plan and render stages and composes into a *preview* of the photo sized
to the browser's view. The download is the same render composed at full size, and an animation's
frames are the editor's in-between plans composed at the animation's size. What is here is the
app's own: the session, the before/after and crop views with their overlays, animation files and
downloads.
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
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from portraitgan_hub.edit_request import EditRequest
from portraitgan_hub.editor import EditPlan, FaceEditor
from portraitgan_hub.errors import NoFaceError
from portraitgan_hub.faces.alignment import Alignment
from portraitgan_hub.io_utils import atomic_path, atomic_save_image, save_photo

if TYPE_CHECKING:
    from portraitgan_hub.stages import Rendering

if __package__:  # imported as a package: space.pipeline, or portraitgan_hub_space.pipeline
    from . import crop_zoom
    from .crop_zoom import TARGET_COLOUR, CropZoom, ShownResult
    from .session import Session
else:  # imported by app.py run as a script, as a Hugging Face Space does
    import crop_zoom  # type: ignore[no-redef]
    from crop_zoom import TARGET_COLOUR, CropZoom, ShownResult  # type: ignore[no-redef]
    from session import Session  # type: ignore[no-redef]

DETECTED_COLOUR = (0, 200, 255)
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


def open_photo(editor: FaceEditor, source, input_modality: str | None = None) -> Session:
    """A session on the largest face of ``source`` (any size up to the pixel limit): the editor's
    stage 1 (``FaceEditor.prepare``). ``input_modality``: what the picture is ("Input is"; None: a
    photo). Raises ``ImageLoadError`` for a file that is not a readable image and ``NoFaceError``
    when no face is found, saying where to tell the app that the picture is a sketch or a cartoon.
    The file's alpha, ICC profile and EXIF are kept for the download."""
    modalities = editor.model.config.modalities
    try:
        prepared = editor.prepare(source, EditRequest(input_modality=input_modality or None))
    except NoFaceError as error:
        message = str(error)
        if input_modality and input_modality != modalities[0]:
            message += (
                f" (the landmark detector is trained on photos and often misses faces in a {input_modality}; "
                f"none was found on the picture converted to a {modalities[0]} either)"
            )
        elif len(modalities) > 1:
            message += f' (a {" or a ".join(modalities[1:])}? Say so under "Input is", then upload it again)'
        raise NoFaceError(message) from None
    stem = _safe_stem(Path(source).stem) if isinstance(source, (str, Path)) else "portrait"
    return Session.start(prepared, name=stem)


def _safe_stem(stem: str) -> str:
    """A file stem safe in a download name: letters, digits, ``-`` and ``_`` only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:60] or "portrait"


@dataclass(frozen=True, eq=False)
class ScreenEdit:
    """One edit of the session's face: the request, the editor's plan (target landmarks in crop
    pixels, condition) and what G made of it (None for a no-op); once shown, the result as the
    before/after view shows it (for the crop view) and what the screen asked for (``key``: the
    handlers render nothing for a repeat of it)."""

    request: EditRequest
    plan: EditPlan
    rendering: Rendering | None
    shown: ShownResult | None = None
    key: tuple | None = None

    @property
    def target(self) -> np.ndarray:
        """The (68, 2) target landmarks, crop pixels."""
        return self.plan.target


def plan_and_render(editor: FaceEditor, session: Session, request: EditRequest) -> ScreenEdit:
    """The editor's stages 2-3 on the session's (already prepared) face: no detection, no
    composition yet (:func:`preview_pair` for the view, :func:`download_image` for the file)."""
    plan = editor.plan(session.prepared, request)
    return ScreenEdit(request, plan, editor.render(session.prepared, plan))


def download_image(editor: FaceEditor, session: Session, rendered: ScreenEdit) -> Image.Image:
    """The edit as the download gives it, the editor's stage 4 at full size: the photo in the
    upload's mode with its alpha, ICC profile and EXIF; or the portrait (twice the model's size)
    with the ICC profile. The same pixels as ``model.edit`` with the same request."""
    return editor.compose(session.prepared, rendered.plan, rendered.rendering, rendered.request.output)


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
    editor: FaceEditor, session: Session, rendered: ScreenEdit, overlay: bool, max_side: int = 1024
) -> tuple[Image.Image, Image.Image]:
    """(before, after) for the before/after view, longest side at most ``max_side`` pixels: the
    pair of :func:`preview_views`."""
    return preview_views(editor, session, rendered, overlay, max_side)[0]


def preview_views(
    editor: FaceEditor, session: Session, rendered: ScreenEdit, overlay: bool, max_side: int = 1024
) -> tuple[tuple[Image.Image, Image.Image], ShownResult]:
    """((before, after), the result shown) for the before/after view, longest side at most
    ``max_side`` pixels; the result shown is "after" without the overlay, for the crop view.

    The editor composes into a downscaled copy of the photo (``FaceEditor.compose`` with
    ``max_side``), so a preview costs a fraction of a full-resolution one. "Before" is the input as
    it is, whichever way the modality goes. With a portrait request the pair is the aligned portrait
    (twice the model's size) of the input and of the result. With ``overlay``, the detected and the
    target points are drawn; when the photo has several faces the other faces' boxes are outlined
    on "before", so the face picker's numbers match faces.
    """
    prepared, output = session.prepared, rendered.request.output
    before = editor.unedited(prepared, output, max_side)
    after = editor.compose(prepared, rendered.plan, rendered.rendering, output, max_side)
    crop_size = session.aligned.alignment.crop_size
    if output == "portrait":  # twice the crop's size, the crop's framing: portrait p is crop (p + 0.5) / 2 - 0.5
        shown = ShownResult(after, Alignment(np.array([[0.5, 0.0, -0.25], [0.0, 0.5, -0.25]]), crop_size))
    else:
        shown = ShownResult(after, editor.at_size(prepared, max_side)[1])
    if not overlay:
        return (before, after), shown
    radius = dot_radius(before)
    if output == "portrait":
        to_portrait = lambda points: (np.asarray(points, np.float64) + 0.5) * 2 - 0.5  # noqa: E731
        before = draw_points(before, to_portrait(session.aligned.landmarks), DETECTED_COLOUR, radius)
        return (before, draw_points(after, to_portrait(rendered.target), TARGET_COLOUR, radius)), shown
    factor = before.width / session.photo.width
    to_preview = lambda points: (np.asarray(points, np.float64) + 0.5) * factor - 0.5  # noqa: E731
    before = draw_points(before, to_preview(session.aligned.face.landmarks), DETECTED_COLOUR, radius)
    after = draw_points(after, shown.alignment.to_image(rendered.target), TARGET_COLOUR, radius)
    if len(session.faces) > 1:
        draw = ImageDraw.Draw(before)
        for index, face in enumerate(session.faces):
            if index != session.face:
                left, top = to_preview(face.box[:2])
                right, bottom = to_preview(face.box[2:])
                draw.rectangle((left, top, right, bottom), outline=OTHER_FACE_COLOUR, width=max(2, int(radius)))
                draw.text((left + 4, top + 4), str(index + 1), fill=OTHER_FACE_COLOUR)
    return (before, after), shown


def crop_zoom_of(session: Session, target: np.ndarray, zoom: str | None = None) -> CropZoom:
    """What the crop view ``zoom`` (one of ``session.ZOOM_CHOICES``; None: the whole face) shows of
    the session's face with the ``target`` landmarks (crop pixels)."""
    return crop_zoom.zoom_for(zoom, session.aligned.alignment.crop_size, (session.aligned.landmarks, target))


def crop_view(session: Session, target: np.ndarray, zoom: str | None = None) -> Image.Image:
    """The current result's aligned face, the whole of it or a part enlarged (``zoom``), with the
    target landmarks drawn for clicking (``crop_zoom.draw``).

    The result is the one the before/after view shows (the session's last render); before any, the
    aligned input crop. Parts are outlined as in the landmark map the generator sees; moved points
    are yellow and a picked point is ringed in magenta.
    """
    shown = session.last.shown if session.last is not None else None
    if shown is None:
        crop = session.aligned.crop
        shown = ShownResult(crop, Alignment(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), crop.width))
    geometry = crop_zoom_of(session, target, zoom)
    return crop_zoom.draw(shown, geometry, target, tuple(session.edits.moves), session.edits.picked)


# --- motion -----------------------------------------------------------------------------------------
def animation_frames(
    editor: FaceEditor, session: Session, request: EditRequest, frames: int = 12, max_side: int = GIF_MAX_SIDE
) -> list[Image.Image]:
    """The face moving from its own expression to the edited one, one rendered picture per step.

    Each frame is the editor's in-between plan (``FaceEditor.in_between``: landmarks interpolated
    linearly, the request's condition), rendered by G and composed into the photo downscaled to at
    most ``max_side`` (on that photo converted whole for a change of modality, made once); for a
    portrait request, the aligned portraits. ``ValueError`` for fewer than 2 frames.
    """
    if frames < 2:
        raise ValueError(f"an animation needs at least 2 frames, got {frames}")
    prepared = session.prepared
    plan = editor.plan(prepared, request)
    pictures = []
    for t in np.linspace(0.0, 1.0, frames):
        frame = editor.in_between(prepared, plan, float(t))
        pictures.append(editor.compose(prepared, frame, editor.render(prepared, frame), request.output, max_side))
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
