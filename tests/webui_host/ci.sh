#!/usr/bin/env bash
# CI for the Stable Diffusion WebUI extension (issue 26), run by .ci/run after the main test suite:
# the two host venvs (tests/webui_host/make_venvs.sh), the extension's and the core tests in each,
# then the PortraitGAN tab driven in headless Chromium under each venv's gradio
# (tests/test_webui_browser.py; it fails rather than skips when a venv or the browser is missing).
# Prints how long each part took.
#
# Environment: as make_venvs.sh (VENV_ROOT, PYTHON, ...); WEBUI_CI_REUSE_VENVS=1 keeps venvs made
# before instead of making them again.
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$(date +%s)
if [ "${WEBUI_CI_REUSE_VENVS:-0}" != "1" ]; then
    bash tests/webui_host/make_venvs.sh
fi
made=$(date +%s)
bash tests/webui_host/make_venvs.sh test
tested=$(date +%s)
PORTRAITGAN_WEBUI_BROWSER_TESTS=required OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" \
    python -m pytest -q tests/test_webui_browser.py
finished=$(date +%s)
echo "WebUI CI: venvs $((made - started)) s, tests in the venvs $((tested - made)) s, tab in Chromium $((finished - tested)) s, in all $((finished - started)) s"
