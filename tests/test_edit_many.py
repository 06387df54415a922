"""Many photos at once (issue #14, item 9): ``portraitgan edit A B ... -o OUTDIR/``, ``--input-dir``, and
``model.edit_many``. A photo that fails is reported and skipped, the others go on; exit status 2 if any
failed; output names never overwrite an input; the model and the detector load once."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import portraitgan_hub.default_model as default_model
import portraitgan_hub.faces.landmarks as landmarks
from portraitgan_hub.cli import main
from portraitgan_hub.errors import ImageLoadError, NoFaceError


@pytest.fixture()
def photo_dir(tmp_path, london_photo) -> Path:
    """Two London photos, a photo without a face and a file that is not an image."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(london_photo("005", "neutral"), folder / "a.jpg")
    shutil.copy(london_photo("005", "smiling"), folder / "b.jpg")
    Image.new("RGB", (320, 240), (118, 124, 130)).save(folder / "c_empty.png")
    (folder / "d_broken.jpg").write_bytes(b"this is not a JPEG")
    (folder / "notes.txt").write_text("not an image suffix: --input-dir skips it")
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_several_photos_into_a_folder_with_failures_reported(
    photo_dir, lite_model_dir, tmp_path, capsys, monkeypatch
) -> None:
    loads, detectors = [], []
    real_load = default_model.load_model
    monkeypatch.setattr(default_model, "load_model", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    real_init = landmarks.LandmarkDetector.__init__
    monkeypatch.setattr(
        landmarks.LandmarkDetector, "__init__", lambda *a, **k: detectors.append(a) or real_init(*a, **k)
    )
    landmarks.default_detector.cache_clear()
    inputs = [photo_dir / name for name in ("a.jpg", "c_empty.png", "d_broken.jpg", "b.jpg")]
    out = tmp_path / "out"
    code = main(["edit", *map(str, inputs), "-o", f"{out}/", "--model", str(lite_model_dir), "--smile", "0.6"])
    captured = capsys.readouterr()
    assert code == 2  # some photos failed
    assert len(loads) == 1 and len(detectors) == 1  # the model and the face detector load once
    assert sorted(p.name for p in out.iterdir()) == ["a-edited.jpg", "b-edited.jpg"]
    for name, source in (("a-edited.jpg", "a.jpg"), ("b-edited.jpg", "b.jpg")):
        assert Image.open(out / name).size == Image.open(photo_dir / source).size
    assert "edited 2 of 4 photos" in captured.out and "c_empty.png" in captured.out and "d_broken.jpg" in captured.out
    assert "c_empty.png: skipped: no face found" in captured.err
    assert "d_broken.jpg: skipped: cannot read" in captured.err
    assert "4/4" in captured.err  # the progress bar ran to the end


def test_input_dir_into_its_own_folder_never_overwrites_an_input(photo_dir, lite_model_dir, capsys) -> None:
    shutil.copy(photo_dir / "b.jpg", photo_dir / "a-edited.jpg")  # an input that has the obvious output name
    (photo_dir / "c_empty.png").unlink()
    (photo_dir / "d_broken.jpg").unlink()
    before = _snapshot(photo_dir)
    code = main(["edit", "--input-dir", str(photo_dir), "-o", str(photo_dir), "--model", str(lite_model_dir)])
    assert code == 0, capsys.readouterr().err
    after = _snapshot(photo_dir)
    assert {name: after[name] for name in before} == before  # every input byte for byte
    assert sorted(set(after) - set(before)) == ["a-edited-2.jpg", "a-edited-edited.jpg", "b-edited.jpg"]
    assert "edited 3 of 3 photos" in capsys.readouterr().out


def test_batch_options_are_checked_before_any_photo(photo_dir, lite_model_dir, tmp_path, capsys) -> None:
    two = [str(photo_dir / "a.jpg"), str(photo_dir / "b.jpg")]
    assert main(["edit", *two, "-o", str(tmp_path / "o"), "--model", str(lite_model_dir), "--modality", "oil"]) == 2
    assert "unknown modality 'oil'" in capsys.readouterr().err
    assert main(["edit", str(photo_dir / "a.jpg"), str(photo_dir / "b.jpg"), "-o", str(tmp_path / "x.png")]) == 2
    assert "-o names a folder" in capsys.readouterr().err
    assert main(["edit", "--input-dir", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["edit", "-o", str(tmp_path / "o")]) == 2
    assert "no photo given" in capsys.readouterr().err
    assert main(["edit", str(photo_dir / "a.jpg"), "-o", str(photo_dir / "a.jpg")]) == 2
    assert "is the input photo itself" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_edit_many_yields_each_result_or_error_in_order(photo_dir, lite_model) -> None:
    frames = [Image.open(photo_dir / "a.jpg").convert("RGB"), Image.open(photo_dir / "b.jpg").convert("RGB")]
    gif = photo_dir / "moving.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    sources = [photo_dir / "a.jpg", photo_dir / "c_empty.png", photo_dir / "d_broken.jpg", gif]
    outcomes = list(lite_model.edit_many(sources, smile=0.4))
    assert [o.source for o in outcomes] == sources
    assert [o.ok for o in outcomes] == [True, False, False, True]
    assert isinstance(outcomes[1].error, NoFaceError) and isinstance(outcomes[2].error, ImageLoadError)
    assert outcomes[0].image.size == Image.open(sources[0]).size
    assert outcomes[0].warnings == () and "only frame 0 was edited" in outcomes[3].warnings[0]
    single = lite_model.edit(sources[0], smile=0.4)
    assert np.array_equal(np.asarray(single), np.asarray(outcomes[0].image))  # the same edit as one by one
