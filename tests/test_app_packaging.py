"""The app ships in the wheel, the Space folder is self-contained, and `portraitgan app` reaches it."""

from pathlib import Path

import pytest
import yaml

from portraitgan_hub.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "space"


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_explicit_package_list_misses_no_subpackage():
    setuptools = _pyproject()["tool"]["setuptools"]
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "portraitgan_hub").rglob("__init__.py")}
    assert found <= set(setuptools["packages"]), "add new subpackages to [tool.setuptools] packages"
    assert setuptools["package-dir"] == {"portraitgan_hub_space": "space"}
    assert "portraitgan_hub_space" in setuptools["packages"]


def test_space_front_matter_matches_the_gradio_it_is_built_for():
    front_matter = yaml.safe_load((SPACE / "README.md").read_text(encoding="utf-8").split("---")[1])
    assert front_matter["sdk"] == "gradio" and (SPACE / front_matter["app_file"]).is_file()
    extra = next(line for line in _pyproject()["project"]["optional-dependencies"]["space"] if "gradio" in line)
    assert f">={front_matter['sdk_version'].rsplit('.', 1)[0]}" in extra  # gradio>=6.31 for sdk 6.31.x
    assert front_matter["models"] == ["portraitgan-hub/portraitgan-london-lite"]
    assert len(front_matter["short_description"]) <= 60  # the Hub's limit
    assert "./portraitgan-hub[space]" in (SPACE / "requirements.txt").read_text().splitlines()


def test_examples_are_bundled_with_their_attribution():
    examples = sorted(path.name for path in (SPACE / "examples").glob("*.jpg"))
    attribution = (SPACE / "examples" / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert len(examples) >= 2 and "CC-BY 4.0" in attribution
    assert all(f"`{name}`" in attribution for name in examples)


def test_portraitgan_app_passes_its_options_to_the_app(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["app", "--help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    assert usage.startswith("usage: portraitgan app") and "--share" in usage and "--model" in usage
