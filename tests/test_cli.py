"""The `portraitgan` console script: exit codes and one-line reasons."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from portraitgan_hub import PortraitGAN, PortraitGANConfig
from portraitgan_hub.cli import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    PortraitGAN(PortraitGANConfig.preset("lite")).save_pretrained(folder)
    return folder


def test_edit_writes_a_full_resolution_image(model_dir, london_photo, tmp_path, capsys):
    photo, out = london_photo("005", "neutral"), tmp_path / "out.png"
    code = main(
        [
            "edit",
            str(photo),
            "-o",
            str(out),
            "--model",
            str(model_dir),
            "--smile",
            "0.8",
            "--left-eye-open",
            "-1",
            "--modality",
            "sketch",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert Image.open(out).size == Image.open(photo).size
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temporary files left


def test_portrait_strength_and_input_modality_options(model_dir, london_photo, tmp_path, capsys):
    """Issue #12's options: --portrait writes the 2x aligned square, --strength 0 keeps the photo,
    --from names the input's modality; bad values exit 2 with one line naming the option."""
    photo = london_photo("005", "neutral")
    out = tmp_path / "portrait.png"
    common = ["--model", str(model_dir), "--modality", "sketch"]
    assert main(["edit", str(photo), "-o", str(out), *common, "--portrait", "--strength", "0.5"]) == 0
    assert Image.open(out).size == (512, 512)
    kept = tmp_path / "kept.png"
    assert main(["edit", str(photo), "-o", str(kept), *common, "--strength", "0"]) == 0
    assert np.array_equal(np.asarray(Image.open(kept)), np.asarray(Image.open(photo).convert("RGB")))
    assert main(["edit", str(photo), "-o", str(tmp_path / "f.png"), *common, "--from", "cartoon"]) == 0
    capsys.readouterr()
    for bad in ("2", "-0.1", "nan"):
        with pytest.raises(SystemExit) as stopped:
            main(["edit", str(photo), "-o", str(tmp_path / "x.png"), *common, "--strength", bad])
        assert stopped.value.code == 2
        assert "argument --strength: invalid number in [0, 1] value" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
    assert main(["edit", str(photo), "-o", str(tmp_path / "y.png"), *common, "--from", "painting"]) == 2
    assert "painting" in capsys.readouterr().err


def test_landmarks_json_round_trips_into_edit(model_dir, london_photo, tmp_path, capsys):
    photo, json_path = london_photo("001", "smiling"), tmp_path / "points.json"
    assert main(["landmarks", str(photo), "-o", str(json_path)]) == 0
    document = json.loads(json_path.read_text())
    assert len(document["faces"]) == 1 and np.array(document["faces"][0]["landmarks"]).shape == (68, 2)
    out = tmp_path / "out.jpg"
    assert main(["edit", str(photo), "-o", str(out), "--model", str(model_dir), "--landmarks", str(json_path)]) == 0
    assert main(["landmarks", str(photo)]) == 0
    assert '"faces"' in capsys.readouterr().out


@pytest.mark.parametrize(
    "make_input, message",
    [
        (lambda p: p.write_text("not an image") or p, "not"),
        (lambda p: Image.new("RGB", (300, 300), "grey").save(p, "PNG") or p, "no face"),
    ],
)
def test_bad_input_exits_2_with_one_line(model_dir, tmp_path, capsys, make_input, message):
    source = make_input(tmp_path / "input.png")
    out = tmp_path / "out.png"
    code = main(["edit", str(source), "-o", str(out), "--model", str(model_dir)])
    err = capsys.readouterr().err
    assert code == 2 and message in err.lower() and err.count("\n") == 1
    assert not out.exists()


def test_missing_model_and_bad_face_index(model_dir, london_photo, tmp_path, capsys):
    photo = str(london_photo("005", "neutral"))
    assert main(["edit", photo, "-o", str(tmp_path / "o.png"), "--model", str(tmp_path / "nowhere")]) == 2
    assert "could not load" in capsys.readouterr().err
    assert main(["edit", photo, "-o", str(tmp_path / "o.png"), "--model", str(model_dir), "--face", "3"]) == 2
    assert "face index 3" in capsys.readouterr().err


def test_console_script_is_installed(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "portraitgan_hub.cli", "landmarks", str(tmp_path / "missing.jpg")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stderr.startswith("portraitgan landmarks: error:")
