"""Built-in pseudo-target stylizers: different from the photo and from each other, deterministic, fast."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from train.stylize import STYLIZERS, get_stylizer

PHOTO = Path(__file__).parent / "assets" / "london_subset" / "smiling" / "005.jpg"


@pytest.fixture(scope="module")
def crop() -> Image.Image:
    with Image.open(PHOTO) as image:  # roughly the face region of the 450 px photo
        return image.convert("RGB").crop((100, 83, 350, 333)).resize((256, 256), Image.BICUBIC)


def _diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


def test_default_stylizers_differ_from_photo_and_each_other(crop: Image.Image) -> None:
    sketch, cartoon = get_stylizer("sketch")(crop), get_stylizer("cartoon")(crop)
    for styled in (sketch, cartoon):
        assert styled.mode == "RGB" and styled.size == crop.size
    assert _diff(sketch, crop) > 30
    assert _diff(cartoon, crop) > 5
    assert _diff(sketch, cartoon) > 30
    sketch_pixels = np.asarray(sketch)
    assert (sketch_pixels[..., 0] == sketch_pixels[..., 2]).all(), "a pencil sketch is grey"


@pytest.mark.parametrize("name", sorted(STYLIZERS))
def test_stylizers_are_deterministic_and_fast(crop: Image.Image, name: str) -> None:
    stylize = get_stylizer(name)
    first = stylize(crop)
    timings = []
    for _ in range(3):  # best of three: a busy machine slows single calls, not the best one
        start = time.perf_counter()
        again = stylize(crop)
        timings.append(time.perf_counter() - start)
        assert np.array_equal(np.asarray(first), np.asarray(again))
    assert min(timings) < 1.0, f"{name} took {min(timings):.2f}s on a 256 px crop (budget ~0.3 s)"


def test_unknown_stylizer_names_the_choices() -> None:
    with pytest.raises(ValueError, match="sketch"):
        get_stylizer("watercolour")


@pytest.mark.parametrize("name", sorted(STYLIZERS))
def test_explicit_scale_sets_the_filters_and_bad_scales_are_refused(crop: Image.Image, name: str) -> None:
    """``stylize(..., scale=)``: the default scale of a crop is its short side / 256; another scale
    draws other strokes; a stylizer without a ``scale`` parameter is called with the image alone."""
    from train.stylize import stylize

    stylizer = get_stylizer(name)
    default = np.asarray(stylizer(crop), np.float32)
    same = np.asarray(stylize(stylizer, crop, scale=min(crop.size) / 256), np.float32)
    wider = np.asarray(stylize(stylizer, crop, scale=3 * min(crop.size) / 256), np.float32)
    assert np.array_equal(default, same)
    assert np.abs(default - wider).mean() > 2.0
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="scale"):
            stylize(stylizer, crop, scale=bad)
    assert stylize(lambda image: image.rotate(90), crop, scale=2.0).size == crop.size[::-1]
