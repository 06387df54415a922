"""The app's driving-video upload: the photo being edited, animated by a video's
expressions, as an MP4 to download.

The picture work is the library's :func:`portraitgan_hub.animate.animate` (each driving frame's
expression relative to its first frame, applied through ``FaceEditor.edit``), as
``portraitgan animate PHOTO --driving VIDEO -o OUT.mp4`` does it. This module takes the upload
(upload-only, as every file input of the app: ``uploads.check_upload``), passes on the app's
settings (the face picked, "Turn into", the reference strength and parts), shows the library's
progress bars in the page (``gr.Progress(track_tqdm=True)``) and reports on the status line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from portraitgan_hub.animate import AnimationReport, animate
from portraitgan_hub.edit_request import EditRequest
from portraitgan_hub.errors import PortraitGANError

if __package__:  # imported as a package: space.driving, or portraitgan_hub_space.driving
    from . import pipeline
    from . import session as state
    from .file_inputs import error_status, video_source
else:  # imported by app.py run as a script, as a Hugging Face Space does
    import pipeline  # type: ignore[no-redef]
    import session as state  # type: ignore[no-redef]
    from file_inputs import error_status, video_source  # type: ignore[no-redef]

ABOUT = (
    "Each frame's expression, relative to the video's first frame, is applied to the face being "
    "edited: the face picked above, turned into the modality of *Turn into*, with *Reference "
    "strength* and *Parts to take* from **Reference expression**. The sliders and moved points are "
    "not used. Every frame is rendered at the photo's full size, so a long video takes a while: the "
    "progress bar shows how far it is."
)


@dataclass(frozen=True)
class DrivingBox:
    """The components of the driving-video accordion (see :func:`driving_video_box`)."""

    video: gr.Video
    audio: gr.Checkbox
    button: gr.Button
    result: gr.Video
    download: gr.DownloadButton


def driving_video_box() -> DrivingBox:
    """The "Driving video" accordion: the upload, a sound option, the button and the result with its
    download. Call inside the Blocks."""
    with gr.Accordion("Driving video", open=False):
        gr.Markdown(ABOUT, elem_id="driving-about")
        video = gr.Video(label="Driving video", sources=["upload"], height=240, elem_id="driving-video")
        audio = gr.Checkbox(label="Keep the video's sound", value=True, elem_id="driving-audio")
        button = gr.Button("Animate by the video", elem_id="drive")
        result = gr.Video(
            label="Animated by the video (MP4)",
            interactive=False,
            visible=False,
            buttons=["download"],
            elem_id="driven-mp4",
        )
        download = gr.DownloadButton("Download the MP4", visible=False, elem_id="driven-download")
    return DrivingBox(video, audio, button, result, download)


class DrivingVideo:
    """The driving-video event of one app: ``model`` is a function giving the model (it raises
    ``gr.Error`` when none is loaded), ``files`` the app's download folder."""

    def __init__(self, model: Callable[[], Any], files: pipeline.OutputFiles, modalities: Sequence[str]) -> None:
        self.model = model
        self.files = files
        self.modalities = list(modalities)

    def drive(
        self,
        video: Any,
        session: state.Session | None,
        source: str | None,
        target: str,
        style: float | None,
        strength: float | None,
        parts: str | None,
        audio: bool | None,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 (gradio's way to ask for it)
    ) -> tuple[Any, Any, str]:
        """Animate the session's photo by the driving ``video`` (an upload payload).

        Returns ``(result video, its download button, status)``. A failure a user can cause (no
        photo, no video, a file that is not a video, no face in it, a path that is not an upload) is
        one line on the status line, and the last result stays.
        """
        path: str | None = None
        try:
            if session is None:
                raise gr.Error("Upload the portrait to animate first.", print_exception=False)
            path = video_source(video)
            if path is None:
                raise gr.Error("Upload a driving video first.", print_exception=False)
            request = EditRequest(
                modality=target,
                input_modality=source or None,
                modality_strength=1.0 if style is None else float(style),
                face=session.face,
            )
            model = self.model()
            progress(0, desc="Finding the face in every frame of the driving video")
            report = animate(
                model,
                session.photo,
                path,
                self.files.path(f"{session.name}-driven.mp4"),
                strength=1.0 if strength is None else float(strength),
                parts=parts or "all",
                audio=bool(audio),
                request=request,
                progress=True,  # tqdm bars, which gr.Progress(track_tqdm=True) shows in the page
            )
        except gr.Error as error:
            return gr.skip(), gr.skip(), error_status(str(error.message))
        except (PortraitGANError, ValueError, OSError) as error:
            message = str(error)
            if path:  # where gradio keeps the upload is no business of the user's: its name only
                message = message.replace(path, Path(path).name)
            return gr.skip(), gr.skip(), error_status(message)
        shown = gr.update(value=str(report.path), visible=True)
        download = gr.update(value=str(report.path), visible=True, interactive=True)
        converts = target != (source or self.modalities[0]) and request.modality_strength > 0
        return shown, download, driving_status(report, target if converts else None)


def driving_status(report: AnimationReport, modality: str | None, note: str = "") -> str:
    """The status line after an animation: frames, rate, modality, frames without a face, sound."""
    parts = [f"Driving video: {report.frames} frames at {float(report.fps):g} fps"]
    parts.append(f"turned into a {modality}" if modality else "expression only")
    if report.no_face_frames:
        parts.append(f"{report.no_face_frames} frame(s) without a face repeat the last expression")
    parts.append("with its sound" if report.audio else "no sound")
    line = " \u00b7 ".join(parts) + ". Play it below or download the MP4."
    return f"{line}  \n{note}" if note else line
