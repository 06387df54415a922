"""The PortraitGAN Hub app: edit a portrait's expression and modality in the browser.

Run it with ``portraitgan app`` (or ``python space/app.py``); on a Hugging Face Space this file is
the ``app_file``. :func:`build_demo` makes the Blocks: the page of ``layout.py``, its events wired
here to the event functions of ``handlers.py`` (what the page says is in ``messages.py``). Gradio is
imported by these, ``uploads.py`` (file inputs take uploads only), ``file_inputs.py`` (what they
send, bad files) and ``driving.py`` (the driving-video upload): the picture work is in
``pipeline.py`` and the per-user state in ``session.py``. Nothing runs at import time;
:func:`main` parses the command line and launches.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

from portraitgan_hub.cli import Parser
from portraitgan_hub.default_model import MODEL_ENV, load_model
from portraitgan_hub.errors import PortraitGANError
from portraitgan_hub.faces.expressions import EXPRESSION_NAMES
from portraitgan_hub.model import PortraitGAN

if __package__:  # imported as a package: space.app, or portraitgan_hub_space.app once installed
    from . import compat, file_inputs, layout, uploads
    from .handlers import Handlers
    from .style import CSS, PREVIEW_SIDE_JS, theme
else:  # run as a script (`python app.py`), as a Hugging Face Space does
    import compat  # type: ignore[no-redef]
    import file_inputs  # type: ignore[no-redef]
    import layout  # type: ignore[no-redef]
    import uploads  # type: ignore[no-redef]
    from handlers import Handlers  # type: ignore[no-redef]
    from style import CSS, PREVIEW_SIDE_JS, theme  # type: ignore[no-redef]

#: Uploads above this are refused by gradio before any decoding; pixels are limited by load_image.
MAX_FILE_SIZE = "25mb"
#: Every event that runs the model or the detector shares one queue slot group: the CPU is the limit.
CPU_GROUP = "cpu"
QUEUE_MAX_SIZE = 32


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
    with layout.blocks() as demo:
        page = layout.build_page(handlers.modalities, None if model is not None else handlers.load_error)
        _wire_page(demo, page, handlers, concurrency)
        _wire_api(layout.build_api_components(), page, handlers, concurrency)
    uploads.guard_uploads(demo)  # every input takes uploads only; after the events and the Examples
    demo.queue(default_concurrency_limit=concurrency, max_size=max_queue)
    return demo


def _wire_page(demo: gr.Blocks, page: layout.Page, handlers: Handlers, concurrency: int) -> None:
    """The page's events, each calling its handler: the editing panel's (:func:`wire_editor`), then
    the reference, the driving video, the animation and the page-load scripts.

    The events that run the model or the detector share the queue's :data:`CPU_GROUP`, ``concurrency``
    at a time.
    """
    cpu = dict(concurrency_id=CPU_GROUP, concurrency_limit=concurrency, api_visibility="private")
    views = [page.session, page.before_after, page.crop, page.download, page.status]
    quiet = dict(show_progress="minimal", show_progress_on=[page.status])  # the old result stays; a timer only
    options = [page.source, page.target, page.style, page.overlay, page.view, page.strength, page.parts, page.side]
    common = [page.session, *options, page.zoom, *page.sliders]
    raw = dict(preprocess=False)  # uploads are read by load_image: see upload_source
    driven = [page.drive.result, page.drive.download]
    rendered = wire_editor(
        page.editor,
        handlers,
        download=page.download,
        options=options,
        reset_extras=[page.reference, page.animation, page.video, *driven],
        concurrency=concurrency,
    )
    rendered(
        page.use_reference.click(
            handlers.use_reference,
            [page.reference, page.zero, *common],
            [page.reference, *page.sliders, *views],
            **raw,
            **cpu,
            **quiet,
        )
    )
    page.drive.button.click(
        handlers.driving.drive,
        [
            page.drive.video,
            page.session,
            page.source,
            page.target,
            page.style,
            page.strength,
            page.parts,
            page.drive.audio,
        ],
        [*driven, page.status],
        **raw,
        **cpu,
    )
    file_inputs.add_refused_file_report(page.status)  # files the browser refuses: see REFUSED_FILES_JS
    page.animate.click(
        handlers.animate,
        [page.session, page.fmt, page.fps, page.seconds, *options, page.zoom, *page.sliders],
        [page.animation, page.video, page.status],
        **cpu,
    )
    demo.load(None, None, page.side, js=PREVIEW_SIDE_JS)
    demo.load(None, None, None, js=file_inputs.REFUSED_FILES_JS)
    demo.load(None, None, None, js=compat.POINTER_JS)  # which slider drags to skip: see compat.slider_renders


def wire_editor(
    editor: layout.Editor,
    handlers: Handlers,
    *,
    download: Any,
    options: Sequence[Any],
    reset_extras: Sequence[Any],
    concurrency: int = 1,
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None,
) -> Callable[[Any], None]:
    """The editing panel's events (``layout.build_editor``), under gradio 6, 4.40 and 3.41 alike
    (``compat.listen``); returns the function that follows an event with the download's PNG.

    ``download``: the component that gets the full-resolution PNG after each render (the app's
    download button; the WebUI tab's full-size result). ``options``: the components of
    ``handlers.OPTION_NAMES`` but the last, in order (the reference strength and parts and the
    preview side are the caller's; the crop view's zoom, the last, is the editor's).
    ``reset_extras``: the five outputs of Reset between the style strength and the views (the app's
    reference photo, animation GIF and MP4, driven video and its download; any five ``gr.State``
    where there are none). ``wrap``: put around every event function (the tab takes the host's
    model lock there). A slider renders once per drag where gradio can (``compat.slider_renders``).
    """
    wrap = wrap or (lambda fn: fn)
    cpu = dict(concurrency_id=CPU_GROUP, concurrency_limit=concurrency, api_visibility="private")
    views = [editor.session, editor.before_after, editor.crop, download, editor.status]
    quiet = dict(show_progress="minimal", show_progress_on=[editor.status])  # the old result stays; a timer only
    options = [*options, editor.zoom]
    common = [editor.session, *options, *editor.sliders]
    raw = dict(preprocess=False)  # uploads are read by load_image: see upload_source

    def rendered(event: Any) -> None:  # the PNG for the download is made after the preview is shown
        compat.listen(
            event.success,
            wrap(handlers.prepare_download),
            editor.session,
            download,
            show_progress="hidden",
            api_visibility="private",
            concurrency_id="files",
            concurrency_limit=1,
        )

    def listen(trigger: Any, fn: Callable[..., Any], inputs: Any, outputs: Any, **kwargs: Any) -> Any:
        return compat.listen(trigger, wrap(fn), inputs, outputs, **kwargs)

    # .change covers upload, webcam, clipboard, examples and clear (.input misses the webcam);
    # gradio repeats it for an upload, and photo_key makes the repeat a no-op.
    rendered(
        listen(
            editor.image.change,
            handlers.photo_changed,
            [editor.image, editor.photo_key, *options, *editor.sliders],
            [editor.image, editor.photo_key, editor.face, *views],
            **raw,
            **cpu,
            **quiet,
        )
    )
    rendered(
        listen(
            editor.face.input,
            handlers.face_picked,
            [editor.session, editor.face, *options, *editor.sliders],
            views,
            **cpu,
            **quiet,
        )
    )
    # A slider renders on release and on each arrow key or typed value (compat.slider_renders); an
    # option on .input. "always_last" keeps one job waiting at most: a held key does not queue dozens.
    strength, parts = (None if isinstance(c, gr.State) else c for c in options[5:7])  # the caller's, if shown
    always_last = dict(trigger_mode="always_last", **cpu, **quiet)
    for slider in (*editor.sliders, strength, editor.style):
        if slider is not None:
            fn = wrap(handlers.rerender)
            for event in compat.slider_renders(slider, fn, common, views, dragging=editor.dragging, **always_last):
                rendered(event)
    for control in (editor.target, editor.overlay, editor.view, parts):
        if control is not None:
            rendered(listen(control.input, handlers.rerender, common, views, **always_last))
    # Another zoom of the crop view: no model run, after any render that is on (the CPU group).
    listen(editor.zoom.input, handlers.zoom_changed, [editor.session, editor.zoom], [editor.crop, editor.status], **cpu)
    # Saying what the input is may change the target (a programmatic change: .input does not fire).
    rendered(
        compat.listen(
            listen(
                editor.source.input,
                handlers.source_changed,
                [editor.source, editor.target],
                editor.target,
                api_visibility="private",
            ).then,
            wrap(handlers.rerender),
            common,
            views,
            **cpu,
            **quiet,
        )
    )
    rendered(listen(editor.crop.select, handlers.crop_clicked, common, views, **cpu, **quiet))
    rendered(listen(editor.undo.click, handlers.undo, common, views, **cpu, **quiet))
    rendered(
        listen(
            editor.reset.click,
            handlers.reset,
            [editor.session, *options],
            [*editor.sliders, options[5], options[6], editor.target, editor.style, *reset_extras, *views],
            **cpu,
            **quiet,
        )
    )
    return rendered


def _wire_api(api: layout.ApiComponents, page: layout.Page, handlers: Handlers, concurrency: int) -> None:
    """The stable API endpoints ``/edit`` and ``/landmarks``, in the CPU group with the page's events."""
    api.edit.click(
        handlers.api_edit,
        [api.image, page.target, api.face],
        api.result,
        api_name="edit",
        # After the controls, so that calls made before these options existed mean the same.
        inputs_kwargs={
            **dict(zip(EXPRESSION_NAMES, page.sliders)),
            "modality_strength": page.style,
            "input_modality": page.source,
            "portrait": api.portrait,
        },
        concurrency_id=CPU_GROUP,
        concurrency_limit=concurrency,
    )
    landmarks = dict(api_name="landmarks", concurrency_id=CPU_GROUP, concurrency_limit=concurrency)
    api.landmarks.click(handlers.api_landmarks, api.image, api.faces, **landmarks)


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
    parser = Parser(prog="portraitgan app", description="Start the PortraitGAN Hub Gradio app.")  # one-line errors
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
