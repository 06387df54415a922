#!/usr/bin/env bash
# Two throw-away venvs with the Python packages of the Stable Diffusion WebUI hosts (issue 26), for
# running the package's core tests and tests/test_webui_*.py against the hosts' versions.
#
#   tests/webui_host/make_venvs.sh [a1111|forge|all]     (default: all)
#   tests/webui_host/make_venvs.sh test [a1111|forge|all] (run the tests in venvs made before)
#
# a1111: A1111 1.10 / reForge / Forge Classic: gradio 3.41.2 and its neighbours.
# forge: Forge / Forge Neo / reForge's gradio-4 branch: gradio 4.40.0 and its neighbours (the other
#        pins of Forge's requirements_versions.txt that our package shares: numpy, safetensors, httpx, tqdm).
#
# Each venv: torch first (pip must never pick another torch), then the host's pins, then this checkout
# with `pip install --no-deps -e .`, then only the dependencies of ours that the host lacks, constrained
# to what the host resolved (nothing of the host is upgraded). `pip freeze` of each lands in
# $VENV_ROOT/<name>/freeze.txt.
#
# torch: by default 2.13.0, the on-disk CPU wheel (fast, small). With HOST_TORCH=1 each venv gets its
# host's own torch from PyPI instead, the one the host's launch_utils.py installs: torch==2.1.2 (A1111
# 1.10) and torch==2.3.1 (Forge). Those are CUDA builds with their nvidia-* wheels (about 5.3 GB per
# venv on disk); they run on the CPU. This proves the package's torch floor (pyproject.toml):
#
#   HOST_TORCH=1 tests/webui_host/make_venvs.sh all && HOST_TORCH=1 tests/webui_host/make_venvs.sh test
#
# Environment: PYTHON (default python3.11), VENV_ROOT (default /tmp/portraitgan-host-venvs, or
# /tmp/portraitgan-host-torch with HOST_TORCH=1), HOST_TORCH (0 or 1), A1111_TORCH / FORGE_TORCH (the
# torch version of each venv, to try another one), PYTEST_ARGS (extra pytest arguments, e.g. "-x").
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PYTHON="${PYTHON:-python3.11}"
HOST_TORCH="${HOST_TORCH:-0}"
if [ "$HOST_TORCH" = "1" ]; then
    VENV_ROOT="${VENV_ROOT:-/tmp/portraitgan-host-torch}"
    A1111_TORCH="${A1111_TORCH:-2.1.2}"
    FORGE_TORCH="${FORGE_TORCH:-2.3.1}"
else
    VENV_ROOT="${VENV_ROOT:-/tmp/portraitgan-host-venvs}"
    A1111_TORCH="${A1111_TORCH:-2.13.0}"
    FORGE_TORCH="${FORGE_TORCH:-2.13.0}"
fi

# The host's own pins (what the host's requirements_versions.txt and launch step install).
A1111_PINS=(
    gradio==3.41.2 fastapi==0.94.0 "pydantic<2" httpx==0.24.1 Pillow==9.5.0 numpy==1.26.2 safetensors==0.4.2
    # A1111 pins transformers==4.30.2, which caps huggingface-hub below 1.0; without the cap pip would
    # give gradio 3.41 a hub release it predates.
    "huggingface-hub<1.0"
)
FORGE_PINS=(
    gradio==4.40.0 fastapi==0.104.1 pydantic==2.8.2 huggingface-hub==0.26.2 Pillow==9.5.0
    gradio_imageslider==0.0.20 numpy==1.26.2 safetensors==0.4.2 httpx==0.24.1 tqdm==4.66.1
)
# What our package needs besides torch, Pillow, numpy (pyproject's dependencies), plus the test runner.
OURS=(dlib-bin face_recognition_models tqdm pyyaml huggingface-hub safetensors)
TEST_TOOLS=(pytest)

make_venv() {
    local name="$1"
    local torch_version="$2"
    shift 2
    local venv="$VENV_ROOT/$name"
    echo "== $name: $venv"
    rm -rf "$venv"
    mkdir -p "$VENV_ROOT"
    "$PYTHON" -m venv "$venv"
    local pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check)
    "${pip[@]}" install "torch==$torch_version"
    # torch stays pinned through every later step.
    "${pip[@]}" install "torch==$torch_version" "$@"
    "$venv/bin/python" -m pip freeze --exclude-editable >"$venv/host-freeze.txt"
    "${pip[@]}" install --no-deps -e "$ROOT"
    # Only what is missing: a package the host already has is held at its version by the constraint.
    "${pip[@]}" install -c "$venv/host-freeze.txt" "${OURS[@]}" "${TEST_TOOLS[@]}"
    "$venv/bin/python" -m pip check || echo "($name: pip check found conflicts, listed above)"
    "$venv/bin/python" -m pip freeze --exclude-editable >"$venv/freeze.txt"
    echo "   resolved: $(grep -iE '^(torch|gradio|fastapi|pydantic|httpx|pillow|numpy|safetensors|huggingface[-_]hub|gradio_imageslider|starlette)==' "$venv/freeze.txt" | tr '\n' ' ')"
}

# The tests that prove the package's floors (no gradio-6 app in them) and the extension's tests.
CORE_TESTS=(
    tests/test_config.py
    tests/test_io_utils.py
    tests/test_hub.py
    tests/test_faces_landmarks.py
    tests/test_faces_landmark_map.py
    tests/test_faces_expressions.py
    tests/test_faces_alignment.py
    tests/test_faces_image_io.py
    tests/test_faces_data.py
    tests/test_expression_model.py
    tests/test_architecture.py
    tests/test_editing.py
    tests/test_composition.py
    tests/test_whole_picture.py
    tests/test_edit_many.py
    tests/test_clear_errors.py
    tests/test_cli.py
)
WEBUI_TESTS=(tests/test_webui_extension.py tests/test_webui_extras_routes.py tests/test_webui_tab.py
    tests/test_webui_install.py)

run_tests() {
    local name="$1"
    local venv="$VENV_ROOT/$name"
    echo "== tests in $name"
    # shellcheck disable=SC2086  # PYTEST_ARGS is a list of words
    (cd "$ROOT" && OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" "$venv/bin/python" -m pytest -q -p no:cacheprovider \
        -o addopts="" -m "not slow" ${PYTEST_ARGS:-} "${WEBUI_TESTS[@]}" "${CORE_TESTS[@]}")
}

which_venvs() {
    case "${1:-all}" in
    a1111) echo a1111 ;;
    forge) echo forge ;;
    all) echo a1111 forge ;;
    *)
        echo "unknown venv: $1 (a1111, forge or all)" >&2
        exit 2
        ;;
    esac
}

if [ "${1:-}" = "test" ]; then
    for name in $(which_venvs "${2:-all}"); do run_tests "$name"; done
    exit 0
fi
for name in $(which_venvs "${1:-all}"); do
    case "$name" in
    a1111) make_venv a1111 "$A1111_TORCH" "${A1111_PINS[@]}" ;;
    forge) make_venv forge "$FORGE_TORCH" "${FORGE_PINS[@]}" ;;
    esac
done
