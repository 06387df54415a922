"""The output keeps what the input had (issue #14, item 6): JPEG quality, ICC profile, EXIF without the
orientation tag, alpha channels (RGBA, LA), and a word about dropped animation frames. Inputs are London
test photos given these properties here."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms

from portraitgan_hub.cli import main
from portraitgan_hub.edit_request import EditRequest
from portraitgan_hub.io_utils import DEFAULT_QUALITY, save_photo

ARTIST = "Face Research Lab London Set (CC-BY 4.0)"


#: One sRGB profile for the whole module (a new one carries a new creation time).
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _icc() -> bytes:
    return ICC


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Artist] = ARTIST
    exif[ExifTags.Base.Orientation] = orientation
    return exif


def _quantization(image: Image.Image, quality: int) -> dict:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return Image.open(buffer).quantization


@pytest.fixture(scope="module")
def tagged_photo(tmp_path_factory, london_photo) -> tuple[Path, Image.Image]:
    """005_neutral stored upside down with EXIF orientation 3 (rotate 180), an sRGB ICC profile and an
    Artist tag; and the upright picture it shows."""
    upright = Image.open(london_photo("005", "neutral")).convert("RGB")
    path = tmp_path_factory.mktemp("tagged") / "tagged.jpg"
    upright.rotate(180).save(path, quality=95, icc_profile=_icc(), exif=_exif(3))
    return path, upright


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
def test_icc_profile_and_exif_are_kept_without_the_orientation(
    tagged_photo, lite_model_dir, tmp_path, suffix, capsys
) -> None:
    source, upright = tagged_photo
    out = tmp_path / f"edited{suffix}"
    assert main(["edit", str(source), "-o", str(out), "--model", str(lite_model_dir), "--smile", "0.5"]) == 0, (
        capsys.readouterr().err
    )
    with Image.open(out) as result:
        assert result.size == upright.size
        assert result.info.get("icc_profile") == _icc()
        exif = result.getexif()
        assert exif.get(ExifTags.Base.Artist) == ARTIST
        assert ExifTags.Base.Orientation not in exif  # the pixels are upright now
        # upright: the top rows of the result are the top rows of the upright photo (the face is mid-frame)
        top = np.asarray(result.convert("RGB"))[:40].astype(float)
        assert np.abs(top - np.asarray(upright)[:40]).mean() < 6


def test_jpeg_is_written_at_quality_95_by_default_and_quality_sets_it(
    london_photo, lite_model, lite_model_dir, tmp_path
) -> None:
    from portraitgan_hub.cli import build_parser

    source = london_photo("005", "neutral")
    assert build_parser().parse_args(["edit", "a.jpg", "-o", "b.jpg"]).quality == DEFAULT_QUALITY == 95
    default = tmp_path / "default.jpg"
    save_photo(lite_model.edit(source), default)
    with Image.open(default) as picture:
        assert picture.quantization == _quantization(picture, 95)
    low = tmp_path / "low.jpg"
    assert main(["edit", str(source), "-o", str(low), "--model", str(lite_model_dir), "--quality", "60"]) == 0
    with Image.open(low) as picture:
        assert picture.quantization == _quantization(picture, 60)
    assert main(["edit", str(source), "-o", str(low), "--quality", "101"]) == 2


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_inputs_come_back_with_their_alpha_untouched(
    london_photo, lite_model, lite_model_dir, tmp_path, mode, capsys
) -> None:
    picture = Image.open(london_photo("005", "neutral")).convert("RGB" if mode == "RGBA" else "L")
    width, height = picture.size
    alpha = np.full((height, width), 255, np.uint8)
    alpha[:, : width // 6] = 0  # a transparent strip
    alpha[: height // 8] = 90  # and a translucent band
    picture.putalpha(Image.fromarray(alpha))
    source = tmp_path / f"input-{mode}.png"
    picture.save(source)

    result = lite_model.edit(source, smile=0.5)
    assert result.mode == mode and result.size == picture.size
    assert np.array_equal(np.asarray(result.getchannel("A")), alpha)

    out = tmp_path / "edited.png"
    assert main(["edit", str(source), "-o", str(out), "--model", str(lite_model_dir), "--smile", "0.5"]) == 0
    with Image.open(out) as written:
        assert written.mode == mode
        assert np.array_equal(np.asarray(written.getchannel("A")), alpha)
    flat = tmp_path / "edited.jpg"  # JPEG has no alpha: said (the CLI prints it), transparent area white
    (note,) = save_photo(result, flat)
    assert "edited.jpg: JPEG has no transparency" in note
    with Image.open(flat) as written:
        assert np.asarray(written.convert("L"))[height // 2, : width // 6 - 8].min() > 240


def test_an_animated_gif_is_edited_on_frame_0_and_says_the_rest_are_dropped(
    london_photo, lite_model, lite_model_dir, tmp_path, capsys
) -> None:
    first = Image.open(london_photo("005", "neutral")).convert("RGB")
    frames = [first, first.transpose(Image.Transpose.FLIP_LEFT_RIGHT), Image.open(london_photo("005", "smiling"))]
    source = tmp_path / "animated.gif"
    frames[0].save(source, save_all=True, append_images=[f.convert("RGB") for f in frames[1:]], duration=100, loop=0)

    with pytest.warns(UserWarning, match="animated.gif has 3 frames: only frame 0 was edited, the other 2 are dropped"):
        result = lite_model.edit(source, smile=0.5)
    assert result.size == first.size
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a still photo: no warning
        lite_model.edit(london_photo("005", "neutral"))

    out = tmp_path / "edited.png"
    assert main(["edit", str(source), "-o", str(out), "--model", str(lite_model_dir)]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "only frame 0 was edited" in err


def test_the_apps_download_keeps_alpha_icc_and_exif(london_photo, lite_model, tmp_path) -> None:
    from portraitgan_hub.faces.expressions import EXPRESSION_NAMES
    from space import pipeline
    from space.session import controls_from_values

    picture = Image.open(london_photo("005", "neutral")).convert("RGB")
    alpha = np.full(picture.size[::-1], 255, np.uint8)
    alpha[:, :50] = 0
    picture.putalpha(Image.fromarray(alpha))
    source = tmp_path / "upload.png"
    picture.save(source, icc_profile=_icc(), exif=_exif(1))

    editor = lite_model.face_editor
    session = pipeline.open_photo(editor, str(source))
    values = [0.5] + [0.0] * (len(EXPRESSION_NAMES) - 1)  # smile, the rest unchanged
    rendered = pipeline.plan_and_render(editor, session, EditRequest(controls=controls_from_values(values)))
    image = pipeline.download_image(editor, session, rendered)
    png = pipeline.OutputFiles(tmp_path / "downloads").save_png(image, "x")
    with Image.open(png) as download:
        assert download.mode == "RGBA"
        assert np.array_equal(np.asarray(download.getchannel("A")), alpha)
        assert download.info.get("icc_profile") == _icc()
        assert download.getexif().get(ExifTags.Base.Artist) == ARTIST


def test_save_photo_writes_metadata_only_where_the_format_has_it(tmp_path) -> None:
    image = Image.new("RGB", (16, 16), (10, 20, 30))
    image.info.update(icc_profile=_icc(), exif=_exif(1).tobytes())
    assert save_photo(image, tmp_path / "a.bmp") == []  # BMP keeps neither; no error
    with pytest.raises(ValueError, match="cannot tell an image format"):
        save_photo(image, tmp_path / "a.unknown")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bmp"]


def test_a_profile_of_another_colour_space_is_not_put_on_rgb_pixels(london_photo, lite_model, tmp_path) -> None:
    """A CMYK photo is converted to RGB on loading; its CMYK profile would mislabel the RGB output."""
    cmyk_profile = ICC[:16] + b"CMYK" + ICC[20:]
    source = tmp_path / "cmyk.jpg"
    Image.open(london_photo("005", "neutral")).convert("CMYK").save(source, icc_profile=cmyk_profile)
    result = lite_model.edit(source)
    assert result.mode == "RGB" and "icc_profile" not in result.info
