"""A fake of the Stable Diffusion WebUI's ``modules`` package, for PortraitGAN's extension tests.

Written by us from the hosts' documented behaviour (their docstrings and the code paths an extension
goes through), not copied: AUTOMATIC1111/stable-diffusion-webui 1.10 (gradio 3.41) and
lllyasviel/stable-diffusion-webui-forge (gradio 4.40), whose ``modules`` have the same extension API.
Each module names the host file it stands for. It keeps what an extension sees (names, call
signatures, the order and arguments of the calls, what the host catches and what it does not) and
drops the rest (the UI around it, the Stable Diffusion pipeline, saving).

Put ``tests/webui_host`` first on ``sys.path`` to use it; :func:`modules.scripts.load_scripts` loads an
extension's ``scripts/*.py`` the way the hosts do.
"""
