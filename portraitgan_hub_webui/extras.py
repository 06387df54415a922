"""The Extras tab's postprocessing script (:class:`PortraitGANExtras`).

Enable, face, modality and its strength, the smile, mouth-open and eye-open sliders; it edits
``pp.image`` in place, keeping an alpha channel, in the host's single-image, batch and folder modes
alike. An edit that fails logs one line and leaves the image as it was: the host's run goes on.
"""

from typing import Any

import gradio as gr
from modules import scripts_postprocessing

from . import library, log, reason
from .settings import holder, settings

#: The sliders of the Extras script (all the expression controls are in the REST API).
EXTRAS_CONTROLS = ("smile", "mouth_open", "eye_open")


def number(value: Any, default: float) -> float:
    """``value`` as a float; ``default`` for ``None`` or what is not a number."""
    try:
        return default if value is None else float(value)
    except (TypeError, ValueError):
        return default


def extras_options(face: Any, modality: Any, modality_strength: Any, controls: dict) -> dict | None:
    """The Extras controls' values (``None`` for one the host did not set) as :func:`library.edit`'s
    options, or ``None`` when they change nothing."""
    values = {name: number(controls.get(name), 0.0) for name in EXTRAS_CONTROLS}
    options = {name: value for name, value in values.items() if value != 0.0}
    strength = number(modality_strength, 1.0)
    modalities = library.modalities(settings()[0])
    if modality and modality != modalities[0] and strength > 0:
        options["modality"] = modality
        options["modality_strength"] = strength
    if not options:
        return None
    options["face"] = int(number(face, 0))
    return options


class PortraitGANExtras(scripts_postprocessing.ScriptPostprocessing):
    """Extras tab: edit one face's expression and modality (single image, batch and folder modes)."""

    name = "PortraitGAN"
    order = 20000

    def ui(self) -> dict:
        """The script's controls, by the names :meth:`process` takes them."""
        library_ok = library.LIBRARY_ERROR is None
        modalities = library.modalities(settings()[0]) if library_ok else ["photo"]
        with gr.Accordion("PortraitGAN", open=False):
            enable = gr.Checkbox(False, label="Enable PortraitGAN", elem_id="portraitgan_extras_enable")
            with gr.Row():
                face = gr.Number(0, label="Face (0 = the largest)", precision=0, elem_id="portraitgan_extras_face")
                modality = gr.Dropdown(
                    choices=modalities, value=modalities[0], label="Modality", elem_id="portraitgan_extras_modality"
                )
                strength = gr.Slider(
                    0.0, 1.0, value=1.0, step=0.05, label="Modality strength", elem_id="portraitgan_extras_strength"
                )
            sliders = {}
            with gr.Row():
                for name in EXTRAS_CONTROLS:
                    low, high = library.control_range(name) if library_ok else (-1.5, 1.5)
                    sliders[name] = gr.Slider(
                        low, high, value=0.0, step=0.05, label=name.replace("_", " ").capitalize(),
                        elem_id=f"portraitgan_extras_{name}",
                    )  # fmt: skip
        return {"enable": enable, "face": face, "modality": modality, "modality_strength": strength, **sliders}

    def process(
        self,
        pp: Any,
        enable: bool = False,
        face: Any = 0,
        modality: Any = None,
        modality_strength: Any = 1.0,
        **controls: Any,
    ) -> None:
        """Edit ``pp.image`` (and note the edit in ``pp.info``) when enabled and something changes."""
        if not enable:
            return
        if library.LIBRARY_ERROR is not None:
            log.warning("PortraitGAN: image left unchanged: %s", reason(library.LIBRARY_ERROR))
            return
        try:
            options = extras_options(face, modality, modality_strength, controls)
            if options is None:
                return
            model = holder.get()
            with holder.lock:
                edited = library.edit(model, pp.image, options)
        except Exception as error:  # the host does not catch here: an exception would end its Extras run
            log.warning("PortraitGAN: image left unchanged: %s", reason(error))
            return
        pp.image = edited
        pp.info["PortraitGAN"] = ", ".join(f"{name} {value}" for name, value in options.items())
