"""A fake of the WebUI's ``launch.py`` (which re-exports ``modules/launch_utils.py``) for install.py tests.

Written by us from the hosts' behaviour, not copied. The hosts' ``run_pip(command, desc)`` runs
``"<python>" -m pip <command> --prefer-binary`` in a shell, prints ``Installing <desc>`` first, does
nothing under ``--skip-install``, and raises ``RuntimeError("Couldn't install <desc>.\\nCommand: ...")``
when pip fails; ``is_installed(package)`` asks ``importlib.metadata`` for the distribution, then
``importlib.util.find_spec`` for the module.

Here ``run_pip`` installs nothing: it records each call in :data:`pip_calls` (and appends it, as one
JSON line, to the file named by ``$PORTRAITGAN_FAKE_PIP_LOG`` when set, for a test that runs install.py
in a subprocess as the host does). A package named in :data:`fail` fails like pip would; any other is
added to :data:`installed`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import sys
from types import SimpleNamespace

python = sys.executable
index_url = os.environ.get("INDEX_URL", "")
args = SimpleNamespace(skip_install=False)

#: ``(command, desc)`` of each run_pip call, in order.
pip_calls: list[tuple[str, str | None]] = []
#: Package names whose install fails.
fail: set[str] = set()
#: Package names "installed" by run_pip.
installed: set[str] = set()

if os.environ.get("PORTRAITGAN_FAKE_PIP_LOG"):
    with open(os.environ["PORTRAITGAN_FAKE_PIP_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"imported": "launch"}) + "\n")


def run_pip(command: str, desc: str | None = None, live: bool = False) -> str | None:
    if args.skip_install:
        return None
    print(f"Installing {desc}")
    pip_calls.append((command, desc))
    if os.environ.get("PORTRAITGAN_FAKE_PIP_LOG"):
        with open(os.environ["PORTRAITGAN_FAKE_PIP_LOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps({"command": command, "desc": desc}) + "\n")
    names = [word for word in command.split()[1:] if not word.startswith("-")]
    failing = [name for name in names if name in fail]
    if failing:
        raise RuntimeError(
            f"Couldn't install {desc}.\n"
            f'Command: "{python}" -m pip {command} --prefer-binary\n'
            "Error code: 1\n"
            f"stdout: Collecting {failing[0]}\n"
            f"stderr: ERROR: Could not find a version that satisfies the requirement {failing[0]}\n"
            f"ERROR: No matching distribution found for {failing[0]}\n"
        )
    installed.update(names)
    return ""


def is_installed(package: str) -> bool:
    try:
        importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        try:
            return importlib.util.find_spec(package) is not None
        except ModuleNotFoundError:
            return False
    return True


def reset() -> None:
    pip_calls.clear()
    fail.clear()
    installed.clear()
    args.skip_install = False
