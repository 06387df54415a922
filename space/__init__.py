"""The PortraitGAN Hub Gradio app (``space/`` in the repository, ``portraitgan_hub_space`` once installed).

``app.py`` builds and launches the page: ``layout.py`` (the widgets), ``style.py`` (their look),
``handlers.py`` (the event functions), ``messages.py``, ``file_inputs.py``, ``uploads.py``,
``driving.py`` and ``compat.py`` (what differs between gradio 6, 4.40 and 3.41) use gradio;
``session.py`` (per-user state), ``pipeline.py`` (pictures, through the package's editor) and
``crop_zoom.py`` (the crop view to click points on) are plain Python, and ``command.py`` adds
``portraitgan app`` to the package's command line.
"""
