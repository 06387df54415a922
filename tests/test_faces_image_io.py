from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from portraitgan_hub.errors import ImageLoadError
from portraitgan_hub.faces.image_io import load_image, to_numpy


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but that holds no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def _assert_one_line(error: pytest.ExceptionInfo, *needles: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


# --- sources ----------------------------------------------------------------------------------------
def test_every_kind_of_source_gives_the_same_rgb_image(london_photo):
    path = london_photo("005", "neutral")
    reference = np.asarray(Image.open(path).convert("RGB"))
    data = path.read_bytes()
    sources = [str(path), path, data, bytearray(data), io.BytesIO(data), Image.open(path), reference]
    for source in sources:
        image = load_image(source)
        assert image.mode == "RGB" and image.size == (640, 640)
        assert np.array_equal(np.asarray(image), reference), type(source)


def test_to_numpy_is_uint8_hwc_contiguous(london_photo):
    array = to_numpy(london_photo("005", "smiling"))
    assert array.dtype == np.uint8 and array.shape == (640, 640, 3) and array.flags.c_contiguous
    assert to_numpy(array) is array or np.array_equal(to_numpy(array), array)


def test_gray_and_rgba_arrays_load():
    gray = np.full((4, 5), 77, np.uint8)
    assert np.array_equal(to_numpy(gray), np.full((4, 5, 3), 77, np.uint8))
    rgba = np.zeros((4, 5, 4), np.uint8)  # fully transparent black -> white
    assert (to_numpy(rgba) == 255).all()
    with pytest.raises(ImageLoadError, match="uint8"):
        load_image(np.zeros((4, 5, 3), np.float32))


# --- modes --------------------------------------------------------------------------------------------
def test_rgba_is_composited_on_white():
    rgba = Image.new("RGBA", (4, 2), (255, 0, 0, 255))
    rgba.putpixel((0, 0), (0, 0, 255, 0))  # transparent
    rgba.putpixel((1, 0), (0, 0, 0, 128))  # half-transparent black
    image = load_image(_encode(rgba, "PNG"))
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (255, 255, 255)
    assert image.getpixel((1, 0)) in {(127, 127, 127), (128, 128, 128)}
    assert image.getpixel((3, 1)) == (255, 0, 0)


@pytest.mark.parametrize(
    "mode, fmt, pixel, expected",
    [
        ("L", "PNG", 90, (90, 90, 90)),
        ("LA", "PNG", (90, 0), (255, 255, 255)),
        ("1", "PNG", 1, (255, 255, 255)),
        ("CMYK", "JPEG", (0, 255, 255, 0), (255, 0, 0)),
        ("CMYK", "TIFF", (0, 0, 0, 255), (0, 0, 0)),
        ("I;16", "PNG", 65535, (255, 255, 255)),
        ("I;16", "TIFF", 32896, (128, 128, 128)),
    ],
)
def test_modes_become_8_bit_rgb(mode, fmt, pixel, expected):
    source = Image.new(mode, (6, 4), pixel)
    image = load_image(_encode(source, fmt))
    assert image.mode == "RGB"
    got = np.asarray(image).reshape(-1, 3).mean(axis=0)
    assert np.abs(got - expected).max() <= 3, (mode, fmt, got)


def test_16_bit_is_scaled_not_clipped():
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    for image in (Image.fromarray(values), Image.open(io.BytesIO(_encode(Image.fromarray(values), "PNG")))):
        assert np.asarray(load_image(image))[0, :, 0].tolist() == [0, 100, 255]


def test_32_bit_and_float_gray():
    eight_bit_in_i = Image.fromarray(np.array([[0, 200]], dtype=np.int32))
    assert np.asarray(load_image(eight_bit_in_i))[0, :, 0].tolist() == [0, 200]
    sixteen_bit_in_i = Image.fromarray(np.array([[0, 65535]], dtype=np.int32))
    assert np.asarray(load_image(sixteen_bit_in_i))[0, :, 0].tolist() == [0, 255]
    unit_float = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert np.asarray(load_image(unit_float))[0, :, 0].tolist() == [0, 128, 255]


def test_palette_with_and_without_transparency():
    palette = Image.new("P", (3, 1))
    palette.putpalette([10, 20, 30, 200, 100, 0] + [0] * 762)
    palette.putpixel((1, 0), 1)
    image = load_image(_encode(palette, "PNG"))
    assert image.getpixel((0, 0)) == (10, 20, 30) and image.getpixel((1, 0)) == (200, 100, 0)
    transparent = load_image(_encode(palette, "PNG", transparency=0))
    assert transparent.getpixel((0, 0)) == (255, 255, 255) and transparent.getpixel((1, 0)) == (200, 100, 0)


def test_exif_orientation_is_applied():
    upright = Image.new("RGB", (60, 40), (0, 0, 255))
    upright.paste((255, 0, 0), (0, 0, 30, 40))  # left half red
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera held sideways writes
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image = load_image(_encode(stored, "JPEG", exif=exif.tobytes(), quality=95))
    assert image.size == (60, 40)
    left, right = np.asarray(image)[20, 5], np.asarray(image)[20, 55]
    assert left[0] > 200 and left[2] < 60 and right[2] > 200 and right[0] < 60


# --- failures -----------------------------------------------------------------------------------------
def test_text_file_is_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("hello, not a picture")
    with pytest.raises(ImageLoadError) as error:
        load_image(path)
    _assert_one_line(error, "notes.jpg")


def test_missing_file(tmp_path):
    with pytest.raises(ImageLoadError) as error:
        load_image(tmp_path / "absent.png")
    _assert_one_line(error, "absent.png", "no such file")


def test_truncated_jpeg(tmp_path, london_photo):
    path = tmp_path / "cut.jpg"
    path.write_bytes(london_photo("005", "neutral").read_bytes()[:20_000])
    with pytest.raises(ImageLoadError) as error:
        load_image(path)
    _assert_one_line(error, "cut.jpg", "truncated")


def test_pixel_limit_is_checked_before_decoding(london_photo):
    with pytest.raises(ImageLoadError) as error:
        load_image(london_photo("005", "neutral"), max_pixels=1000)
    _assert_one_line(error, "005_neutral.jpg", "409,600 pixels", "1,000")
    # A header announcing 60 megapixels without any pixel data: refused on its size alone.
    with pytest.raises(ImageLoadError) as error:
        load_image(_png_header_only(10_000, 6_000))
    _assert_one_line(error, "<bytes>", "more than the limit")


def test_pillow_decompression_bomb_becomes_image_load_error():
    bomb = _png_header_only(30_000, 30_000)  # over twice Pillow's own limit: Image.open raises
    with pytest.raises(ImageLoadError) as error:
        load_image(bomb, max_pixels=10**10)
    _assert_one_line(error, "<bytes>", "decompression bomb")
    warned = _png_header_only(10_000, 10_000)  # over Pillow's limit, under twice it: a warning
    with pytest.raises(ImageLoadError) as error:
        load_image(warned)
    _assert_one_line(error, "<bytes>", "pixels")


def test_half_transparent_pixels_keep_their_own_colour_through_an_edit():
    """The working copy is composited on white; the result is taken back off it: an unchanged pixel
    gets the input's colour exactly, a changed one the inverse of the compositing at its alpha."""
    import numpy as np
    from PIL import Image

    from portraitgan_hub.faces.image_io import load_photo, restore_photo_info

    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (40, 60, 4), dtype=np.uint8)
    rgba[:, :20, 3] = 64  # half transparent
    rgba[:, 20:40, 3] = 0  # invisible
    rgba[:, 40:, 3] = 255
    picture, info = load_photo(Image.fromarray(rgba, "RGBA"))
    unchanged = np.asarray(restore_photo_info(picture, info))
    assert np.array_equal(unchanged[..., 3], rgba[..., 3])
    assert np.array_equal(unchanged[:, :20], rgba[:, :20]) and np.array_equal(unchanged[:, 40:], rgba[:, 40:])
    edited = np.asarray(picture).copy()
    edited[:, :20] = np.clip(edited[:, :20].astype(int) - 20, 0, 255)  # darker where half transparent
    lifted = np.asarray(restore_photo_info(Image.fromarray(edited), info)).astype(int)
    assert (lifted[:, :20, :3] <= rgba[:, :20, :3].astype(int)).mean() > 0.95  # darker in its own colours
