"""The app's page: every component in page order (its look, theme and CSS, is ``style.py``'s).

Inside :func:`blocks`, :func:`build_page` makes the page's components and returns them as a
:class:`Page`; ``app.py`` then wires their events to the handlers and adds the API endpoints on the
hidden components of :func:`build_api_components`. Every gradio component of the app is made here
except those of ``driving.py`` (the driving-video accordion) and ``file_inputs.py`` (the hidden
report of refused files).

The editing panel (:func:`build_editor`, wired by ``app.wire_editor``) is made with ``compat``'s
factories and builds under gradio 6, 4.40 and 3.41: the Stable Diffusion WebUI tab
(``portraitgan_hub_webui/tab.py``) is that panel. The rest of the page is gradio 6 only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from portraitgan_hub.faces.expressions import EXPRESSION_NAMES

if __package__:  # imported as a package: space.layout, or portraitgan_hub_space.layout
    from . import compat, driving, pipeline
    from . import session as state
    from .messages import READY, REFERENCE_ADDS, no_model_message
else:  # imported by app.py run as a script, as a Hugging Face Space does
    import compat  # type: ignore[no-redef]
    import driving  # type: ignore[no-redef]
    import pipeline  # type: ignore[no-redef]
    import session as state  # type: ignore[no-redef]
    from messages import READY, REFERENCE_ADDS, no_model_message  # type: ignore[no-redef]

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
#: A session's state (the photo, its faces) is dropped this long after its last use.
SESSION_TTL_S = 3600
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


def blocks() -> gr.Blocks:
    """The app's Blocks, to build the page in (``with blocks() as demo:``)."""
    # No usage analytics: the app runs offline and on users' photos.
    return gr.Blocks(title="PortraitGAN Hub", delete_cache=(1800, SESSION_TTL_S), analytics_enabled=False)


@dataclass(frozen=True)
class Editor:
    """The editing panel (:func:`build_editor`): the components that the app's page and the WebUI tab
    share, built from ``compat``'s factories so that gradio 6, 4.40 and 3.41 all build it."""

    session: gr.State
    photo_key: gr.State  # which upload the session is from
    side: gr.Number  # the preview's size (the app sets it on page load with PREVIEW_SIDE_JS)
    image: gr.Image
    face: gr.Dropdown
    source: gr.Radio
    target: gr.Dropdown
    style: gr.Slider
    view: gr.Radio
    overlay: gr.Checkbox
    sliders: list[gr.Slider]  # in EXPRESSION_NAMES order
    reset: gr.Button
    before_after: Any  # gr.ImageSlider in gradio 6 (see compat.before_after)
    status: gr.Markdown
    zoom: gr.Radio  # what the crop view shows: state.ZOOM_CHOICES
    crop: gr.Image
    undo: gr.Button
    dragging: gr.Checkbox  # hidden: set by the browser while a slider is dragged (compat.slider_renders)


@dataclass(frozen=True)
class Page(Editor):
    """The components of the page that its events read or write (see :func:`build_page`): the
    editing panel's, then the app's own."""

    download: gr.DownloadButton
    reference: gr.Image
    zero: gr.Checkbox
    strength: gr.Slider
    parts: gr.Radio
    use_reference: gr.Button
    drive: driving.DrivingBox
    fmt: gr.Radio
    fps: gr.Slider
    seconds: gr.Slider
    animate: gr.Button
    animation: gr.Image
    video: gr.Video

    @property
    def editor(self) -> Editor:
        """The page's editing panel."""
        return Editor(**{name: getattr(self, name) for name in Editor.__dataclass_fields__})


def build_editor(
    modalities: list[str],
    *,
    elem_prefix: str = "",
    above: Callable[[gr.Image], None] | None = None,
    below_result: Callable[[], None] | None = None,
    below_controls: Callable[[], None] | None = None,
    landmarks_open: bool = False,
    image_sources: Sequence[str] = ("upload", "webcam", "clipboard"),
    inline_photo: bool = False,
    ready: str = READY,
) -> Editor:
    """The editing panel, made inside the Blocks: in one column the photo, the face picker, "Input
    is" and "Turn into", the style strength, the result options, the expression sliders, Reset and
    the crop view to click points on (with its zoom and Undo); in the other the before/after view
    and the status line, which the app's page keeps in view beside the controls (``style.CSS``).

    ``elem_prefix`` goes before every elem_id (the WebUI tab's, so as not to meet the host's). The
    callers add their own parts inside the panel: ``above(image)`` before it (the image is not yet
    rendered: the app puts its examples there), ``below_result()`` under the status line,
    ``below_controls()`` at the end of the controls' column. ``inline_photo``: see
    ``compat.image_input``; ``ready``: the status line before the first photo.
    """
    ids = lambda name: f"{elem_prefix}{name}"  # noqa: E731
    default_target = state.target_for_source("photo", None, modalities)
    session = compat.state(None, time_to_live=SESSION_TTL_S)
    photo_key = compat.state(None, time_to_live=SESSION_TTL_S)  # which upload the session is from
    side = gr.Number(value=state.DEFAULT_PREVIEW_SIDE, visible=False, elem_id=ids("preview-side"))
    dragging = gr.Checkbox(value=False, visible=False, elem_id=ids("dragging"))
    image = compat.image_input(
        label="Portrait",
        type="filepath",
        image_mode=None,
        sources=list(image_sources),
        inline=inline_photo,
        elem_id=ids("input-image"),
        height=300,
        render=False,
    )
    if above is not None:
        above(image)
    with gr.Row(elem_id=ids("editor")):
        with gr.Column(scale=1, elem_id=ids("controls-col")):
            image.render()
            face = compat.choice_dropdown(label="Face", choices=[], visible=False, elem_id=ids("face-picker"))
            with gr.Row():
                source = gr.Radio(
                    modalities,
                    value=default_target,
                    label="Input is",
                    info="A stylized input defaults the target to photo.",
                    elem_id=ids("source"),
                )
                target = gr.Dropdown(modalities, value=default_target, label="Turn into", elem_id=ids("target"))
            style = gr.Slider(
                *state.STYLE_STRENGTH,
                value=1.0,
                step=0.05,
                label="Style strength",
                info="How far towards the target modality: 0 keeps the input's, 1 is the full style.",
                elem_id=ids("style-strength"),
            )
            with gr.Row(elem_id=ids("result-options")):
                view = gr.Radio(
                    list(state.VIEW_CHOICES),
                    value=state.WHOLE_PICTURE,
                    label="Result",
                    info="Portrait only: the aligned face at twice the model's size.",
                    elem_id=ids("result-view"),
                )
                overlay = gr.Checkbox(label="Show the 68 landmarks", value=False, elem_id=ids("overlay"))
            # Labels short enough for one line on a 390 px phone: a wrapped one's last word showed
            # alone under the result, like a control of its own.
            with gr.Accordion("Expression", open=True):
                gr.Markdown("Drag a slider, or use the arrow keys or type a value.", elem_classes=["slider-hint"])
                sliders = _expression_sliders(elem_prefix)
            reset = gr.Button("Reset to the uploaded photo", elem_id=ids("reset"))
            with gr.Accordion("Move single landmarks", open=landmarks_open, elem_id=ids("landmarks")):
                zoom = gr.Radio(
                    list(state.ZOOM_CHOICES),
                    value=state.WHOLE_FACE,
                    label="Zoom",
                    info="Click a point on the result's face, then where it should go. "
                    "A part enlarged has every point large enough to tap.",
                    elem_id=ids("crop-zoom"),
                )
                crop = compat.image_view(
                    label="The result's face: click a point, then where it should go",
                    show_label=False,
                    no_buttons=True,  # nothing over the picture's corner, where a point may be
                    type="pil",
                    format="jpeg",
                    interactive=False,
                    elem_id=ids("crop-view"),
                    height=420,
                )
                undo = gr.Button("Undo", elem_id=ids("undo") if elem_prefix else None)
            if below_controls is not None:
                below_controls()
        with gr.Column(scale=1, elem_id=ids("result-col")):
            before_after = compat.before_after(label="Before / after", elem_id=ids("before-after"), max_height=600)
            status = gr.Markdown(ready, elem_id=ids("status"))
            if below_result is not None:
                below_result()
    return Editor(
        session=session,
        photo_key=photo_key,
        side=side,
        image=image,
        face=face,
        source=source,
        target=target,
        style=style,
        view=view,
        overlay=overlay,
        sliders=sliders,
        reset=reset,
        before_after=before_after,
        status=status,
        zoom=zoom,
        crop=crop,
        undo=undo,
        dragging=dragging,
    )


def build_page(modalities: list[str], no_model: str | None = None) -> Page:
    """The page's components, made inside the Blocks. ``modalities``: the model's, in its order;
    ``no_model``: why no model is loaded (the page then says how to give one), None when one is.

    The editing panel is :func:`build_editor`'s; the page adds the title, the examples, the
    download, the reference expression, the driving video and the animation (gradio 6 only)."""
    extra: dict[str, Any] = {}

    def above(image: gr.Image) -> None:
        gr.Markdown(
            "# PortraitGAN Hub\nChange a portrait's **expression** and its **modality** (photo, sketch, "
            "cartoon, ...) in one step: *PortraitGAN for Simultaneous Emotion and Modality Manipulation* "
            "(Duan et al.)."
        )
        if no_model is not None:
            gr.Markdown(no_model_message(no_model), elem_id="model-missing")
        if EXAMPLES_DIR.is_dir():  # near the top; they fill the portrait box, whose change event runs the edit
            gr.Examples(
                sorted(str(p) for p in EXAMPLES_DIR.glob("*.jpg")),
                inputs=[image],
                label="Examples (Face Research Lab London Set, CC-BY 4.0)",
                examples_per_page=8,
            )

    def below_result() -> None:
        extra["download"] = gr.DownloadButton("Download PNG (full resolution)", interactive=False, elem_id="download")

    def below_controls() -> None:
        extra.update(_reference_driving_animation())

    editor = build_editor(modalities, above=above, below_result=below_result, below_controls=below_controls)
    fields = {name: getattr(editor, name) for name in Editor.__dataclass_fields__}
    return Page(**fields, **extra)


def _reference_driving_animation() -> dict[str, Any]:
    """The app's accordions below the crop view: the reference expression, the driving video, the
    animation (their components, by the :class:`Page` field names)."""
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
        zero = gr.Checkbox(label="Set the expression sliders to 0 when taking it", value=True, elem_id="reference-zero")
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
        animate = gr.Button("Animate the expression", elem_id="animate")
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
    return dict(
        reference=reference,
        zero=zero,
        strength=strength,
        parts=parts,
        use_reference=use_reference,
        drive=drive,
        fmt=fmt,
        fps=fps,
        seconds=seconds,
        animate=animate,
        animation=animation,
        video=video,
    )


@dataclass(frozen=True)
class ApiComponents:
    """The hidden components of the API endpoints, so that changes to the page do not change the API."""

    image: gr.File
    face: gr.Number
    portrait: gr.Checkbox
    result: gr.Image
    faces: gr.JSON
    edit: gr.Button
    landmarks: gr.Button


def build_api_components() -> ApiComponents:
    """The API endpoints' inputs and outputs beside the page's own (``/edit`` also reads the page's
    target, sliders, style strength and "Input is"), and one hidden button per endpoint."""
    api_image = gr.File(label="image", visible=False)
    api_face = gr.Number(value=0, precision=0, label="face", visible=False)
    api_portrait = gr.Checkbox(value=False, label="portrait", visible=False)
    api_result = gr.Image(label="edited", type="pil", format="png", visible=False)
    api_faces = gr.JSON(label="faces", visible=False)
    api_edit, api_landmarks = gr.Button(visible=False), gr.Button(visible=False)
    return ApiComponents(api_image, api_face, api_portrait, api_result, api_faces, api_edit, api_landmarks)


def _expression_sliders(elem_prefix: str = "") -> list[gr.Slider]:
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
                        elem_id=f"{elem_prefix}slider-{name}",
                        min_width=280,
                    )
    return [by_name[name] for name in EXPRESSION_NAMES]
