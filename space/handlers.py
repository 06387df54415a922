"""The app's event functions: one :class:`Handlers` per app, whose methods every event of the page calls.

``layout.py`` builds the page and ``app.py`` wires its events to these methods. The picture work is
in ``pipeline.py`` and the per-user state in ``session.py``; what the page says, and how a failure
becomes one message, in ``messages.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from portraitgan_hub.config import DEFAULT_MODALITIES
from portraitgan_hub.edit_request import EditRequest
from portraitgan_hub.edit_warnings import app_wording
from portraitgan_hub.editor import FaceEditor
from portraitgan_hub.errors import PortraitGANError
from portraitgan_hub.faces.expressions import EXPRESSION_NAMES
from portraitgan_hub.faces.image_io import load_image
from portraitgan_hub.faces.landmarks import default_detector, no_face_message
from portraitgan_hub.model import PortraitGAN

if __package__:  # imported as a package: space.handlers, or portraitgan_hub_space.handlers
    from . import crop_zoom, driving, file_inputs, messages, pipeline
    from . import session as state
    from .file_inputs import error_status, payload_key, upload_source
    from .messages import READY, REFERENCE_ADDS, no_model_message, status_errors, user_errors
else:  # imported by app.py run as a script, as a Hugging Face Space does
    import crop_zoom  # type: ignore[no-redef]
    import driving  # type: ignore[no-redef]
    import file_inputs  # type: ignore[no-redef]
    import messages  # type: ignore[no-redef]
    import pipeline  # type: ignore[no-redef]
    import session as state  # type: ignore[no-redef]
    from file_inputs import error_status, payload_key, upload_source  # type: ignore[no-redef]
    from messages import READY, REFERENCE_ADDS, no_model_message, status_errors, user_errors  # type: ignore[no-redef]


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
    zoom: str | None = state.WHOLE_FACE  # what the crop view shows, one of state.ZOOM_CHOICES


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
        """(options, slider values) of a render event's inputs; the last option, the zoom, may be left out."""
        count = len(args) - len(EXPRESSION_NAMES)
        if count not in (len(OPTION_NAMES), len(OPTION_NAMES) - 1):
            raise ValueError(
                f"expected {len(OPTION_NAMES)} options and {len(EXPRESSION_NAMES)} slider values, "
                f"got {len(args)} values"
            )
        return ViewOptions(*args[:count]), tuple(args[count:])

    # --- views ------------------------------------------------------------------------------
    def _views(
        self, session: state.Session, options: ViewOptions, values: Sequence[float], note: str = ""
    ) -> tuple[Any, ...]:
        """(session, before/after, crop view, download, status) after running the edit.

        The before/after is a preview sized to the browser; the download button is disabled until
        :meth:`prepare_download` has written the full-resolution PNG of this render. The status line
        says ``note``, then each of the plan's warnings (``EditPlan.warnings``, in the app's words),
        one line each; they are read from the plan, not caught, as catching warnings is not
        thread-safe and the app serves several sessions at once.
        """
        editor = self._editor()
        rendered = pipeline.plan_and_render(editor, session, self._request(session, options, values))
        note = "  \n".join([*([note] if note else []), *map(app_wording, rendered.plan.warnings)])
        side = state.preview_side(options.preview_side)
        pair, shown = pipeline.preview_views(editor, session, rendered, bool(options.overlay), side)
        key = self._screen_key(session, options, values)
        session = session.with_last(dataclasses.replace(rendered, shown=shown, key=key))
        return (
            session,
            pair,
            pipeline.crop_view(session, rendered.target, options.zoom),
            gr.update(value=None, interactive=False),
            self._status(session, options, note),
        )

    @staticmethod
    def _screen_key(session: state.Session, options: ViewOptions, values: Sequence[float | None]) -> tuple:
        """What the screen asks for: the options, the sliders, the face, reference and moved points."""
        moves = tuple(sorted(session.edits.moves.items()))
        return (dataclasses.astuple(options), tuple(values), session.face, id(session.reference), moves)

    def _editor(self) -> FaceEditor:
        return self._model().face_editor

    @staticmethod
    def _strength(options: ViewOptions) -> float:
        """The "Style strength" slider's value (an empty slider counts as 1)."""
        return 1.0 if options.modality_strength is None else float(options.modality_strength)

    @classmethod
    def _request(cls, session: state.Session, options: ViewOptions, values: Sequence[float | None]) -> EditRequest:
        """The edit the screen asks for: the options, the sliders, the session's face, reference and moves."""
        return EditRequest(
            modality=options.target,
            input_modality=options.source or None,
            modality_strength=cls._strength(options),
            face=session.face,
            controls=state.controls_from_values(values),
            reference=session.reference,
            reference_strength=float(options.reference_strength),
            reference_parts=options.reference_parts or "all",
            moves=session.edits.moves,
            output="portrait" if state.portrait_view(options.view) else "photo",
        )

    def _status(self, session: state.Session, options: ViewOptions, note: str = "") -> str:
        strength, portrait = self._strength(options), state.portrait_view(options.view)
        return messages.status_line(session, options.source, options.target, strength, portrait, note)

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
            session = pipeline.open_photo(self._editor(), upload_source(image), options.source or None)
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

    @status_errors(_SKIP_VIEWS)
    def face_picked(self, session: state.Session | None, face: int | None, *args: Any) -> tuple:
        if session is None or face is None:
            return (gr.skip(),) * 5
        options, values = self._split(args)
        return self._views(session.with_face(self._editor().choose_face(session.prepared, int(face))), options, values)

    @status_errors(_SKIP_VIEWS)
    def rerender(self, session: state.Session | None, *args: Any) -> tuple:
        """A slider moved (mouse, keys or typed value), an option changed: same face, no detection.
        What is on the screen already (a slider's release after its last input event) renders nothing."""
        if session is None:
            return (gr.skip(),) * 5
        options, values = self._split(args)
        if session.last is not None and session.last.key == self._screen_key(session, options, values):
            return (gr.skip(),) * 5
        return self._views(session, options, values)

    def source_changed(self, source: str, target: str) -> str:
        return state.target_for_source(source, target, self.modalities)

    @status_errors(_SKIP_VIEWS)
    def crop_clicked(self, event: gr.SelectData, session: state.Session | None, *args: Any) -> tuple:
        """First click picks the landmark whose dot is nearest, the second moves it there (view pixels
        -> crop pixels, through the zoom the view shows)."""
        if session is None:
            return (gr.skip(),) * 5
        options, values = self._split(args)
        points = self._editor().plan(session.prepared, self._request(session, options, values)).target
        zoom = pipeline.crop_zoom_of(session, points, options.zoom)
        dots, radius = crop_zoom.pick_points(zoom, points)
        edits, note = session.edits.click(dots, zoom.to_crop(event.index), radius)
        moved = len(edits.undo_stack) > len(session.edits.undo_stack)
        session = session.with_edits(edits)
        if not moved:  # a point picked (or a miss): only the crop view changes, no model run
            return self._crop_only(session, options, points, note)
        return self._views(session, options, values, note)

    def _crop_only(self, session: state.Session, options: ViewOptions, target: Any, note: str) -> tuple:
        """The views when only the crop view changes (a pick, a miss, a pick cancelled): no model run."""
        view = pipeline.crop_view(session, target, options.zoom)
        return session, gr.skip(), view, gr.skip(), self._status(session, options, note)

    @status_errors(lambda self, status: (gr.skip(), status))
    def zoom_changed(self, session: state.Session | None, zoom: str | None) -> tuple:
        """The crop view shows another part (``state.ZOOM_CHOICES``) of the result on screen; no model
        run. Returns ``(crop view, status)``."""
        if session is None or session.last is None:
            return gr.skip(), gr.skip()
        return pipeline.crop_view(session, session.last.target, zoom), gr.skip()

    @status_errors(_SKIP_VIEWS)
    def undo(self, session: state.Session | None, *args: Any) -> tuple:
        """The last move undone (a render), or a pending pick cancelled (only the crop view changes)."""
        if session is None:
            return (gr.skip(),) * 5
        options, values = self._split(args)
        edits, note = session.edits.undo()
        if session.edits.picked is not None and session.last is not None:
            return self._crop_only(session.with_edits(edits), options, session.last.target, note)
        return self._views(session.with_edits(edits), options, values, note)

    def _reset_failed(self, status: str) -> tuple:
        return (*(gr.skip(),) * (len(EXPRESSION_NAMES) + 13), status)

    @status_errors(_reset_failed)
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

    @status_errors(_reference_failed)
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
        picture = load_image(reference)
        self._editor().reference_landmarks(picture)  # a reference without a face fails here, once
        if zero:
            values, note = (0.0,) * len(EXPRESSION_NAMES), "Expression sliders set to 0."
        else:  # the sliders stay, and add to the reference
            note = REFERENCE_ADDS if any(float(v or 0.0) for v in values) else ""
        sliders = values if zero else (gr.skip(),) * len(values)
        return (gr.skip(), *sliders, *self._views(session.with_reference(picture), options, values, note))

    def prepare_download(self, session: state.Session | None) -> Any:
        """After a render: the full-resolution lossless PNG of it (ICC profile and EXIF kept)."""
        if session is None or session.last is None:
            return gr.update(value=None, interactive=False)
        png = self.files.save_png(pipeline.download_image(self._editor(), session, session.last), session.name)
        return gr.update(value=str(png), interactive=True)

    def _animate_failed(self, status: str) -> tuple:
        return gr.skip(), gr.skip(), status

    @status_errors(_animate_failed)
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
        pictures = pipeline.animation_frames(self._editor(), session, self._request(session, options, values), frames)
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
    @user_errors
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
        request = EditRequest(
            modality=modality,
            input_modality=input_modality or None,
            modality_strength=1.0 if modality_strength is None else float(modality_strength),
            face=int(face or 0),
            controls=state.controls_from_mapping(controls),
            output="portrait" if portrait else "photo",
        )
        return self._model().edit(upload_source(image), request)

    @user_errors
    def api_landmarks(self, image: str | None) -> dict[str, Any]:
        """The faces of a photo, largest first: box and 68 landmarks (x, y) in photo pixels."""
        if image is None:
            raise gr.Error("No image given.", print_exception=False)
        photo = load_image(upload_source(image))
        faces = self.model.face_editor.faces(photo) if self.model is not None else default_detector().detect(photo)
        if not faces:
            raise gr.Error(no_face_message(Path(image).name, faces), print_exception=False)
        return {
            "size": list(photo.size),
            "faces": [{"box": list(face.box), "landmarks": face.landmarks.round(2).tolist()} for face in faces],
        }
