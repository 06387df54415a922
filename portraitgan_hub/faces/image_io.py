"""Load any user-supplied picture as an upright 8-bit RGB PIL image, or fail with one clear line.

Everything downstream (landmarks, alignment, the model) assumes ``mode == "RGB"`` and pixels the
right way up, so this is the single place that deals with EXIF rotation, alpha, palettes, 16-bit
and CMYK files, truncated downloads and decompression bombs.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from portraitgan_hub.errors import ImageLoadError

ImageSource = str | os.PathLike | bytes | bytearray | IO[bytes] | Image.Image | np.ndarray

DEFAULT_MAX_PIXELS = 50_000_000

_WHITE = (255, 255, 255)
_EXIF_ORIENTATION = 0x0112


def source_name(source: object) -> str:
    """A short human name for an image source, for error messages ("photo.jpg", "<bytes>")."""
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name or str(source)
    if isinstance(source, (bytes, bytearray)):
        return "<bytes>"
    if isinstance(source, Image.Image):
        filename = getattr(source, "filename", "")
        return Path(filename).name if filename else "<PIL image>"
    if isinstance(source, np.ndarray):
        return "<array>"
    name = getattr(source, "name", None)
    return Path(name).name if isinstance(name, str) else "<stream>"


def load_image(source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Return ``source`` as an upright RGB image with 8 bits per channel.

    ``source`` is a path, the encoded bytes of a file, a binary file object, a PIL image or an
    ``HxW``/``HxWx3``/``HxWx4`` uint8 array. EXIF orientation is applied; alpha is composited on
    white; grayscale, palette, 16-bit, 32-bit integer, float and CMYK pixels become RGB.

    Raises :class:`ImageLoadError` (one line, naming the file) for anything that is not a readable
    image, a truncated file, or an image with more than ``max_pixels`` pixels. The size is checked
    from the header before any pixel is decoded. Pillow's own decompression-bomb guard
    (``PIL.Image.MAX_IMAGE_PIXELS``) is reported the same way; it is only relaxed when
    ``max_pixels`` is set above it.

    An upright RGB PIL image is returned as is, not copied.
    """
    name = source_name(source)
    if isinstance(source, np.ndarray):
        return _decode(_from_array(source, name), name, max_pixels)
    if isinstance(source, Image.Image):
        return _decode(source, name, max_pixels)
    opened = _open(source, name, max_pixels)
    try:
        return _decode(opened, name, max_pixels)
    except ImageLoadError:
        opened.close()
        raise


def _decode(image: Image.Image, name: str, max_pixels: int) -> Image.Image:
    _check_size(image, name, max_pixels)
    try:
        image.load()
        if image.getexif().get(_EXIF_ORIENTATION, 1) != 1:
            image = ImageOps.exif_transpose(image)
        return _to_rgb(image)
    except ImageLoadError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        raise ImageLoadError(f"cannot read {name}: the file is damaged or truncated ({error})") from None


def to_numpy(image: ImageSource) -> np.ndarray:
    """``image`` (anything :func:`load_image` takes) as a C-contiguous ``HxWx3`` uint8 array."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    return np.asarray(load_image(image), dtype=np.uint8)


def _open(source: ImageSource, name: str, max_pixels: int) -> Image.Image:
    """``Image.open`` with every failure turned into :class:`ImageLoadError`; pixels not decoded yet."""
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)) and not Path(source).is_file():
        raise ImageLoadError(f"cannot read {source}: no such file")
    with warnings.catch_warnings():
        # Pillow warns (and above twice its limit, raises) when an image is large enough to be a
        # decompression bomb. Treat the warning as fatal unless the caller has allowed more pixels.
        bomb_action = "ignore" if max_pixels > (Image.MAX_IMAGE_PIXELS or 0) else "error"
        warnings.simplefilter(bomb_action, Image.DecompressionBombWarning)
        try:
            return Image.open(source)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageLoadError(f"cannot read {name}: {error}") from None
        except UnidentifiedImageError:
            raise ImageLoadError(f"cannot read {name}: not an image file Pillow can decode") from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise ImageLoadError(f"cannot read {name}: {error}") from None


def _check_size(image: Image.Image, name: str, max_pixels: int) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageLoadError(f"cannot read {name}: the image is empty ({width}x{height})")
    if width * height > max_pixels:
        raise ImageLoadError(
            f"cannot read {name}: {width}x{height} is {width * height:,} pixels, more than the limit "
            f"of {max_pixels:,} (a possible decompression bomb; downscale it or raise max_pixels)"
        )


def _from_array(array: np.ndarray, name: str) -> Image.Image:
    if array.dtype != np.uint8:
        raise ImageLoadError(f"cannot read {name}: arrays must be uint8, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(array))
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(array))
    raise ImageLoadError(f"cannot read {name}: expected an HxW, HxWx3 or HxWx4 array, got {array.shape}")


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _high_depth_to_rgb(image)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode in ("L", "RGB") and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """Scale 16-bit, 32-bit integer and float grayscale to 8 bits instead of clipping at 255.

    ``I;16*`` is 0..65535. Pillow also opens 16-bit PNGs as ``I``, so ``I`` is read as 16-bit when
    any value exceeds 255 and as 8-bit otherwise. ``F`` is read as 0..1 when its maximum is at most
    1, else as 0..255.
    """
    values = np.asarray(image, dtype=np.float64)
    peak = float(values.max()) if values.size else 0.0
    if image.mode.startswith("I;16") or (image.mode == "I" and peak > 255):
        values = values / 257.0
    elif image.mode == "F" and peak <= 1.0:
        values = values * 255.0
    gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(gray[:, :, None], 3, axis=2))
