"""The PortraitGAN Hub Gradio app (``space/`` in the repository, ``portraitgan_hub_space`` once installed).

``app.py`` builds and launches the page: ``layout.py`` (the widgets), ``handlers.py`` (the event
functions), ``messages.py``, ``file_inputs.py``, ``uploads.py`` and ``driving.py`` use gradio;
``session.py`` (per-user state) and ``pipeline.py`` (pictures, through the package's editor) are plain
Python, and ``command.py`` adds ``portraitgan app`` to the package's command line.
"""
