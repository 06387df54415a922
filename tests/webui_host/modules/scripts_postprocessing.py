"""Fake of the WebUI's ``modules/scripts_postprocessing.py``: the Extras tab's postprocessing scripts.

Written by us from the hosts' behaviour, not copied. As in the hosts: a :class:`ScriptPostprocessing`
has a ``name`` and an ``order``; ``ui()`` builds its controls (inside a ``gr.Row`` of the Extras tab)
and returns a dict ``{argument name: component}``; for each image (single image, batch and batch
from folder alike) the host makes a :class:`PostprocessedImage` of it (RGB or RGBA) and calls
``process_firstpass(pp, **args)`` then ``process(pp, **args)`` of every script, with each component's
value under its name. A script edits ``pp.image`` in place and may add to ``pp.info`` (written into
the saved image's infotext). The host does **not** catch an exception from ``process``: it ends the
Extras run, and the image is not saved. ``create_args_for_run`` is how the API's
``/sdapi/v1/extra-single-image`` turns ``{script name: {argument: value}}`` into those arguments.
"""

from __future__ import annotations

from typing import Any


class PostprocessedImageSharedInfo:
    def __init__(self, target_width: int | None = None, target_height: int | None = None) -> None:
        self.target_width = target_width
        self.target_height = target_height


class PostprocessedImage:
    def __init__(self, image: Any) -> None:
        self.image = image
        self.info: dict[str, Any] = {}
        self.shared = PostprocessedImageSharedInfo()
        self.extra_images: list[Any] = []
        self.nametags: list[str] = []
        self.disable_processing = False
        self.caption = None

    def create_copy(self, new_image: Any, *, nametags: list[str] | None = None, disable_processing: bool = False):
        pp = PostprocessedImage(new_image)
        pp.shared = self.shared
        pp.nametags = self.nametags + list(nametags or [])
        pp.info = self.info.copy()
        pp.disable_processing = disable_processing
        return pp


class ScriptPostprocessing:
    filename = None
    controls = None
    args_from = None
    args_to = None
    order = 1000
    name = None
    group = None

    def ui(self) -> dict[str, Any]:
        return {}

    def process(self, pp: PostprocessedImage, **args: Any) -> None:
        return None

    def process_firstpass(self, pp: PostprocessedImage, **args: Any) -> None:
        return None

    def image_changed(self) -> None:
        return None


class ScriptPostprocessingRunner:
    def __init__(self) -> None:
        self.scripts: list[ScriptPostprocessing] | None = None
        self.ui_created = False

    def initialize_scripts(self, scripts_data: list[Any]) -> None:
        self.scripts = []
        for data in scripts_data:
            script = data.script_class()
            script.filename = data.path
            self.scripts.append(script)

    def scripts_in_preferred_order(self) -> list[ScriptPostprocessing]:
        from modules import shared

        if self.scripts is None:
            import modules.scripts

            self.initialize_scripts(modules.scripts.postprocessing_scripts_data)
        order = list(shared.opts.postprocessing_operation_order)
        skipped = set(shared.opts.postprocessing_disable_in_extras)
        kept = [script for script in self.scripts if script.name not in skipped]

        def score(script: ScriptPostprocessing) -> tuple:
            return (order.index(script.name) if script.name in order else len(kept), script.order, script.name)

        return sorted(kept, key=score)

    def setup_ui(self) -> list[Any]:
        """The Extras tab's controls, each script's in a ``gr.Row``; call inside a ``gr.Blocks``."""
        import gradio as gr

        inputs: list[Any] = []
        for script in self.scripts_in_preferred_order():
            with gr.Row() as group:
                script.args_from = len(inputs)
                script.controls = script.ui()
                inputs += list(script.controls.values())
                script.args_to = len(inputs)
            script.group = group
        self.ui_created = True
        return inputs

    def run(self, pp: PostprocessedImage, args: list[Any]) -> None:
        """Run every script on ``pp``; exceptions are not caught (as in the host)."""
        runs = []
        for script in self.scripts_in_preferred_order():
            values = args[script.args_from : script.args_to]
            runs.append((script, dict(zip(script.controls, values))))
        for script, values in runs:
            script.process_firstpass(pp, **values)
        for script, values in runs:
            if not pp.disable_processing:
                script.process(pp, **values)

    def create_args_for_run(self, scripts_args: dict[str, dict[str, Any]]) -> list[Any]:
        if not self.ui_created:
            import gradio as gr

            with gr.Blocks(analytics_enabled=False):
                self.setup_ui()
        scripts = self.scripts_in_preferred_order()
        args: list[Any] = [None] * max([script.args_to for script in scripts] or [0])
        for script in scripts:
            given = scripts_args.get(script.name)
            if given is not None:
                for i, name in enumerate(script.controls):
                    args[script.args_from + i] = given.get(name, None)
        return args
