"""Animate a portrait by a driving video's expressions: relative motion on the 68 landmarks.

As LivePortrait drives a photo (relative motion: each driving frame's change from the first frame,
applied to the source), but through landmarks, so any model follows it:

1. **Read** the driving video with PyAV and find the largest face's 68 landmarks in every frame
   (:class:`~portraitgan_hub.faces.landmarks.LandmarkDetector`). A frame without a face repeats the
   last good expression (before the first face: none), and such frames are counted in a warning.
2. **Smooth** the landmarks over time in the canonical face frame (head motion taken out by the
   similarity on the eyes and nose): a zero-phase Gaussian filter, ``smoothing`` = its standard
   deviation in frames (default 1.0; 0 = off), the ends reflected. Zero phase because the whole
   video is known: unlike a causal filter (a One Euro filter, say) it adds no lag.
3. **Transfer**: each frame's expression is its displacement from the first face frame, rescaled
   part by part to the photo's face (:func:`~portraitgan_hub.faces.expression_transfer.transfer_expression`
   with the first frame as the neutral), times ``strength``, limited to ``parts``.
4. **Render** every frame through :meth:`FaceEditor.edit` (explicit target points; the photo's face
   is detected once) at the photo's full resolution, and write an H.264 MP4 at the driving video's
   frame rate, with its audio (re-encoded to AAC) unless ``audio=False``.

Errors: :class:`VideoError` for a driving video PyAV cannot read (or with no video stream) and an
output PyAV cannot write; :class:`~portraitgan_hub.errors.NoFaceError` when no driving frame has a
face (or the photo has none); ``ValueError`` for bad options.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from portraitgan_hub.edit_request import EditRequest
from portraitgan_hub.errors import NoFaceError, PortraitGANError
from portraitgan_hub.faces.expression_model import to_canonical
from portraitgan_hub.faces.expression_transfer import (
    check_reference_strength,
    reference_part_indices,
    transfer_expression,
)
from portraitgan_hub.faces.expressions import ExpressionControls
from portraitgan_hub.faces.landmarks import NUM_LANDMARKS, LandmarkDetector
from portraitgan_hub.io_utils import atomic_path

if TYPE_CHECKING:
    from portraitgan_hub.faces.image_io import ImageSource
    from portraitgan_hub.model import PortraitGAN

#: Standard deviation (frames) of the temporal Gaussian filter on the driving landmarks.
DEFAULT_SMOOTHING = 1.0
#: Output containers that take H.264 (and AAC).
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")
_H264_OPTIONS = {"crf": "18", "preset": "veryfast"}


class VideoError(PortraitGANError, ValueError):
    """A driving video that cannot be read (not a video, truncated, no video stream), or an output
    that cannot be written."""


@dataclass(frozen=True)
class DrivingTrack:
    """The faces of a driving video: ``landmarks`` ``(T, 68, 2)`` float64 in each frame's pixels, NaN
    where no face was found; ``fps`` the video's frame rate; ``size`` (width, height) in pixels."""

    landmarks: np.ndarray
    fps: Fraction
    size: tuple[int, int]
    has_audio: bool

    @property
    def found(self) -> np.ndarray:
        """``(T,)`` bool: the frames with a face."""
        return ~np.isnan(self.landmarks).any(axis=(1, 2))


@dataclass(frozen=True)
class AnimationReport:
    """What :func:`animate` wrote: ``frames`` at ``fps``, of which ``no_face_frames`` repeat an
    earlier expression; ``seconds_per_frame`` of rendering (landmark detection not counted)."""

    path: Path
    frames: int
    fps: Fraction
    no_face_frames: int
    audio: bool
    seconds_per_frame: float


def read_driving(video: str | Path, detector: LandmarkDetector | None = None, progress: bool = True) -> DrivingTrack:
    """The landmarks of the largest face in every frame of ``video`` (a path PyAV reads).

    Raises :class:`VideoError` if the file is missing, not a video, has no video stream or no frame.
    """
    av = _pyav()
    from tqdm.auto import tqdm

    path = Path(video)
    if not path.is_file():
        raise VideoError(f"driving video {path} not found")
    detector = detector or LandmarkDetector()
    points: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path.name} has no video stream")
            stream = container.streams.video[0]
            fps = Fraction(stream.average_rate or stream.guessed_rate or 25)
            has_audio = bool(container.streams.audio)
            total = stream.frames or None
            for frame in tqdm(
                container.decode(stream), total=total, desc="driving faces", unit="frame", disable=not progress
            ):
                picture = frame.to_image()
                faces = detector.detect(picture)
                points.append(faces[0].landmarks.astype(np.float64) if faces else np.full((NUM_LANDMARKS, 2), np.nan))
                size = picture.size
    except av.FFmpegError as error:
        raise VideoError(f"cannot read the driving video {path.name}: {error}") from error
    if not points:
        raise VideoError(f"{path.name} has no video frames")
    return DrivingTrack(np.stack(points), fps, size, has_audio)


def smooth(points: np.ndarray, sigma: float) -> np.ndarray:
    """``points`` ``(T, ...)`` filtered along time by a zero-phase Gaussian of ``sigma`` frames
    (truncated at 3 sigma, the ends reflected); ``sigma`` 0 returns a copy. ValueError if negative."""
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"smoothing must be a number of frames >= 0, got {sigma}")
    points = np.asarray(points, dtype=np.float64)
    if sigma == 0 or len(points) < 2:
        return points.copy()
    radius = max(1, int(np.ceil(3 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(
        points, [(radius, radius)] + [(0, 0)] * (points.ndim - 1), mode="reflect" if len(points) > radius else "edge"
    )
    return np.tensordot(np.lib.stride_tricks.sliding_window_view(padded, len(kernel), axis=0), kernel, axes=([-1], [0]))


def expression_track(track: DrivingTrack, smoothing: float = DEFAULT_SMOOTHING) -> np.ndarray:
    """``(T, 68, 2)`` canonical driving shapes: gaps filled with the last face found (before the first
    face: the first face), then :func:`smooth`-ed. Row 0 is the shape all expressions are relative to
    (the first face). Raises :class:`NoFaceError` if no frame has a face."""
    found = track.found
    if not found.any():
        raise NoFaceError("no face was found in any frame of the driving video")
    canonical = np.full(track.landmarks.shape, np.nan)
    for index in np.flatnonzero(found):
        canonical[index] = to_canonical(track.landmarks[index])[0]
    first = int(np.argmax(found))
    canonical[:first] = canonical[first]
    for index in range(first + 1, len(canonical)):
        if not found[index]:
            canonical[index] = canonical[index - 1]  # the last good expression
    smoothed = smooth(canonical, smoothing)
    smoothed[0] = smoothed[first]  # the reference: the first face, as smoothed
    return smoothed


def animate(
    model: PortraitGAN,
    photo: ImageSource,
    driving: str | Path,
    output: str | Path,
    *,
    strength: float = 1.0,
    parts: str | Sequence[str] = "all",
    smoothing: float = DEFAULT_SMOOTHING,
    audio: bool = True,
    request: EditRequest | None = None,
    progress: bool = True,
) -> AnimationReport:
    """Write ``output`` (an MP4, or .mov/.m4v/.mkv): ``photo`` with each driving frame's expression.

    ``strength`` (0..1.5) and ``parts`` as for a reference photo (``reference_strength``,
    ``reference_parts`` of :meth:`PortraitGAN.edit`); ``smoothing`` in frames (see the module
    docstring); ``request``: the rest of the edit (``face``, ``min_face``, ``modality``,
    ``modality_strength``, ``input_modality``; None: the largest face, no change of modality), whose
    target landmarks each frame replaces; every frame goes through the one editor's plan, render and
    compose stages on the photo prepared once. Frames where the driving video
    has no face repeat the last expression found and are counted in a ``UserWarning``. Raises
    :class:`VideoError`, :class:`NoFaceError`, ``ValueError`` (bad options) and what ``edit`` raises.
    """
    av = _pyav()
    from tqdm.auto import tqdm

    strength = check_reference_strength(strength)
    reference_part_indices(parts)
    output = Path(output)
    if output.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"output must end in one of {', '.join(VIDEO_SUFFIXES)}, got {output.name!r}")
    smooth(np.zeros((1, 1)), smoothing)  # checks the value before the slow part
    # Each frame's expression is the video's alone: no controls, reference or single moves on top.
    request = (request or EditRequest()).replace(
        output="photo", controls=ExpressionControls(), reference=None, moves={}
    )
    editor = model.face_editor
    prepared = editor.prepare(photo, request)  # the photo's face, detected and aligned once
    track = read_driving(driving, progress=progress)
    shapes = expression_track(track, smoothing)
    missing = int((~track.found).sum())
    if missing:
        warnings.warn(
            f"{missing} of {len(shapes)} driving frames had no face; they repeat the last expression found",
            UserWarning,
            stacklevel=2,
        )
    subject = prepared.aligned.face.landmarks
    width, height = (prepared.picture.width // 2) * 2, (prepared.picture.height // 2) * 2  # yuv420p: even sides
    start = time.perf_counter()
    try:
        with atomic_path(output) as tmp:
            with av.open(str(tmp), mode="w", format=_container_format(output)) as container:
                stream = container.add_stream("libx264", rate=track.fps)
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.options = dict(_H264_OPTIONS)
                sound = _AudioCopy(Path(driving), container) if audio and track.has_audio else None
                for shape in tqdm(shapes, desc="animating", unit="frame", disable=not progress):
                    target = transfer_expression(
                        subject, shape, reference_neutral=shapes[0], strength=strength, parts=parts
                    )
                    plan = editor.plan(prepared, request.replace(landmarks=target))
                    picture = editor.compose(prepared, plan, editor.render(prepared, plan))
                    frame = av.VideoFrame.from_image(picture.convert("RGB").crop((0, 0, width, height)))
                    container.mux(stream.encode(frame))
                container.mux(stream.encode())
                rendering = time.perf_counter() - start
                if sound is not None:
                    sound.write()
    except av.FFmpegError as error:
        raise VideoError(f"cannot write {output.name}: {error}") from error
    return AnimationReport(output, len(shapes), track.fps, missing, sound is not None, rendering / len(shapes))


def _pyav():
    """The ``av`` module (PyAV, in the ``space`` extra); :class:`VideoError` saying how to install it."""
    try:
        import av
    except ImportError as error:
        raise VideoError("reading and writing video needs PyAV: pip install av (or portraitgan-hub[space])") from error
    return av


def _container_format(path: Path) -> str:
    return {".mkv": "matroska", ".mov": "mov"}.get(path.suffix.lower(), "mp4")


class _AudioCopy:
    """The driving video's first audio stream, re-encoded to AAC into ``container``.

    The output stream is added at construction (before any packet is written, as containers need);
    :meth:`write` then decodes and encodes every audio frame.
    """

    def __init__(self, driving: Path, container) -> None:
        av = _pyav()

        self.source = av.open(str(driving))
        self.container = container
        incoming = self.source.streams.audio[0]
        self.incoming = incoming
        self.outgoing = container.add_stream("aac", rate=incoming.rate or 48000)

    def write(self) -> None:
        try:
            for frame in self.source.decode(self.incoming):
                frame.pts = None
                self.container.mux(self.outgoing.encode(frame))
            self.container.mux(self.outgoing.encode())
        finally:
            self.source.close()


# --- the ``portraitgan animate`` command (hooked into portraitgan_hub.cli) -------------------------
def add_command(commands) -> None:
    """Add ``portraitgan animate PHOTO --driving VIDEO -o OUT.mp4`` to the CLI's subparsers ``commands``."""
    parser = commands.add_parser("animate", help="animate a photo by a driving video's expressions (MP4)")
    parser.add_argument("input", help="the photo to animate")
    parser.add_argument("--driving", required=True, help="driving video (any format PyAV reads)")
    parser.add_argument("-o", "--output", required=True, help=f"output video ({', '.join(VIDEO_SUFFIXES)})")
    parser.add_argument(
        "--expression-strength", type=float, default=1.0, help="0..1.5, 1 = as in the video (default 1)"
    )
    parser.add_argument("--parts", default="all", help="eyes, brows, mouth or all, comma-separated (default all)")
    parser.add_argument(
        "--smoothing",
        type=float,
        default=DEFAULT_SMOOTHING,
        help=f"temporal Gaussian, sigma in frames, 0 = off (default {DEFAULT_SMOOTHING:g})",
    )
    parser.add_argument("--no-audio", action="store_true", help="leave out the driving video's audio")
    parser.add_argument("--face", type=int, default=0, help="which face of the photo (0 = largest)")
    parser.add_argument("--modality", help="output modality (default: the photo's own)")
    parser.add_argument(
        "--strength", type=float, default=1.0, help="style strength 0..1 towards --modality (default 1)"
    )
    parser.add_argument("--from", dest="input_modality", help="what the photo is (default: a photo)")
    parser.add_argument("--model", help="Hub id or folder (default: $PORTRAITGAN_MODEL, then the demo model)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:N or mps")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=_run_command)


def _run_command(args) -> int:
    from portraitgan_hub.default_model import load_model

    try:
        check_reference_strength(args.expression_strength)
    except ValueError as error:
        raise ValueError(f"--expression-strength: {error}") from None
    reference_part_indices(args.parts)
    request = EditRequest(  # checked before the model loads
        modality=args.modality,
        input_modality=args.input_modality,
        modality_strength=args.strength,
        face=args.face,
    )
    model = load_model(args.model, map_location=args.device)
    report = animate(
        model,
        Path(args.input).expanduser(),
        Path(args.driving).expanduser(),
        Path(args.output).expanduser(),
        strength=args.expression_strength,
        parts=args.parts,
        smoothing=args.smoothing,
        audio=not args.no_audio,
        request=request,
        progress=not args.quiet,
    )
    print(
        f"wrote {report.frames} frames at {float(report.fps):g} fps to {report.path}"
        f"{' with audio' if report.audio else ''} ({report.seconds_per_frame:.2f} s per frame"
        f"{f', {report.no_face_frames} without a face' if report.no_face_frames else ''})"
    )
    return 0
