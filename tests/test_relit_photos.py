"""No photo, from any studio or phone, gets its face re-drawn by an expression edit.

A London photo re-lit and re-graded five ways (cooler white balance, a brighter gamma, dim warm
phone light with sensor noise, a lavender studio background, another JPEG encoder); on each,
``mouth_open=1``, ``smile=+-1`` and ``roll`` change no pixel by more than 20 levels outside the
edit's region (where the flow moves the photo, or G's colour shows), and the face keeps its colour.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from test_unfamiliar_light import dim_warm
from torch.nn import functional as F

from portraitgan_hub import DEFAULT_MODEL, PortraitGAN
from portraitgan_hub.edit_region import edit_region
from portraitgan_hub.edit_request import EditRequest
from portraitgan_hub.faces.expressions import ExpressionControls
from portraitgan_hub.thin_plate_spline import sample_displacement
from portraitgan_hub.warp_guidance import landmark_hallucination


def cooler(photo: Image.Image) -> Image.Image:
    return Image.fromarray(np.clip(np.asarray(photo, np.float32) * [0.85, 0.95, 1.2], 0, 255).astype(np.uint8))


def brighter(photo: Image.Image) -> Image.Image:
    return Image.fromarray((255 * (np.asarray(photo, np.float32) / 255) ** 0.7).astype(np.uint8))


def lavender_background(photo: Image.Image) -> Image.Image:
    """The light grey studio background (low chroma, bright) tinted lavender, with a soft edge."""
    pixels = np.asarray(photo, np.float32)
    background = ((pixels.max(-1) - pixels.min(-1) < 18) & (pixels.mean(-1) > 170)).astype(np.uint8) * 255
    soft = np.asarray(Image.fromarray(background).filter(ImageFilter.GaussianBlur(3)), np.float32)[..., None] / 255
    return Image.fromarray(np.clip(pixels * (1 - soft) + np.array([200, 180, 235]) * soft, 0, 255).astype(np.uint8))


def other_jpeg(photo: Image.Image) -> Image.Image:
    """Quality 55, 4:2:0, the "web_low" quantization tables: another encoder's blocks and ringing."""
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=55, subsampling=2, qtables="web_low")
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


VARIANTS = {"cooler": cooler, "brighter": brighter, "dim_warm": dim_warm, "lavender": lavender_background}
VARIANTS["other_jpeg"] = other_jpeg
EDITS = {"mouth_open": dict(mouth_open=1), "smile": dict(smile=1), "frown": dict(smile=-1), "roll": dict(roll=12)}


@pytest.fixture(scope="module")
def demo() -> PortraitGAN:
    return PortraitGAN.from_pretrained(DEFAULT_MODEL)


def _crop_grid(prepared) -> tuple[torch.Tensor, np.ndarray]:
    """Where each photo pixel lies in the model's crop: the ``grid_sample`` grid (1, H, W, 2) and the
    crop coordinates (H, W, 2), crop pixels."""
    alignment, size = prepared.aligned.alignment, prepared.aligned.alignment.crop_size
    height, width = prepared.picture.height, prepared.picture.width
    ys, xs = np.mgrid[0:height, 0:width]
    crop = alignment.to_crop(np.stack([xs.ravel(), ys.ravel()], 1)).reshape(height, width, 2)
    return torch.from_numpy((crop + 0.5) * 2 / size - 1).float()[None], crop


def _grown(region: np.ndarray) -> np.ndarray:
    """``region`` (H, W) bool grown by 3 px."""
    return np.asarray(Image.fromarray(region.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(7))) > 0


def _edit_region(prepared, rendering) -> tuple[np.ndarray, np.ndarray]:
    """(the edit's region, where G's colour shows), (H, W) bool at the photo's size: the flow moves
    the photo by more than 0.1 px, or A < 0.98; the region grown by 3 px."""
    alignment, size = prepared.aligned.alignment, prepared.aligned.alignment.crop_size
    at, crop = _crop_grid(prepared)
    flow = sample_displacement(rendering.displacement, at)[0].numpy() * size / 2 / alignment.scale
    inside = ((crop >= 0) & (crop < size)).all(-1)
    drawn = F.grid_sample(1 - rendering.mask, at, "bilinear", "zeros", align_corners=False)[0, 0].numpy() > 0.02
    return _grown(((np.linalg.norm(flow, axis=-1) > 0.1) & inside) | drawn), drawn


def _where_g_may_draw(prepared, plan, model: PortraitGAN) -> np.ndarray:
    """(H, W) bool at the photo's size. A G with the edit region in its mask (``lite-u``): that region
    (``edit_region.edit_region`` of the crop's points, with the opened mouth), grown by 3 px. A G
    without it, which the editor limits to the opened mouth: :func:`_about_the_mouth`."""
    if not model.config.edit_region:
        return _about_the_mouth(prepared, plan)
    size = prepared.aligned.alignment.crop_size
    points = [torch.from_numpy(np.float32(p))[None] for p in (prepared.aligned.landmarks, plan.target)]
    hole = landmark_hallucination(*points, size, size)
    region = edit_region(*points, size, size, hole, margin=model.config.edit_region_margin)
    at, _ = _crop_grid(prepared)
    return _grown(F.grid_sample(region, at, "bilinear", "zeros", align_corners=False)[0, 0].numpy() > 0)


def _about_the_mouth(prepared, plan) -> np.ndarray:
    """(H, W) bool: the box of the target's outer lips (landmarks 48-59, photo pixels), grown by a
    sixth of the face box's width on every side."""
    lips = prepared.aligned.alignment.to_image(plan.target)[48:60]
    left, _, right, _ = prepared.aligned.face.box
    grow = (right - left) / 6
    (x0, y0), (x1, y1) = lips.min(axis=0) - grow, lips.max(axis=0) + grow
    ys, xs = np.mgrid[0 : prepared.picture.height, 0 : prepared.picture.width]
    return (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_an_expression_edit_changes_nothing_outside_its_region_and_keeps_the_faces_colour(demo, london_photo, variant):
    photo = VARIANTS[variant](Image.open(london_photo("005", "neutral")).convert("RGB"))
    editor = demo.face_editor
    prepared = editor.prepare(photo)
    left, top, right, bottom = prepared.aligned.face.box
    for name, controls in EDITS.items():
        plan = editor.plan(prepared, EditRequest(controls=ExpressionControls(**controls)))
        rendering = editor.render(prepared, plan)
        result = np.asarray(editor.compose(prepared, plan, rendering), np.float32)
        region, drawn = _edit_region(prepared, rendering)
        change = np.abs(result - np.asarray(photo, np.float32)).max(-1)
        assert change[~region].max() <= 20, f"{variant}, {name}: {(change[~region] > 20).sum()} pixels outside"
        # G's colour shows only where it may, and the face keeps its colour (below): never a dim photo's
        # bleached sketch over the face.
        may = _where_g_may_draw(prepared, plan, demo)
        assert not (drawn & ~may).any(), f"{variant}, {name}: G drew beyond where it may"
        face = (slice(top, bottom), slice(left, right))
        kept = ~_about_the_mouth(prepared, plan)[face]  # the face away from the mouth, warped or drawn
        shift = np.abs(result[face][kept].mean(0) - np.asarray(photo, np.float32)[face][kept].mean(0))
        assert shift.max() <= 4, f"{variant}, {name}: the face's mean colour moved by {shift.max():.1f} levels"
