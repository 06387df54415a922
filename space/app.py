"""The PortraitGAN Hub app: edit a portrait's expression and modality in the browser.

Run it with ``portraitgan app`` (or ``python space/app.py``); on a Hugging Face Space this file is
the ``app_file``. This is the only module that imports gradio: the picture work is in
``pipeline.py`` and the per-user state in ``session.py``. Nothing runs at import time;
:func:`build_demo` makes the Blocks and :func:`main` parses the command line and launches.
"""

from __future__ import annotations

import argparse
import base64
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from portraitgan_hub.config import DEFAULT_MODALITIES
from portraitgan_hub.default_model import MODEL_ENV, load_model
from portraitgan_hub.errors import ImageLoadError, PortraitGANError
from portraitgan_hub.faces.expressions import EXPRESSION_NAMES
from portraitgan_hub.faces.image_io import load_image
from portraitgan_hub.faces.landmarks import no_face_message
from portraitgan_hub.model import PortraitGAN

if __package__:  # imported as a package: space.app, or portraitgan_hub_space.app once installed
    from . import pipeline
    from . import session as state
else:  # run as a script (`python app.py`), as a Hugging Face Space does
    import pipeline  # type: ignore[no-redef]
    import session as state  # type: ignore[no-redef]

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
#: Uploads above this are refused by gradio before any decoding; pixels are limited by load_image.
MAX_FILE_SIZE = "25mb"
#: Every event that runs the model or the detector shares one queue slot group: the CPU is the limit.
CPU_GROUP = "cpu"
QUEUE_MAX_SIZE = 32
#: A session's state (the photo, its faces) is dropped this long after its last use.
SESSION_TTL_S = 3600

CSS = """
#crop-view img { image-rendering: pixelated; cursor: crosshair; }
#model-missing { border: 2px solid #d97706; border-radius: 8px; padding: 0.5em 1em; }
"""


def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Show every failure a user can cause (bad file, no face, ...) as a message; the server keeps serving."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (PortraitGANError, ValueError, OSError) as error:
            raise gr.Error(str(error), print_exception=False) from None

    return wrapper


def upload_source(payload: Any) -> str | bytes | None:
    """The file behind an image upload that gradio did not preprocess.

    Events that take an upload run with ``preprocess=False``: gradio's own preprocessing opens the
    file with Pillow before the event function runs, so a text file or a decompression bomb would
    fail outside every handler with a bare "Error". Here ``load_image`` reads it and says what is
    wrong. (Gradio still checks that the path is one of its uploads.)
    """
    if payload is None or isinstance(payload, str):
        return payload
    if payload.get("path"):
        return str(payload["path"])
    url = payload.get("url") or ""
    if url.startswith("data:") and "," in url:  # a webcam frame sent inline
        return base64.b64decode(url.split(",", 1)[1])
    raise ImageLoadError("the upload holds no file")


def no_model_message(reason: str) -> str:
    """What the page says when no model could be loaded, and how to give one."""
    return (
        f"**No model is loaded**: {reason}\n\n"
        "Give one with `portraitgan app --model HUB_ID_OR_FOLDER` or the environment variable "
        f"`{MODEL_ENV}` (on a Hugging Face Space: *Settings > Variables*). A model is a Hub repository "
        "or a folder with `config.json` and `model.safetensors`, as written by "
        "`PortraitGAN.save_pretrained`. Face detection and the `landmarks` API work without one."
    )


class Handlers:
    """The event functions of one app: the model and the download folder, shared by all sessions.

    Per-user data never lives here: it comes in and goes out as the ``gr.State`` session.
    """

    def __init__(self, model: PortraitGAN | None, load_error: str | None = None) -> None:
        self.model = model
        self.load_error = load_error or "no model was given"
        self.modalities = list(model.config.modalities) if model is not None else list(DEFAULT_MODALITIES)
        self.files = pipeline.OutputFiles()

    def _model(self) -> PortraitGAN:
        if self.model is None:
            raise gr.Error(no_model_message(self.load_error).replace("**", ""), print_exception=False)
        return self.model

    # --- views ------------------------------------------------------------------------------
    def _views(
        self, session: state.Session, source: str, target: str, overlay: bool, values: Sequence[float]
    ) -> tuple[Any, ...]:
        """(session, before/after, crop view, download, status) after running the edit."""
        rendered = pipeline.render(self._model(), session, state.controls_from_values(values), target)
        png = self.files.save_png(pipeline.download_image(session, rendered), session.name)
        return (
            session,
            pipeline.preview_pair(session, rendered, overlay),
            pipeline.crop_view(session, rendered.target),
            gr.update(value=str(png), interactive=True),
            self._status(session, source, target),
        )

    def _status(self, session: state.Session, source: str, target: str, note: str = "") -> str:
        faces = len(session.faces)
        parts = [f"Face {session.face + 1} of {faces}" if faces > 1 else "1 face"]
        parts.append(f"{source} \u2192 {target}" if source != target else f"{target}, expression only")
        if session.edits.moves:
            parts.append(f"{len(session.edits.moves)} point(s) moved")
        if session.reference is not None:
            parts.append("expression from the reference")
        return " \u00b7 ".join(parts) + (f"  \n{note}" if note else "")

    @staticmethod
    def _empty() -> tuple[Any, ...]:
        status = "Upload a portrait, use the webcam, or pick an example below."
        return None, None, None, gr.update(value=None, interactive=False), status

    # --- UI events (inputs: session, source, target, overlay, *sliders) ---------------------
    @_user_errors
    def photo_changed(self, image: Any, source: str, target: str, overlay: bool, *values: float) -> tuple:
        """A new photo (an upload payload, see :func:`upload_source`): detect its faces once, render."""
        photo = upload_source(image)
        if photo is None:
            return (gr.update(choices=[], value=None, visible=False), *self._empty())
        session = pipeline.open_photo(self._model(), photo, source)
        picker = gr.update(choices=state.face_choices(session.faces), value=0, visible=len(session.faces) > 1)
        if len(session.faces) > 1:
            gr.Info(f"{len(session.faces)} faces found: editing the largest; pick another under the photo.")
        return (picker, *self._views(session, source, target, overlay, values))

    @_user_errors
    def face_picked(self, session: state.Session | None, face: int | None, source: str, target: str,
                    overlay: bool, *values: float) -> tuple:
        if session is None or face is None:
            return (gr.skip(),) * 5
        return self._views(session.with_face(int(face)), source, target, overlay, values)

    @_user_errors
    def rerender(self, session: state.Session | None, source: str, target: str, overlay: bool,
                 *values: float) -> tuple:
        """Slider released, modality or overlay changed: same face, no detection."""
        if session is None:
            return (gr.skip(),) * 5
        return self._views(session, source, target, overlay, values)

    def source_changed(self, source: str, target: str) -> str:
        return state.target_for_source(source, target, self.modalities)

    @_user_errors
    def crop_clicked(self, event: gr.SelectData, session: state.Session | None, source: str, target: str,
                     overlay: bool, *values: float) -> tuple:
        """First click picks the nearest landmark, the second moves it there (view pixels -> crop pixels)."""
        if session is None:
            return (gr.skip(),) * 5
        crop_size = session.aligned.alignment.crop_size
        xy = state.view_to_crop(event.index, state.crop_view_scale(crop_size))
        points = pipeline.target_points(session, state.controls_from_values(values))
        edits, note = session.edits.click(points, xy, state.PICK_RADIUS * crop_size)
        moved = len(edits.undo_stack) > len(session.edits.undo_stack)
        session = session.with_edits(edits)
        if not moved:  # a point picked (or a miss): only the crop view changes, no model run
            view = pipeline.crop_view(session, points)
            return session, gr.skip(), view, gr.skip(), self._status(session, source, target, note)
        outputs = self._views(session, source, target, overlay, values)
        return (*outputs[:4], self._status(session, source, target, note))

    @_user_errors
    def undo(self, session: state.Session | None, source: str, target: str, overlay: bool, *values: float) -> tuple:
        if session is None:
            return (gr.skip(),) * 5
        edits, note = session.edits.undo()
        outputs = self._views(session.with_edits(edits), source, target, overlay, values)
        return (*outputs[:4], self._status(outputs[0], source, target, note))

    @_user_errors
    def reset(self, session: state.Session | None, source: str, target: str, overlay: bool) -> tuple:
        """Sliders to 0, moved points and reference dropped."""
        zeros = (0.0,) * len(EXPRESSION_NAMES)
        if session is None:
            return (*zeros, *(gr.skip(),) * 5)
        return (*zeros, *self._views(session.reset(), source, target, overlay, zeros))

    @_user_errors
    def use_reference(self, reference: Any, session: state.Session | None, source: str, target: str,
                      overlay: bool, *values: float) -> tuple:
        """Take on the expression of the reference photo's largest face (an upload payload)."""
        reference = upload_source(reference)
        if reference is None:
            raise gr.Error("Upload a reference photo first.", print_exception=False)
        if session is None:
            raise gr.Error("Upload the portrait to edit first.", print_exception=False)
        points = pipeline.reference_landmarks(self._model(), reference)
        return self._views(session.with_reference(points), source, target, overlay, values)

    @_user_errors
    def animate(self, session: state.Session | None, target: str, frames: float, *values: float) -> str:
        """A looping GIF from the face's own expression to the edited one, every frame rendered."""
        if session is None:
            raise gr.Error("Upload a portrait first.", print_exception=False)
        controls = state.controls_from_values(values)
        pictures = pipeline.animation_frames(self._model(), session, controls, target, int(frames))
        return str(pipeline.save_gif(pictures, self.files.path(f"{session.name}-portraitgan.gif")))

    # --- API endpoints ------------------------------------------------------------------------
    @_user_errors
    def api_edit(self, image: str | None, modality: str, face: float = 0, **controls: float) -> Any:
        """Edit one face of a photo: the full-resolution photo with the face re-rendered and pasted back.

        ``image``: the photo file. ``modality``: the target modality. ``face``: 0 = the largest.
        Expression controls by name (0 = unchanged).
        """
        if image is None:
            raise gr.Error("No image given.", print_exception=False)
        controls_ = state.controls_from_mapping(controls)
        return self._model().edit(image, modality=modality, face=int(face or 0), **controls_.to_dict())

    @_user_errors
    def api_landmarks(self, image: str | None) -> dict[str, Any]:
        """The faces of a photo, largest first: box and 68 landmarks (x, y) in photo pixels."""
        if image is None:
            raise gr.Error("No image given.", print_exception=False)
        photo = load_image(image)
        faces = pipeline.detect_faces(self.model, photo)
        if not faces:
            raise gr.Error(no_face_message(Path(image).name, faces), print_exception=False)
        return {
            "size": list(photo.size),
            "faces": [{"box": list(face.box), "landmarks": face.landmarks.round(2).tolist()} for face in faces],
        }


def _expression_sliders(per_row: int = 2) -> list[gr.Slider]:
    """One slider per expression control, in EXPRESSION_NAMES order, laid out ``per_row`` to a row."""
    sliders = []
    for start in range(0, len(EXPRESSION_NAMES), per_row):
        with gr.Row():
            for name in EXPRESSION_NAMES[start : start + per_row]:
                sliders.append(gr.Slider(*state.control_range(name), value=0.0, step=state.CONTROL_STEP,
                                         label=state.control_label(name), elem_id=f"slider-{name}"))
    return sliders


def build_demo(
    model: PortraitGAN | None,
    *,
    load_error: str | None = None,
    concurrency: int = 1,
    max_queue: int = QUEUE_MAX_SIZE,
) -> gr.Blocks:
    """The app for ``model``; with ``model=None`` it still starts and says how to give one.

    ``concurrency`` edits run at once (the CPU is the limit: 1 on two cores); at most ``max_queue``
    wait, further requests are refused with a "queue full" message.
    """
    handlers = Handlers(model, load_error)
    modalities = handlers.modalities
    default_target = state.target_for_source("photo", None, modalities)
    cpu = dict(concurrency_id=CPU_GROUP, api_visibility="private")

    with gr.Blocks(title="PortraitGAN Hub", delete_cache=(1800, SESSION_TTL_S)) as demo:
        session = gr.State(None, time_to_live=SESSION_TTL_S)
        gr.Markdown(
            "# PortraitGAN Hub\nChange a portrait's **expression** and its **modality** (photo, sketch, "
            "cartoon, ...) in one step: *PortraitGAN for Simultaneous Emotion and Modality Manipulation* "
            "(Duan et al.)."
        )
        if model is None:
            gr.Markdown(no_model_message(handlers.load_error), elem_id="model-missing")
        with gr.Row():
            with gr.Column(scale=1):
                image = gr.Image(
                    label="Portrait", type="filepath", image_mode=None, sources=["upload", "webcam", "clipboard"],
                    elem_id="input-image", height=360,
                )
                face = gr.Dropdown(label="Face", choices=[], visible=False, elem_id="face-picker")
                with gr.Row():
                    source = gr.Radio(modalities, value=default_target, label="Input is",
                                      info="A stylized input defaults the target to photo.")
                    target = gr.Dropdown(modalities, value=default_target, label="Turn into", elem_id="target")
                overlay = gr.Checkbox(label="Show the 68 landmarks on the before/after view", value=False)
                with gr.Accordion("Expression (applied when a slider is released)", open=True):
                    sliders = _expression_sliders()
                reset = gr.Button("Reset expression, moved points and reference")
            with gr.Column(scale=1):
                before_after = gr.ImageSlider(label="Before / after", type="pil", format="jpeg",
                                              interactive=False, elem_id="before-after", max_height=640)
                download = gr.DownloadButton("Download PNG (full resolution)", interactive=False, elem_id="download")
                status = gr.Markdown("Upload a portrait, use the webcam, or pick an example below.",
                                     elem_id="status")
                with gr.Accordion("Move single landmarks", open=True):
                    crop = gr.Image(label="Aligned face: click a point, then where it should go", type="pil",
                                    format="png", interactive=False, elem_id="crop-view", height=420)
                    undo = gr.Button("Undo")
                with gr.Accordion("Reference expression and animation", open=False):
                    reference = gr.Image(label="Reference photo", type="filepath", image_mode=None,
                                         sources=["upload", "webcam", "clipboard"], height=240)
                    use_reference = gr.Button("Take its expression")
                    frames = gr.Slider(4, 24, value=12, step=1, label="Animation frames")
                    animate = gr.Button("Animate: current \u2192 edited expression")
                    animation = gr.Image(label="Animation (GIF)", type="filepath", interactive=False)
        if EXAMPLES_DIR.is_dir():
            gr.Examples(sorted(str(p) for p in EXAMPLES_DIR.glob("*.jpg")), inputs=[image],
                        label="Examples (Face Research Lab London Set, CC-BY 4.0)")

        views = [session, before_after, crop, download, status]
        common = [session, source, target, overlay, *sliders]
        raw = dict(preprocess=False)  # uploads are read by load_image: see upload_source
        image.change(handlers.photo_changed, [image, source, target, overlay, *sliders], [face, *views], **raw, **cpu)
        face.input(handlers.face_picked, [session, face, source, target, overlay, *sliders], views, **cpu)
        for slider in sliders:
            slider.release(handlers.rerender, common, views, trigger_mode="always_last", **cpu)
        target.change(handlers.rerender, common, views, trigger_mode="always_last", **cpu)
        overlay.change(handlers.rerender, common, views, **cpu)
        source.input(handlers.source_changed, [source, target], target, api_visibility="private")
        crop.select(handlers.crop_clicked, common, views, **cpu)
        undo.click(handlers.undo, common, views, **cpu)
        reset.click(handlers.reset, [session, source, target, overlay], [*sliders, *views], **cpu)
        use_reference.click(handlers.use_reference, [reference, *common], views, **raw, **cpu)
        animate.click(handlers.animate, [session, target, frames, *sliders], animation, **cpu)

        # Stable API endpoints, on hidden components so that UI changes do not change them.
        api_image = gr.File(label="image", visible=False)
        api_face = gr.Number(value=0, precision=0, label="face", visible=False)
        api_result = gr.Image(label="edited", type="pil", format="png", visible=False)
        api_faces = gr.JSON(label="faces", visible=False)
        api_edit, api_landmarks = gr.Button(visible=False), gr.Button(visible=False)
        api_edit.click(handlers.api_edit, [api_image, target, api_face], api_result, api_name="edit",
                       inputs_kwargs=dict(zip(EXPRESSION_NAMES, sliders)), concurrency_id=CPU_GROUP)
        api_landmarks.click(handlers.api_landmarks, api_image, api_faces, api_name="landmarks",
                            concurrency_id=CPU_GROUP)
    demo.queue(default_concurrency_limit=concurrency, max_size=max_queue)
    return demo


def load_or_explain(model: str | None) -> tuple[PortraitGAN | None, str | None]:
    """The model named (or the default), or None and the reason it could not be loaded."""
    try:
        return load_model(model), None
    except (PortraitGANError, OSError, ValueError) as error:
        return None, str(error)


def launch(demo: gr.Blocks, *, host: str | None = None, port: int | None = None, share: bool = False,
           prevent_thread_lock: bool = False) -> Any:
    """``demo.launch`` with the app's theme, CSS and upload limit (gradio 6 takes them here)."""
    return demo.launch(
        server_name=host, server_port=port, share=share, prevent_thread_lock=prevent_thread_lock,
        max_file_size=MAX_FILE_SIZE, theme=gr.themes.Soft(), css=CSS,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portraitgan app", description="Start the PortraitGAN Hub Gradio app.")
    parser.add_argument("--model", help=f"Hub id or folder (default: ${MODEL_ENV}, then the embedded demo model)")
    parser.add_argument("--host", help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--share", action="store_true", help="also open a public *.gradio.live link (off by default)")
    parser.add_argument("--concurrency", type=int, default=1, help="edits run at once (default 1: CPU-bound)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    model, error = load_or_explain(args.model)
    if model is None:
        print(f"portraitgan app: no model loaded ({error}); the page explains how to give one")
    launch(build_demo(model, load_error=error, concurrency=args.concurrency),
           host=args.host, port=args.port, share=args.share)


if __name__ == "__main__":
    main()
