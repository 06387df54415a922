"""Load any user-supplied picture as an upright 8-bit RGB PIL image, or fail with one clear line.

Everything downstream (landmarks, alignment, the model) assumes ``mode == "RGB"`` and pixels the
right way up, so this is the single place that deals with EXIF rotation, alpha, palettes, 16-bit
and CMYK files, truncated downloads and decompression bombs.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from portraitgan_hub.errors import ImageLoadError

ImageSource = str | os.PathLike | bytes | bytearray | IO[bytes] | Image.Image | np.ndarray

DEFAULT_MAX_PIXELS = 50_000_000
#: What a URL given as an image is told: nothing here downloads.
URL_REFUSED = "URLs are not accepted: download the file and give its path"
_URL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*://|data:)", re.IGNORECASE)

_WHITE = (255, 255, 255)
_EXIF_ORIENTATION = 0x0112


def is_url(text: str) -> bool:
    """True for ``http://...``, ``https://...``, any other ``scheme://...`` and ``data:...``."""
    return bool(_URL.match(text))


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


@dataclass(frozen=True, eq=False)
class PhotoInfo:
    """What an edit must give back that the RGB working copy of a photo lost.

    ``mode``: ``"RGBA"`` or ``"LA"`` when the input had an alpha channel, ``"L"`` for a grayscale
    input (``L``, ``1``, ``I``, ``I;16``, ``F``), else ``"RGB"``.
    ``alpha``: the upright input's alpha channel (mode ``L``), untouched, or None. ``colour``: an
    ``RGBA`` input's own colours under that alpha (mode ``RGB``), before the working copy composited
    them on white, or None.
    ``icc_profile`` and ``exif``: the input's colour profile and EXIF block (the orientation tag
    removed, since the pixels are returned upright), or None. ``frames``: frames in the file
    (animated GIF, WebP, ...); only frame 0 is edited.
    """

    mode: str = "RGB"
    alpha: Image.Image | None = None
    colour: Image.Image | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    frames: int = 1


def check_image_source(source: object, name: str = "source") -> None:
    """``TypeError`` naming the parameter ``name`` unless ``source`` is something :func:`load_image` takes."""
    if not isinstance(source, (str, os.PathLike, bytes, bytearray, Image.Image, np.ndarray)) and not (
        hasattr(source, "read") and hasattr(source, "seek")
    ):
        raise TypeError(
            f"{name} must be a path, bytes, a binary file object, a PIL image or a uint8 array, "
            f"got {type(source).__name__}"
        )


def load_photo(source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Image.Image, PhotoInfo]:
    """:func:`load_image`, plus the :class:`PhotoInfo` that :func:`restore_photo_info` puts back.

    Raises what :func:`load_image` raises.
    """
    captured: list[PhotoInfo] = []
    picture = load_image(source, max_pixels=max_pixels, _info=captured)
    return picture, captured[0] if captured else PhotoInfo()


def restore_photo_info(result: Image.Image, info: PhotoInfo) -> Image.Image:
    """The edited RGB ``result`` (same size as the input) in the input's mode, alpha and metadata.

    An ``RGBA``/``LA`` input gets its own alpha channel back, byte for byte; the ICC profile (when
    it describes the output's colour space: not a CMYK profile on RGB pixels) and the EXIF block go
    into ``result.info`` (which :func:`portraitgan_hub.io_utils.save_photo` writes).
    Raises ``ValueError`` if the sizes differ.
    """
    if info.alpha is not None and info.alpha.size != result.size:
        raise ValueError(f"result is {result.size}, the input's alpha channel {info.alpha.size}")
    out = result.convert("RGB")  # a new image (a copy when already RGB), so ``result`` is left alone
    out.info = {}  # only what the input had: nothing the working copy picked up on the way
    if info.mode == "L":
        out = out.convert("L")
    elif info.mode == "LA" and info.alpha is not None:
        out = out.convert("L")
        out.putalpha(info.alpha)
    elif info.mode == "RGBA" and info.alpha is not None:
        if info.colour is not None:
            out = _uncomposited(out, info.colour, info.alpha)
        out.putalpha(info.alpha)
    if info.icc_profile and icc_colour_space(info.icc_profile) == ("GRAY" if out.mode in ("L", "LA") else "RGB"):
        out.info["icc_profile"] = info.icc_profile  # a CMYK or grey profile would mislabel RGB pixels
    if info.exif:
        out.info["exif"] = info.exif
    return out


def _uncomposited(result: Image.Image, colour: Image.Image, alpha: Image.Image) -> Image.Image:
    """``result`` (RGB, composited on white as the working copy was) taken back off the white: a pixel
    the edit left as it was gets the input's own ``colour`` exactly, any other ``(result - (1 - a)
    255) / a``, the inverse of compositing at the input's alpha a (0 stays as it is, unseen)."""
    a = np.asarray(alpha, np.float32)[..., None] / 255.0
    edited = np.asarray(result, np.float32)
    own = np.asarray(colour, np.float32)
    flattened = np.round(own * a + 255.0 * (1.0 - a))
    lifted = np.where(a > 0, (edited - 255.0 * (1.0 - a)) / np.maximum(a, 1e-6), edited)
    kept = np.abs(edited - flattened).max(axis=-1, keepdims=True) <= 1.0
    pixels = np.where(kept, own, np.clip(np.round(lifted), 0, 255))
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def icc_colour_space(profile: bytes) -> str:
    """The data colour space an ICC profile describes (``"RGB"``, ``"GRAY"``, ``"CMYK"``, ...), or ``""``."""
    return profile[16:20].decode("ascii", "replace").strip() if len(profile) >= 20 else ""


def load_image(
    source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS, _info: list[PhotoInfo] | None = None
) -> Image.Image:
    """Return ``source`` as an upright RGB image with 8 bits per channel.

    ``source`` is a path (``~`` is expanded), the encoded bytes of a file, a binary file object, a
    PIL image or an ``HxW``/``HxWx3``/``HxWx4`` uint8 array. EXIF orientation is applied; alpha is
    composited on white; grayscale, palette, 16-bit, 32-bit integer, float and CMYK pixels become RGB.

    Raises :class:`ImageLoadError` (one line, naming the file) for a URL (:data:`URL_REFUSED`), a
    missing file, anything that is not a readable image, a truncated file, or an image with more
    than ``max_pixels`` pixels. The size is checked from the header before any pixel is decoded.
    Pillow's own decompression-bomb guard (``PIL.Image.MAX_IMAGE_PIXELS``) is reported the same
    way; it is only relaxed when ``max_pixels`` is set above it.

    An upright RGB PIL image is returned as is, not copied. Anything else than the types above is a
    ``TypeError``.
    """
    check_image_source(source)
    name = source_name(source)
    if isinstance(source, np.ndarray):
        return _decode(_from_array(source, name), name, max_pixels, _info)
    if isinstance(source, Image.Image):
        return _decode(source, name, max_pixels, _info)
    opened = _open(source, name, max_pixels)
    try:
        picture = _decode(opened, name, max_pixels, _info)
    except ImageLoadError:
        opened.close()
        raise
    if picture is not opened:  # converted: the file (kept open by multi-frame formats) is done with
        opened.close()
    return picture


def _decode(image: Image.Image, name: str, max_pixels: int, info: list[PhotoInfo] | None = None) -> Image.Image:
    _check_size(image, name, max_pixels)
    try:
        image.load()
        if image.getexif().get(_EXIF_ORIENTATION, 1) != 1:
            image = ImageOps.exif_transpose(image)
        if info is not None:
            info.append(_photo_info(image))
        return _to_rgb(image)
    except ImageLoadError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        raise ImageLoadError(f"cannot read {name}: the file is damaged or truncated ({error})") from None


def _photo_info(image: Image.Image) -> PhotoInfo:
    """The alpha channel, ICC profile and EXIF (orientation removed) of an upright decoded image."""
    mode = image.mode
    alpha = None
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        alpha = image.convert("RGBA").getchannel("A") if mode not in ("LA", "La") else image.getchannel("A")
        mode = "LA" if mode in ("LA", "La") else "RGBA"
    elif mode in ("L", "1", "I", "F") or mode.startswith("I;16"):
        mode = "L"  # a grayscale photo comes back grayscale
    else:
        mode = "RGB"
    exif = image.getexif()
    exif_bytes = None
    if len(exif):
        exif.pop(ExifTags.Base.Orientation, None)
        exif_bytes = exif.tobytes() if len(exif) else None
    colour = image.convert("RGBA").convert("RGB") if mode == "RGBA" else None
    return PhotoInfo(
        mode=mode,
        alpha=alpha,
        colour=colour,
        icc_profile=image.info.get("icc_profile") or None,
        exif=exif_bytes,
        frames=int(getattr(image, "n_frames", 1) or 1),
    )


def to_numpy(image: ImageSource) -> np.ndarray:
    """``image`` (anything :func:`load_image` takes) as a C-contiguous ``HxWx3`` uint8 array."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    return np.asarray(load_image(image), dtype=np.uint8)


def _open(source: ImageSource, name: str, max_pixels: int) -> Image.Image:
    """``Image.open`` with every failure turned into :class:`ImageLoadError`; pixels not decoded yet."""
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        if is_url(str(source)):
            raise ImageLoadError(f"cannot read {source}: {URL_REFUSED}")
        if not Path(source).expanduser().is_file():
            raise ImageLoadError(f"cannot read {source}: no such file")
        source = Path(source).expanduser()
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
