"""The app page's look: its theme, its CSS and the script that sizes the preview (gradio 6 only;
``app.launch`` hands them to gradio). The widgets are in ``layout.py``."""

from __future__ import annotations

import gradio as gr

#: A system font stack: the theme's web font is not loaded offline, and its fallback drew "E" as "Ɛ".
FONT = ("ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif")
MONO_FONT = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")

CSS = """
#crop-view img { cursor: crosshair; }
#model-missing { border: 2px solid #d97706; border-radius: 8px; padding: 0.5em 1em; }
#status { min-height: 2.6em; }
#status p { margin: 0; }
/* The result stays in view beside the controls while they scroll, the crop view's clicks included.
   The page container clips instead of hiding overflow: "hidden" makes it a scroll container, and
   sticky would stick to it, not the page. */
.gradio-container { overflow: clip !important; }
#result-col { position: sticky; top: 0; align-self: flex-start; z-index: 200; }
/* Phones: the result comes first and stays at the top, the controls scroll beneath it. */
@media (max-width: 720px) {
  #result-col { order: -1; background: var(--body-background-fill); padding-bottom: 4px; gap: 4px;
                box-shadow: 0 6px 8px -6px rgba(0, 0, 0, 0.25); }
  #before-after { height: 36vh !important; max-height: 36vh; }
  #before-after img { max-height: 36vh; object-fit: contain; }
  #download { padding: 4px; }
  /* The crop view fits the screen below the result: 36vh above it, the zoom choice, Undo. */
  #crop-view { height: auto !important; }
  #crop-view img { max-height: 40vh; object-fit: contain; }
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
