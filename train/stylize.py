"""Pseudo-target stylizers: an aligned photo crop in, the same face in another modality out.

The paper renders its extra modalities with a fast neural style network (Johnson et al. 2016, see
``train.style_network``). Those need a trained checkpoint, so two offline defaults that need no
weights are built in: ``sketch`` (pencil drawing) and ``cartoon`` (flat colours, dark outlines).
Both are deterministic, pure numpy/PIL and scale their filter sizes with the face: by default with
the picture's short side (an aligned face crop), or by an explicit ``scale`` (a context crop, which
shows the face at the crop's scale on a wider canvas, must be drawn with the crop's strokes).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

Stylizer = Callable[..., Image.Image]

STYLIZERS: dict[str, Stylizer] = {}


def register_stylizer(name: str) -> Callable[[Stylizer], Stylizer]:
    """Decorator adding a PIL -> PIL function to :data:`STYLIZERS` under ``name``."""

    def add(function: Stylizer) -> Stylizer:
        if name in STYLIZERS:
            raise ValueError(f"a stylizer named {name!r} is already registered")
        STYLIZERS[name] = function
        return function

    return add


def get_stylizer(name: str) -> Stylizer:
    try:
        return STYLIZERS[name]
    except KeyError:
        raise ValueError(
            f"unknown modality {name!r}; built-in stylizers are {sorted(STYLIZERS)}, "
            "or give a trained style network with --style NAME=path.safetensors"
        ) from None


def stylize(stylizer: Stylizer, image: Image.Image, scale: float | None = None) -> Image.Image:
    """``stylizer(image)`` with its filters at ``scale`` (the face's size in units of a 256 px crop;
    None: the stylizer's default, the picture's short side / 256).

    Stylizers without a ``scale`` parameter (style networks, which work at their training pixel scale,
    and user functions) are called with the image alone.
    """
    if scale is not None and "scale" in inspect.signature(stylizer).parameters:
        return stylizer(image, scale=scale)
    return stylizer(image)


def _scale(image: Image.Image, scale: float | None) -> float:
    """Filter sizes are tuned at 256 px and grow with the crop, or with an explicit ``scale``."""
    if scale is None:
        return min(image.size) / 256.0
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number (1 = a 256 px face crop), got {scale}")
    return float(scale)


@register_stylizer("sketch")
def pencil_sketch(image: Image.Image, scale: float | None = None) -> Image.Image:
    """Colour-dodge the grey image with its blurred negative: flat areas go white, edges stay as strokes."""
    s = _scale(image, scale)
    gray_image = image.convert("L")
    gray = np.asarray(gray_image, dtype=np.float32)
    blurred_negative = np.asarray(
        Image.fromarray((255 - gray).astype(np.uint8)).filter(ImageFilter.GaussianBlur(6 * s)),
        dtype=np.float32,
    )
    dodge = gray * 255.0 / np.maximum(255.0 - blurred_negative, 1.0)
    # Darken the strokes a little (gamma) and add faint shading from the smoothed tones.
    strokes = np.clip(dodge, 0, 255) / 255.0
    shading = np.asarray(gray_image.filter(ImageFilter.GaussianBlur(3 * s)), dtype=np.float32) / 255.0
    out = strokes**2.2 * (0.75 + 0.25 * shading)
    return Image.fromarray(np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)).convert("RGB")


def _bilateral(rgb: np.ndarray, radius: int, sigma_color: float, iterations: int) -> np.ndarray:
    """Edge-preserving smoothing: a small bilateral filter from shifted copies of the image."""
    offsets = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    spatial = np.array([np.exp(-(dy * dy + dx * dx) / (2.0 * radius * radius)) for dy, dx in offsets])
    out = rgb
    for _ in range(iterations):
        padded = np.pad(out, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
        height, width = out.shape[:2]
        total = np.zeros_like(out)
        weights = np.zeros(out.shape[:2], dtype=np.float32)
        for (dy, dx), w_space in zip(offsets, spatial, strict=True):
            shifted = padded[radius + dy : radius + dy + height, radius + dx : radius + dx + width]
            distance = np.sum((shifted - out) ** 2, axis=2)
            w = (w_space * np.exp(-distance / (2.0 * sigma_color**2))).astype(np.float32)
            total += shifted * w[..., None]
            weights += w
        out = total / weights[..., None]
    return out


@register_stylizer("cartoon")
def cartoon(image: Image.Image, scale: float | None = None) -> Image.Image:
    """Bilateral smoothing, a small adaptive palette, and dark outlines from a local-contrast threshold."""
    s = _scale(image, scale)
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    smooth = _bilateral(rgb, radius=max(1, round(2 * s)), sigma_color=25.0, iterations=2)
    smooth_image = Image.fromarray(np.clip(smooth + 0.5, 0, 255).astype(np.uint8))
    # Median cut picks the palette from this image alone, so the result is deterministic per crop.
    flat = smooth_image.quantize(colors=12, method=Image.Quantize.MEDIANCUT, kmeans=1).convert("RGB")
    # Outlines: pixels clearly darker than their neighbourhood (an adaptive threshold on the grey image).
    gray = smooth_image.convert("L").filter(ImageFilter.MedianFilter(3))
    local_mean = np.asarray(gray.filter(ImageFilter.BoxBlur(max(1, round(4 * s)))), dtype=np.float32)
    edges = np.asarray(gray, dtype=np.float32) < local_mean - 6.0
    edges = np.asarray(Image.fromarray((edges * 255).astype(np.uint8)).filter(ImageFilter.MedianFilter(3))) > 127
    out = np.asarray(flat, dtype=np.float32)
    out[edges] *= 0.15
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))
