"""The PortraitGAN Hub Gradio app (``space/`` in the repository, ``portraitgan_hub_space`` once installed).

``app.py`` is the only module that imports gradio; ``session.py`` and ``pipeline.py`` are plain Python.
"""
