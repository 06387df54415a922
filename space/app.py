"""The PortraitGAN Hub app: edit a portrait's expression and modality in the browser.

Run it with ``portraitgan app`` (or ``python space/app.py``); on a Hugging Face Space this file is
the ``app_file``. Gradio is imported here, in ``uploads.py`` (file inputs take uploads only),
``file_inputs.py`` (what they send, bad files) and ``driving.py`` (the driving-video upload): the
picture work is in ``pipeline.py`` and the per-user state in ``session.py``. Nothing runs at import time;
:func:`build_demo` makes the Blocks and :func:`main` parses the command line and launches.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from portraitgan_hub.config import DEFAULT_MODALITIES
from portraitgan_hub.default_model import MODEL_ENV, load_model
from portraitgan_hub.errors import PortraitGANError
from portraitgan_hub.faces.expressions import EXPRESSION_NAMES
from portraitgan_hub.faces.image_io import load_image
from portraitgan_hub.faces.landmarks import no_face_message
from portraitgan_hub.model import PortraitGAN

if __package__:  # imported as a package: space.app, or portraitgan_hub_space.app once installed
    from . import driving, file_inputs, pipeline, uploads
    from . import session as state
    from .file_inputs import error_status, payload_key, upload_source
else:  # run as a script (`python app.py`), as a Hugging Face Space does
    import driving  # type: ignore[no-redef]
    import file_inputs  # type: ignore[no-redef]
    import pipeline  # type: ignore[no-redef]
    import session as state  # type: ignore[no-redef]
    import uploads  # type: ignore[no-redef]
    from file_inputs import error_status, payload_key, upload_source  # type: ignore[no-redef]

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
#: Uploads above this are refused by gradio before any decoding; pixels are limited by load_image.
MAX_FILE_SIZE = "25mb"
#: Every event that runs the model or the detector shares one queue slot group: the CPU is the limit.
CPU_GROUP = "cpu"
QUEUE_MAX_SIZE = 32
#: A session's state (the photo, its faces) is dropped this long after its last use.
SESSION_TTL_S = 3600
READY = "Upload a portrait, use the webcam, or pick an example above."
#: Beside the reference photo, and on the status line when it is taken with sliders away from 0.
REFERENCE_ADDS = (
    "The reference's expression and the expression sliders **add up**: a smiling reference with Smile "
    "at 1 gives a doubled grin. Zero the sliders to take the reference's expression alone."
)
#: Slider groups, in layout order; a control not named here goes to a last group ("More").
SLIDER_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Mouth", ("smile", "mouth_open", "mouth_width", "aaa", "eee", "woo")),
    (
        "Eyes and brows",
        (
            "eye_open",
            "left_eye_open",
            "right_eye_open",
            "brow_raise",
            "left_brow_raise",
            "right_brow_raise",
            "brow_furrow",
        ),
    ),
    ("Head", ("roll", "face_slim")),
)
#: A system font stack: the theme's web font is not loaded offline, and its fallback drew "E" as "Ɛ".
FONT = ("ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif")
MONO_FONT = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")

CSS = """
#crop-view img { image-rendering: pixelated; cursor: crosshair; }
#model-missing { border: 2px solid #d97706; border-radius: 8px; padding: 0.5em 1em; }
#status { min-height: 2.6em; }
#status p { margin: 0; }
/* The result stays in view beside the controls while they scroll. The page container clips instead
   of hiding overflow: "hidden" makes it a scroll container, and sticky would stick to it, not the page. */
.gradio-container { overflow: clip !important; }
#result-col { position: sticky; top: 0; align-self: flex-start; z-index: 200; }
/* Phones: the result comes first and stays at the top, the controls scroll beneath it. */
@media (max-width: 720px) {
  #result-col { order: -1; background: var(--body-background-fill); padding-bottom: 4px; gap: 4px;
                box-shadow: 0 6px 8px -6px rgba(0, 0, 0, 0.25); }
  #before-after { height: 36vh !important; max-height: 36vh; }
  #before-after img { max-height: 36vh; object-fit: contain; }
  #download { padding: 4px; }
}
/* Slider end labels on every width. */
.slider_input_container .min_value, .slider_input_container .max_value { display: inline !important; }
"""

#: Run in the browser on page load: the before/after view's size in device pixels, for the preview.
PREVIEW_SIDE_JS = """() => {
  const view = document.querySelector('#before-after');
  const css = view ? Math.max(view.clientWidth, 480) : Math.min(window.innerWidth, 1024);
  return Math.round(css * (window.devicePixelRatio || 1));
}"""


def theme() -> gr.themes.Base:
    """The app's theme: Soft, with system fonts."""
    return gr.themes.Soft(font=list(FONT), font_mono=list(MONO_FONT))


def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """API endpoints: every failure a user can cause (bad file, no face, ...) is a gr.Error message."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (PortraitGANError, ValueError, OSError) as error:
            raise gr.Error(str(error), print_exception=False) from None

    return wrapper


def _status_errors(outputs: Callable[[Any, str], tuple]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """UI events: a failure a user can cause becomes ``outputs(handlers, status)``, one message in the
    status line; no component shows an error badge and the server keeps serving."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except gr.Error as error:
                message = str(error.message)
            except (PortraitGANError, ValueError, OSError) as error:
                message = str(error)
            return outputs(self, error_status(message))

        return wrapper

    return decorate


def no_model_message(reason: str) -> str:
    """What the page says when no model could be loaded, and how to give one."""
    return (
        f"**No model is loaded**: {reason}\n\n"
        "Give one with `portraitgan app --model HUB_ID_OR_FOLDER` or the environment variable "
        f"`{MODEL_ENV}` (on a Hugging Face Space: *Settings > Variables*). A model is a Hub repository "
        "or a folder with `config.json` and `model.safetensors`, as written by "
        "`PortraitGAN.save_pretrained`. Face detection and the `landmarks` API work without one."
    )


@dataclasses.dataclass(frozen=True)
class ViewOptions:
    """The inputs every render takes besides the session and the sliders (see :data:`OPTION_NAMES`)."""

    source: str
    target: str
    modality_strength: float = 1.0  # the "Style strength" slider
    overlay: bool = False
    view: str = state.WHOLE_PICTURE  # or state.PORTRAIT_ONLY
    reference_strength: float = 1.0
    reference_parts: str = "all"
    preview_side: float | None = None


#: The order of the option inputs after ``session`` in every render event; then one value per slider.
OPTION_NAMES = tuple(f.name for f in dataclasses.fields(ViewOptions))
_SKIP_VIEWS = lambda self, status: (gr.skip(), gr.skip(), gr.skip(), gr.skip(), status)  # noqa: E731


class Handlers:
    """The event functions of one app: the model and the download folder, shared by all sessions.

    Per-user data never lives here: it comes in and goes out as the ``gr.State`` session. Render
    events take ``(session, *options, *sliders)``: the :class:`ViewOptions` fields in order, then one
    value per expression control in ``EXPRESSION_NAMES`` order, and return the five *views*
    ``(session, before/after, crop view, download button, status)``.
    """

    def __init__(self, model: PortraitGAN | None, load_error: str | None = None) -> None:
        self.model = model
        self.load_error = load_error or "no model was given"
        self.modalities = list(model.config.modalities) if model is not None else list(DEFAULT_MODALITIES)
        self.files = pipeline.OutputFiles()
        self.driving = driving.DrivingVideo(self._model, self.files, self.modalities)

    def _model(self) -> PortraitGAN:
        if self.model is None:
            raise gr.Error(no_model_message(self.load_error).replace("**", ""), print_exception=False)
        return self.model

    @staticmethod
    def _split(args: Sequence[Any]) -> tuple[ViewOptions, tuple[float, ...]]:
        if len(args) != len(OPTION_NAMES) + len(EXPRESSION_NAMES):
            raise ValueError(
                f"expected {len(OPTION_NAMES)} options and {len(EXPRESSION_NAMES)} slider values, "
                f"got {len(args)} values"
            )
        options = ViewOptions(*args[: len(OPTION_NAMES)])
        return options, tuple(args[len(OPTION_NAMES) :])

    # --- views ------------------------------------------------------------------------------
    def _views(
        self, session: state.Session, options: ViewOptions, values: Sequence[float], note: str = ""
    ) -> tuple[Any, ...]:
        """(session, before/after, crop view, download, status) after running the edit.

        The before/after is a preview sized to the browser; the download button is disabled until
        :meth:`prepare_download` has written the full-resolution PNG of this render.
        """
        rendered = pipeline.render(
            self._model(),
            session,
            state.controls_from_values(values),
            options.target,
            portrait=state.portrait_view(options.view),
            reference_strength=float(options.reference_strength),
            reference_parts=options.reference_parts or "all",
            **self._modality(options),
        )
        session = session.with_last(rendered)
        side = state.preview_side(options.preview_side)
        return (
            session,
            pipeline.preview_pair(session, rendered, bool(options.overlay), side),
            pipeline.crop_view(session, rendered.target),
            gr.update(value=None, interactive=False),
            self._status(session, options, note),
        )

    @staticmethod
    def _modality(options: ViewOptions) -> dict[str, Any]:
        """The edit's ``input_modality`` ("Input is") and ``modality_strength`` ("Style strength")."""
        strength = 1.0 if options.modality_strength is None else float(options.modality_strength)
        return {"input_modality": options.source or None, "modality_strength": strength}

    def _status(self, session: state.Session, options: ViewOptions, note: str = "") -> str:
        faces = len(session.faces)
        source, target = options.source, options.target
        strength = self._modality(options)["modality_strength"]
        parts = [f"Face {session.face + 1} of {faces}" if faces > 1 else "1 face"]
        if source == target:
            parts.append(f"{target}, expression only")
        elif strength <= 0:
            parts.append(f"{source}, expression only (style strength 0)")
        else:
            style = "" if strength >= 1 else f" at {strength:.0%} style"
            parts.append(f"{source} \u2192 {target}{style}, whole picture converted")
        if session.edits.moves:
            parts.append(f"{len(session.edits.moves)} point(s) moved")
        if session.reference is not None:
            parts.append("expression from the reference")
        if state.portrait_view(options.view):
            side = 2 * session.aligned.alignment.crop_size
            parts.append(f"portrait only ({side} px)")
        return " \u00b7 ".join(parts) + (f"  \n{note}" if note else "")

    # --- UI events ------------------------------------------------------------------------------
    def photo_changed(self, image: Any, photo_key: str | None, *args: Any) -> tuple:
        """A new photo (an upload payload, see :func:`upload_source`): detect its faces once, render.

        Runs on every change of the portrait box (upload, webcam, clipboard, example, clear).
        ``photo_key`` is the :func:`payload_key` of the photo on screen (a ``gr.State``, read when
        the job runs; see ``file_inputs.FAILED_KEY``): gradio repeats the change event of an upload,
        and the repeat does nothing. Returns ``(portrait box, photo key, face picker, *views)``. A
        photo that cannot be used is one message on the status line; the photo being edited, if
        any, stays (in the box too), else the box is emptied (no broken image).
        """
        key = payload_key(image)
        if key is not None and key in (file_inputs.photo_on_screen(photo_key), file_inputs.failed_upload(photo_key)):
            return (gr.skip(),) * 8  # the same photo again: gradio's repeated event
        hidden = gr.update(choices=[], value=None, visible=False)
        empty = (None, None, None, gr.update(value=None, interactive=False))
        if key is None:
            if file_inputs.emptied_by_app(photo_key):  # emptied by us, after a failure
                kept = photo_key if file_inputs.photo_on_screen(photo_key) else None
                return (gr.skip(), kept, *(gr.skip(),) * 6)
            return (gr.skip(), None, hidden, *empty, READY)
        try:
            options, values = self._split(args)
            session = pipeline.open_photo(self._model(), upload_source(image), options.source or None)
            picker = gr.update(
                choices=state.face_choices(session.faces, session.photo.size), value=0, visible=len(session.faces) > 1
            )
            many = len(session.faces) > 1
            note = f"{len(session.faces)} faces found: editing the largest; pick another above." if many else ""
            return (gr.skip(), key, picker, *self._views(session, options, values, note))
        except gr.Error as error:
            message = str(error.message)
        except (PortraitGANError, ValueError, OSError) as error:
            message = str(error)
        box, photo_key = file_inputs.after_failed_upload(key, photo_key)
        if file_inputs.photo_on_screen(photo_key) is not None:  # the photo being edited stays, views and all
            return (box, photo_key, *(gr.skip(),) * 5, error_status(message))
        return (box, photo_key, hidden, *empty, error_status(message))

    @_status_errors(_SKIP_VIEWS)
    def face_picked(self, session: state.Session | None, face: int | None, *args: Any) -> tuple:
        if session is None or face is None:
            return (gr.skip(),) * 5
        options, values = self._split(args)
        return self._views(session.with_face(int(face)), options, values)

    @_status_errors(_SKIP_VIEWS)
    def rerender(self, session: state.Session | None, *args: Any) -> tuple:
        """A slider moved (mouse, keys or typed value), an option changed: same face, no detection."""
        if session is None:
            return (gr.skip(),) * 5
        options, values = self._split(args)
        return self._views(session, options, values)

    def source_changed(self, source: str, target: str) -> str:
        return state.target_for_source(source, target, self.modalities)

    @_status_errors(_SKIP_VIEWS)
    def crop_clicked(self, event: gr.SelectData, session: state.Session | None, *args: Any) -> tuple:
        """First click picks the nearest landmark, the second moves it there (view pixels -> crop pixels)."""
        if session is None:
            return (gr.skip(),) * 5
        options, values = self._split(args)
        crop_size = session.aligned.alignment.crop_size
        xy = state.view_to_crop(event.index, state.crop_view_scale(crop_size))
        controls = state.controls_from_values(values)
        points = pipeline.target_points(
            session, controls, float(options.reference_strength), options.reference_parts or "all"
        )
        edits, note = session.edits.click(points, xy, state.PICK_RADIUS * crop_size)
        moved = len(edits.undo_stack) > len(session.edits.undo_stack)
        session = session.with_edits(edits)
        if not moved:  # a point picked (or a miss): only the crop view changes, no model run
            view = pipeline.crop_view(session, points)
            return session, gr.skip(), view, gr.skip(), self._status(session, options, note)
        return self._views(session, options, values, note)

    @_status_errors(_SKIP_VIEWS)
    def undo(self, session: state.Session | None, *args: Any) -> tuple:
        if session is None:
            return (gr.skip(),) * 5
        options, values = self._split(args)
        edits, note = session.edits.undo()
        return self._views(session.with_edits(edits), options, values, note)

    def _reset_failed(self, status: str) -> tuple:
        return (*(gr.skip(),) * (len(EXPRESSION_NAMES) + 13), status)

    @_status_errors(_reset_failed)
    def reset(self, session: state.Session | None, *args: Any) -> tuple:
        """Everything back to the uploaded photo: sliders, moved points, reference and its settings,
        "Turn into" (the input's own modality) and the style strength (1), the animations. "Input
        is", the face picked and how the result is shown stay. Returns ``(*sliders, reference
        strength, reference parts, target, style strength, reference photo, animation GIF,
        animation video, driven video, its download, *views)``."""
        options, _ = self._split((*args, *(0.0,) * len(EXPRESSION_NAMES)))
        zeros = (0.0,) * len(EXPRESSION_NAMES)
        target = options.source if options.source in self.modalities else self.modalities[0]
        options = dataclasses.replace(
            options, target=target, modality_strength=1.0, reference_strength=1.0, reference_parts="all"
        )
        gone = gr.update(value=None, visible=False)
        cleared = (*zeros, 1.0, "all", target, 1.0, None, gone, gone, gone, gone)
        if session is None:
            return (*cleared, *(gr.skip(),) * 4, READY)
        return (*cleared, *self._views(session.reset(), options, zeros, "Back to the uploaded photo."))

    def _reference_failed(self, status: str) -> tuple:
        return (None, *(gr.skip(),) * len(EXPRESSION_NAMES), *_SKIP_VIEWS(self, status))

    @_status_errors(_reference_failed)
    def use_reference(self, reference: Any, zero: bool | None, session: state.Session | None, *args: Any) -> tuple:
        """Take on the expression of the reference photo's largest face (an upload payload).

        The reference and the sliders add up (a reference smile and Smile at 1 is a doubled grin):
        with ``zero`` the expression sliders are set to 0 first, else the status line says they add.
        Returns ``(reference box, *sliders, *views)``; a reference that cannot be used is cleared
        from its box and the sliders stay.
        """
        reference = upload_source(reference)
        if reference is None:
            raise gr.Error("Upload a reference photo first.", print_exception=False)
        if session is None:
            raise gr.Error("Upload the portrait to edit first.", print_exception=False)
        options, values = self._split(args)
        points = pipeline.reference_landmarks(self._model(), reference)
        if zero:
            values, note = (0.0,) * len(EXPRESSION_NAMES), "Expression sliders set to 0."
        else:  # the sliders stay, and add to the reference
            note = REFERENCE_ADDS if any(float(v or 0.0) for v in values) else ""
        sliders = values if zero else (gr.skip(),) * len(values)
        return (gr.skip(), *sliders, *self._views(session.with_reference(points), options, values, note))

    def prepare_download(self, session: state.Session | None) -> Any:
        """After a render: the full-resolution lossless PNG of it (ICC profile and EXIF kept)."""
        if session is None or session.last is None:
            return gr.update(value=None, interactive=False)
        png = self.files.save_png(pipeline.download_image(session, session.last), session.name)
        return gr.update(value=str(png), interactive=True)

    def _animate_failed(self, status: str) -> tuple:
        return gr.skip(), gr.skip(), status

    @_status_errors(_animate_failed)
    def animate(self, session: state.Session | None, fmt: str, fps: float, seconds: float, *args: Any) -> tuple:
        """A looping animation from the face's own expression to the edited one, every frame rendered.

        ``fmt``: "MP4" (H.264 through PyAV) or "GIF"; ``fps`` 4..30 frames per second; ``seconds``
        1..8, the length of one loop. Returns ``(GIF image, MP4 video, status)``.
        """
        if session is None:
            raise gr.Error("Upload a portrait first.", print_exception=False)
        if fmt not in pipeline.ANIMATION_FORMATS:
            raise ValueError(f"animation format must be one of {', '.join(pipeline.ANIMATION_FORMATS)}, got {fmt!r}")
        options, values = self._split(args)
        frames, hold = pipeline.animation_plan(float(fps), float(seconds))
        pictures = pipeline.animation_frames(
            self._model(),
            session,
            state.controls_from_values(values),
            options.target,
            frames,
            portrait=state.portrait_view(options.view),
            reference_strength=float(options.reference_strength),
            reference_parts=options.reference_parts or "all",
            **self._modality(options),
        )
        status = self._status(session, options, f"Animation: {frames} rendered frames, {fps:g} fps, {fmt}.")
        if fmt == "MP4":
            path = pipeline.save_mp4(pictures, self.files.path(f"{session.name}-portraitgan.mp4"), fps, hold)
            return gr.update(value=None, visible=False), gr.update(value=str(path), visible=True), status
        frame_ms = round(1000 / float(fps))
        path = pipeline.save_gif(
            pictures,
            self.files.path(f"{session.name}-portraitgan.gif"),
            frame_ms=frame_ms,
            hold_ms=frame_ms * (hold + 1),
        )
        return gr.update(value=str(path), visible=True), gr.update(value=None, visible=False), status

    # --- API endpoints ------------------------------------------------------------------------
    @_user_errors
    def api_edit(
        self,
        image: str | None,
        modality: str,
        face: float = 0,
        *,
        modality_strength: float | None = 1.0,
        input_modality: str | None = None,
        portrait: bool | None = False,
        **controls: float,
    ) -> Any:
        """Edit one face of a photo: the full-resolution photo with the face re-rendered and pasted back.

        ``image``: the photo file. ``modality``: the target modality; a change of modality converts
        the whole picture. ``face``: 0 = the largest. Expression controls by name (0 = unchanged).
        ``modality_strength`` (0..1, default 1): how far towards the target modality (0 keeps the
        input's). ``input_modality``: what the image is (default the model's first, ``photo``); a
        stylized image where no face is detected is converted to a photo to find it.
        ``portrait`` (default False): the aligned portrait at twice the model's size instead.
        """
        if image is None:
            raise gr.Error("No image given.", print_exception=False)
        controls_ = state.controls_from_mapping(controls)
        return self._model().edit(
            upload_source(image),
            modality=modality,
            face=int(face or 0),
            modality_strength=1.0 if modality_strength is None else float(modality_strength),
            input_modality=input_modality or None,
            portrait=bool(portrait),
            **controls_.to_dict(),
        )

    @_user_errors
    def api_landmarks(self, image: str | None) -> dict[str, Any]:
        """The faces of a photo, largest first: box and 68 landmarks (x, y) in photo pixels."""
        if image is None:
            raise gr.Error("No image given.", print_exception=False)
        photo = load_image(upload_source(image))
        faces = pipeline.detect_faces(self.model, photo)
        if not faces:
            raise gr.Error(no_face_message(Path(image).name, faces), print_exception=False)
        return {
            "size": list(photo.size),
            "faces": [{"box": list(face.box), "landmarks": face.landmarks.round(2).tolist()} for face in faces],
        }


def _expression_sliders() -> list[gr.Slider]:
    """One slider per expression control, grouped (:data:`SLIDER_GROUPS`), returned in EXPRESSION_NAMES order.

    Two to a row on a wide screen; each slider is at least 280 px wide, so on a phone they stack
    one to a row and keep their end labels.
    """
    grouped = [(title, [n for n in names if n in EXPRESSION_NAMES]) for title, names in SLIDER_GROUPS]
    placed = {name for _, names in grouped for name in names}
    rest = [name for name in EXPRESSION_NAMES if name not in placed]
    if rest:
        grouped.append(("More", rest))
    by_name: dict[str, gr.Slider] = {}
    for title, names in grouped:
        gr.Markdown(f"**{title}**", elem_classes=["slider-group"])
        for start in range(0, len(names), 2):
            with gr.Row():
                for name in names[start : start + 2]:
                    low, high, step = state.control_range(name)
                    by_name[name] = gr.Slider(
                        low,
                        high,
                        value=0.0,
                        step=step,
                        label=state.control_label(name),
                        elem_id=f"slider-{name}",
                        min_width=280,
                    )
    return [by_name[name] for name in EXPRESSION_NAMES]


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

    The Blocks can also be mounted as a tab of another app, API endpoints included::

        portrait = build_demo(model)
        with gr.Blocks() as host:
            with gr.Tab("Portrait"):
                portrait.render()
        launch(host)  # or host.launch(css=CSS, theme=theme())
    """
    handlers = Handlers(model, load_error)
    modalities = handlers.modalities
    default_target = state.target_for_source("photo", None, modalities)
    cpu = dict(concurrency_id=CPU_GROUP, concurrency_limit=concurrency, api_visibility="private")

    # No usage analytics: the app runs offline and on users' photos.
    with gr.Blocks(title="PortraitGAN Hub", delete_cache=(1800, SESSION_TTL_S), analytics_enabled=False) as demo:
        session = gr.State(None, time_to_live=SESSION_TTL_S)
        photo_key = gr.State(None, time_to_live=SESSION_TTL_S)  # which upload the session is from
        side = gr.Number(value=state.DEFAULT_PREVIEW_SIDE, visible=False, elem_id="preview-side")
        gr.Markdown(
            "# PortraitGAN Hub\nChange a portrait's **expression** and its **modality** (photo, sketch, "
            "cartoon, ...) in one step: *PortraitGAN for Simultaneous Emotion and Modality Manipulation* "
            "(Duan et al.)."
        )
        if model is None:
            gr.Markdown(no_model_message(handlers.load_error), elem_id="model-missing")
        image = gr.Image(
            label="Portrait",
            type="filepath",
            image_mode=None,
            sources=["upload", "webcam", "clipboard"],
            elem_id="input-image",
            height=300,
            render=False,
        )
        if EXAMPLES_DIR.is_dir():  # near the top; they fill the portrait box, whose change event runs the edit
            gr.Examples(
                sorted(str(p) for p in EXAMPLES_DIR.glob("*.jpg")),
                inputs=[image],
                label="Examples (Face Research Lab London Set, CC-BY 4.0)",
                examples_per_page=8,
            )
        with gr.Row(elem_id="editor"):
            with gr.Column(scale=1, elem_id="controls-col"):
                image.render()
                face = gr.Dropdown(label="Face", choices=[], visible=False, elem_id="face-picker")
                with gr.Row():
                    source = gr.Radio(
                        modalities,
                        value=default_target,
                        label="Input is",
                        info="A stylized input defaults the target to photo.",
                        elem_id="source",
                    )
                    target = gr.Dropdown(modalities, value=default_target, label="Turn into", elem_id="target")
                style = gr.Slider(
                    *state.STYLE_STRENGTH,
                    value=1.0,
                    step=0.05,
                    label="Style strength",
                    info="How far towards the target modality: 0 keeps the input's, 1 is the full style.",
                    elem_id="style-strength",
                )
                with gr.Row(elem_id="result-options"):
                    view = gr.Radio(
                        list(state.VIEW_CHOICES),
                        value=state.WHOLE_PICTURE,
                        label="Result",
                        info="Portrait only: the aligned face at twice the model's size.",
                        elem_id="result-view",
                    )
                    overlay = gr.Checkbox(label="Show the 68 landmarks", value=False, elem_id="overlay")
                with gr.Accordion("Expression (arrow keys and typed values apply too)", open=True):
                    sliders = _expression_sliders()
                reset = gr.Button("Reset: back to the uploaded photo", elem_id="reset")
            with gr.Column(scale=1, elem_id="result-col"):
                before_after = gr.ImageSlider(
                    label="Before / after",
                    type="pil",
                    format="jpeg",
                    interactive=False,
                    elem_id="before-after",
                    max_height=600,
                )
                status = gr.Markdown(READY, elem_id="status")
                download = gr.DownloadButton("Download PNG (full resolution)", interactive=False, elem_id="download")
        with gr.Row():
            with gr.Column():
                with gr.Accordion("Move single landmarks", open=False):
                    crop = gr.Image(
                        label="Aligned face: click a point, then where it should go",
                        type="pil",
                        format="jpeg",
                        interactive=False,
                        elem_id="crop-view",
                        height=420,
                    )
                    undo = gr.Button("Undo")
            with gr.Column():
                with gr.Accordion("Reference expression", open=False):
                    reference = gr.Image(
                        label="Reference photo",
                        type="filepath",
                        image_mode=None,
                        sources=["upload", "webcam", "clipboard"],
                        height=240,
                        elem_id="reference",
                    )
                    gr.Markdown(REFERENCE_ADDS, elem_id="reference-adds")
                    zero = gr.Checkbox(
                        label="Set the expression sliders to 0 when taking it", value=True, elem_id="reference-zero"
                    )
                    with gr.Row():
                        strength = gr.Slider(
                            *state.REFERENCE_STRENGTH,
                            value=1.0,
                            step=0.05,
                            label="Reference strength",
                            elem_id="reference-strength",
                        )
                        parts = gr.Radio(
                            list(state.REFERENCE_PART_CHOICES),
                            value="all",
                            label="Parts to take",
                            elem_id="reference-parts",
                        )
                    use_reference = gr.Button("Take its expression", elem_id="use-reference")
                drive = driving.driving_video_box()
                with gr.Accordion("Animation", open=False):
                    with gr.Row():
                        fmt = gr.Radio(list(pipeline.ANIMATION_FORMATS), value="MP4", label="Format")
                        fps = gr.Slider(*pipeline.FPS_RANGE, value=12, step=1, label="Frame rate (fps)")
                        seconds = gr.Slider(*pipeline.LENGTH_RANGE, value=2.0, step=0.5, label="Length (s)")
                    animate = gr.Button("Animate: current \u2192 edited expression", elem_id="animate")
                    animation = gr.Image(
                        label="Animation (GIF)",
                        type="filepath",
                        interactive=False,
                        visible=False,
                        elem_id="animation-gif",
                    )
                    video = gr.Video(
                        label="Animation (MP4)",
                        interactive=False,
                        visible=False,
                        autoplay=True,
                        loop=True,
                        elem_id="animation-mp4",
                    )

        views = [session, before_after, crop, download, status]
        quiet = dict(show_progress="minimal", show_progress_on=[status])  # the old result stays; a timer only
        options = [source, target, style, overlay, view, strength, parts, side]
        common = [session, *options, *sliders]
        raw = dict(preprocess=False)  # uploads are read by load_image: see upload_source

        def rendered(event: Any) -> None:  # the PNG for the download is made after the preview is shown
            event.success(
                handlers.prepare_download,
                session,
                download,
                show_progress="hidden",
                api_visibility="private",
                concurrency_id="files",
                concurrency_limit=1,
            )

        # .change covers upload, webcam, clipboard, examples and clear (.input misses the webcam);
        # gradio repeats it for an upload, and photo_key makes the repeat a no-op.
        rendered(
            image.change(
                handlers.photo_changed,
                [image, photo_key, *options, *sliders],
                [image, photo_key, face, *views],
                **raw,
                **cpu,
                **quiet,
            )
        )
        rendered(face.input(handlers.face_picked, [session, face, *options, *sliders], views, **cpu, **quiet))
        # .input fires on a mouse drag, each arrow key and a typed value + Enter; "always_last" keeps
        # one job waiting at most, so holding a key does not queue dozens.
        for control in (*sliders, strength, style):
            rendered(control.input(handlers.rerender, common, views, trigger_mode="always_last", **cpu, **quiet))
        for control in (target, overlay, view, parts):
            rendered(control.input(handlers.rerender, common, views, trigger_mode="always_last", **cpu, **quiet))
        # Saying what the input is may change the target (a programmatic change: .input does not fire).
        rendered(
            source.input(handlers.source_changed, [source, target], target, api_visibility="private").then(
                handlers.rerender, common, views, **cpu, **quiet
            )
        )
        rendered(crop.select(handlers.crop_clicked, common, views, **cpu, **quiet))
        rendered(undo.click(handlers.undo, common, views, **cpu, **quiet))
        driven = [drive.result, drive.download]
        rendered(
            reset.click(
                handlers.reset,
                [session, *options],
                [*sliders, strength, parts, target, style, reference, animation, video, *driven, *views],
                **cpu,
                **quiet,
            )
        )
        rendered(
            use_reference.click(
                handlers.use_reference, [reference, zero, *common], [reference, *sliders, *views], **raw, **cpu, **quiet
            )
        )
        drive.button.click(
            handlers.driving.drive,
            [drive.video, session, source, target, style, strength, parts, drive.audio],
            [*driven, status],
            **raw,
            **cpu,
        )
        file_inputs.add_refused_file_report(status)  # files the browser refuses: see REFUSED_FILES_JS
        animate.click(
            handlers.animate, [session, fmt, fps, seconds, *options, *sliders], [animation, video, status], **cpu
        )
        demo.load(None, None, side, js=PREVIEW_SIDE_JS)
        demo.load(None, None, None, js=file_inputs.REFUSED_FILES_JS)

        # Stable API endpoints, on hidden components so that UI changes do not change them.
        api_image = gr.File(label="image", visible=False)
        api_face = gr.Number(value=0, precision=0, label="face", visible=False)
        api_portrait = gr.Checkbox(value=False, label="portrait", visible=False)
        api_result = gr.Image(label="edited", type="pil", format="png", visible=False)
        api_faces = gr.JSON(label="faces", visible=False)
        api_edit, api_landmarks = gr.Button(visible=False), gr.Button(visible=False)
        api_edit.click(
            handlers.api_edit,
            [api_image, target, api_face],
            api_result,
            api_name="edit",
            # After the controls, so that calls made before these options existed mean the same.
            inputs_kwargs={
                **dict(zip(EXPRESSION_NAMES, sliders)),
                "modality_strength": style,
                "input_modality": source,
                "portrait": api_portrait,
            },
            concurrency_id=CPU_GROUP,
            concurrency_limit=concurrency,
        )
        landmarks = dict(api_name="landmarks", concurrency_id=CPU_GROUP, concurrency_limit=concurrency)
        api_landmarks.click(handlers.api_landmarks, api_image, api_faces, **landmarks)
    uploads.guard_uploads(demo)  # every input takes uploads only; after the events and the Examples
    demo.queue(default_concurrency_limit=concurrency, max_size=max_queue)
    return demo


def load_or_explain(model: str | None) -> tuple[PortraitGAN | None, str | None]:
    """The model named (or the default), or None and the reason it could not be loaded."""
    try:
        return load_model(model), None
    except (PortraitGANError, OSError, ValueError) as error:
        return None, str(error)


def launch(
    demo: gr.Blocks,
    *,
    host: str | None = None,
    port: int | None = None,
    share: bool = False,
    prevent_thread_lock: bool = False,
) -> Any:
    """``demo.launch`` with the app's theme, CSS and upload limit (gradio 6 takes them here).

    ``demo`` may also be a host app with :func:`build_demo`'s Blocks rendered in one of its tabs.
    """
    return demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        prevent_thread_lock=prevent_thread_lock,
        max_file_size=MAX_FILE_SIZE,
        theme=theme(),
        css=CSS,
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
    launch(
        build_demo(model, load_error=error, concurrency=args.concurrency),
        host=args.host,
        port=args.port,
        share=args.share,
    )


if __name__ == "__main__":
    main()
