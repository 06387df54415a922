"""The crop view: the current result's aligned face with the target landmarks drawn on it to click.

The view shows the whole aligned face, or one part of it enlarged (:data:`ZOOM_PARTS`: the mouth,
an eye with its brow), so that on a phone every point of that part can be tapped. Its picture is the
result as the before/after view shows it (:class:`ShownResult`), warped to the crop, so that a click
lands on the face as it now is. Plain Python, no gradio: the handlers call :func:`draw` and
:func:`pick_points`, and the tests call everything here directly.

Coordinates: crop pixels as everywhere in the app (``session.view_to_crop`` / ``crop_to_view``);
a :class:`CropZoom` says which part of the crop the view shows (its ``offset``) and how much larger
(its ``scale``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from portraitgan_hub.faces.alignment import Alignment, mean_face, warp_to_crop
from portraitgan_hub.faces.landmarks import FACE_PARTS, LEFT_BROW, LEFT_EYE, RIGHT_BROW, RIGHT_EYE

if __package__:  # imported as a package: space.crop_zoom, or portraitgan_hub_space.crop_zoom
    from . import session as state
else:  # imported by app.py run as a script, as a Hugging Face Space does
    import session as state  # type: ignore[no-redef]

TARGET_COLOUR = (255, 70, 70)
MOVED_COLOUR = (255, 220, 0)
PICKED_COLOUR = (255, 0, 255)
#: The landmarks each zoomed view shows (and lets one click), by its name in ``session.ZOOM_CHOICES``. The
#: eyes are the subject's, as the "Left eye open" slider's are.
ZOOM_PARTS: dict[str, tuple[int, ...]] = {
    "mouth": tuple(range(48, 68)),
    "left eye": (*LEFT_BROW, *LEFT_EYE),
    "right eye": (*RIGHT_BROW, *RIGHT_EYE),
}
#: Room around the part's points on each side, as a share of their width.
ZOOM_MARGIN = 0.22
#: A zoomed view's width / height is kept within these.
ZOOM_ASPECT = (1.2, 2.0)
#: Width of a zoomed view in pixels.
ZOOM_WIDTH = 512
#: In a zoomed view no two dots are closer than this share of its width: 24 CSS px where the view
#: is 300 CSS px wide, as on a 390 px phone screen. Dots closer than that (the inner lips of a closed
#: mouth lie on each other) are drawn pushed apart, each joined to its point by a thin line.
TAP_SPACING = 0.085


@dataclass(frozen=True, eq=False)
class ShownResult:
    """The result as the before/after view shows it, without the landmark overlay, and where the
    aligned crop lies in it (``alignment``: picture pixels -> crop pixels)."""

    picture: Image.Image
    alignment: Alignment


@dataclass(frozen=True)
class CropZoom:
    """What the crop view shows: the crop from ``offset`` (crop pixels: the left and top edge of the
    part shown) enlarged ``scale`` times into a ``size`` picture; the landmarks ``indices`` are drawn
    and can be clicked, no two dots closer than ``spacing`` view pixels (0: where they are)."""

    name: str
    scale: float
    offset: tuple[float, float]
    size: tuple[int, int]
    indices: tuple[int, ...]
    spacing: float

    def to_view(self, points: np.ndarray) -> np.ndarray:
        """Crop pixels -> view pixels."""
        return state.crop_to_view(points, self.scale, self.offset)

    def to_crop(self, xy: Sequence[float]) -> tuple[float, float]:
        """A click on the view (pixel indices) -> crop pixels."""
        return state.view_to_crop(xy, self.scale, self.offset)


def zoom_for(name: str | None, crop_size: int, points: Sequence[np.ndarray] = ()) -> CropZoom:
    """The view ``name`` (one of ``session.ZOOM_CHOICES``; None: the whole face) of a ``crop_size`` crop.

    A zoomed view frames its part's points in every one of ``points`` (``(68, 2)`` arrays, crop
    pixels: the face's own and the current target), with :data:`ZOOM_MARGIN` around them.
    ValueError for a name that is not a choice.
    """
    if name is None or name == state.WHOLE_FACE:
        scale = state.crop_view_scale(crop_size)
        return CropZoom(state.WHOLE_FACE, float(scale), (0.0, 0.0), (crop_size * scale,) * 2, tuple(range(68)), 0.0)
    if name not in ZOOM_PARTS:
        raise ValueError(f"the crop view shows one of {', '.join(repr(c) for c in state.ZOOM_CHOICES)}, got {name!r}")
    indices = ZOOM_PARTS[name]
    part = np.concatenate([np.asarray(p, dtype=np.float64)[list(indices)] for p in points]) if points else None
    if part is None:
        part = np.array([[0.0, 0.0], [crop_size - 1.0, crop_size - 1.0]])
    low, high = part.min(axis=0), part.max(axis=0) + 1.0  # pixel edges: a point's pixel spans [x, x + 1]
    pad = ZOOM_MARGIN * (high[0] - low[0])
    low, high = low - pad, high + pad
    width, height = high - low
    centre = (low + high) / 2
    width = max(width, height * ZOOM_ASPECT[0])
    height = max(height, width / ZOOM_ASPECT[1])
    scale = ZOOM_WIDTH / width
    left, top = centre[0] - width / 2, centre[1] - height / 2
    size = (ZOOM_WIDTH, int(round(height * scale)))
    return CropZoom(name, float(scale), (float(left), float(top)), size, indices, TAP_SPACING * ZOOM_WIDTH)


def dot_positions(zoom: CropZoom, target: np.ndarray) -> np.ndarray:
    """Where the dots of ``zoom.indices`` are drawn, ``(len(indices), 2)`` view pixels: at the
    target points, pushed apart where two are closer than ``zoom.spacing`` (:func:`spread`)."""
    points = zoom.to_view(np.asarray(target, dtype=np.float64)[list(zoom.indices)])
    if zoom.spacing <= 0:
        return points
    return spread(points, zoom.spacing, mean_face()[list(zoom.indices)])


def spread(points: np.ndarray, spacing: float, hints: np.ndarray, rounds: int = 300) -> np.ndarray:
    """``points`` (``(N, 2)``) moved as little as it takes for no two to be closer than ``spacing``.

    Each close pair is pushed apart along the line between them; points that lie on each other go
    the way ``hints`` (the same points on the mean face) say, so that the upper lip goes up and the
    lower lip down. Deterministic.
    """
    placed = np.array(points, dtype=np.float64)
    goal = spacing * 1.01
    for _ in range(rounds):
        worst = 0.0
        for i in range(len(placed)):
            for j in range(i + 1, len(placed)):
                apart = placed[i] - placed[j]
                distance = float(np.hypot(*apart))
                if distance >= goal:
                    continue
                hint = hints[i] - hints[j]
                hint = hint / max(float(np.hypot(*hint)), 1e-12) if np.any(hint) else np.array([0.0, -1.0])
                direction = apart + 0.25 * spacing * hint
                direction /= max(float(np.hypot(*direction)), 1e-12)
                push = (goal - distance) / 2
                placed[i] += direction * push
                placed[j] -= direction * push
                worst = max(worst, goal - distance)
        if worst <= 1e-6:
            break
    return placed


def pick_points(zoom: CropZoom, target: np.ndarray) -> tuple[np.ndarray, float]:
    """``(points, radius)`` for ``LandmarkEdits.click`` on this view, crop pixels: each shown point
    where its dot is drawn, the others out of reach; a click within ``radius`` of a dot picks it."""
    points = np.full((len(target), 2), 1e9)
    dots = dot_positions(zoom, target)
    points[list(zoom.indices)] = np.array([zoom.to_crop(xy) for xy in dots])
    if zoom.spacing <= 0:
        crop_size = zoom.size[0] / zoom.scale
        return points, state.PICK_RADIUS * crop_size
    return points, zoom.spacing / zoom.scale


def view_picture(shown: ShownResult, zoom: CropZoom) -> Image.Image:
    """The part of the shown result that ``zoom`` shows, at the view's size (RGB)."""
    matrix = np.array(shown.alignment.matrix, dtype=np.float64) * zoom.scale
    matrix[:, 2] += zoom.scale * (0.5 - np.asarray(zoom.offset)) - 0.5
    side = max(zoom.size)
    square = warp_to_crop(shown.picture, Alignment(matrix=matrix, crop_size=side), fill=(0, 0, 0))
    return square.crop((0, 0, *zoom.size))


def draw(
    shown: ShownResult, zoom: CropZoom, target: np.ndarray, moved: Sequence[int] = (), picked: int | None = None
) -> Image.Image:
    """The crop view: :func:`view_picture` with the parts outlined through the target points (as in
    the landmark map the generator sees) and a dot per point; moved points are yellow, a picked point
    is ringed in magenta."""
    view = view_picture(shown, zoom)
    points = zoom.to_view(target)
    shown_points = set(zoom.indices)
    zoomed = zoom.spacing > 0
    line = 2 if zoomed else 1
    drawing = ImageDraw.Draw(view)
    for _name, indices, closed in FACE_PARTS:
        if not shown_points.issuperset(indices):
            continue
        part = [tuple(points[i]) for i in indices]
        drawing.line(part + part[:1] if closed else part, fill=TARGET_COLOUR, width=line)
    dots = dot_positions(zoom, target)
    radius = 0.016 * zoom.size[0] if zoomed else 2.5 * zoom.scale / 2 + 1
    for index, (x, y) in zip(zoom.indices, dots):
        if zoomed and np.hypot(x - points[index][0], y - points[index][1]) > 1:
            drawing.line([(x, y), tuple(points[index])], fill=(255, 255, 255), width=1)
        colour = MOVED_COLOUR if index in moved else TARGET_COLOUR
        outline = (40, 0, 0) if zoomed else None
        drawing.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour, outline=outline)
    if picked is not None and picked in shown_points:
        x, y = dots[zoom.indices.index(picked)]
        ring = radius * 3 if not zoomed else radius * 2
        drawing.ellipse((x - ring, y - ring, x + ring, y + ring), outline=PICKED_COLOUR, width=2)
    return view
