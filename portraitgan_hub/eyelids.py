"""Closing an eye: a lid warp that slides the lids over the eyeball (not in the paper).

A closing eye is the one expression edit a smooth warp cannot make. The thin-plate-spline flow maps
each output pixel to one photo position, continuously; but a closed lid shows the lid's skin right
above its lashes and the lower lid right below, with the eyeball between them in the photo skipped.
The spline instead merges the coinciding lid points (``thin_plate_spline.MERGE_RADIUS``) and the eye
stays open. Here, as in the lid models of facial animation (a lid that slides over a fixed eyeball
and folds at its margin), the closing is taken out of the spline's targets (:func:`open_targets`:
the eye keeps its opening, moved with the rest of the face) and done by :func:`lid_positions`, a
backward map in the closing eye's own frame (``u`` from corner to corner, ``v`` across, in eye
widths):

- above the upper lid, the skin from :data:`SKIN_REACH` above the lid down to the lid's margin is
  stretched over the rows down to the lid's new place, so the lashes end up along the closed line;
- between the new lids, the eyeball stays where it is;
- below the lower lid, the same from :data:`SKIN_REACH` below, upwards.

The map is the identity outside the eye's corners and beyond the skin's reach, so it meets the flow
around it without a seam. The composition applies it before the flow (``composition.compose``).

G's colour gives way to it around a closing eye (:func:`lid_region`, the blend mask A raised to 1):
G saw the eye closed by its own thin-plate spline, not by this warp, and the London photos it learnt
from have no closed eyes, so what it draws there only reopens the slit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from portraitgan_hub.faces.landmarks import LEFT_EYE, RIGHT_EYE

#: An eye whose lids come this much closer (share of their distance) is closed by the lid warp.
CLOSING_SHARE = 0.1
#: How far above the upper lid and below the lower lid the skin is stretched, in eye widths.
SKIN_REACH = (0.5, 0.3)
#: The lower lid's skin is taken from this far below its landmarks (eye widths), which dlib puts on
#: the lid's inner margin: taken from the landmarks themselves, a sliver of the eye's white shows.
LOWER_MARGIN = 0.1
#: Lids closer than this (eye widths) meet: the curves through dlib's upper and lower points do not
#: pass through the same u, and would leave a sliver of the eye's white between them.
CLOSED_GAP = 0.03
#: Around a closing eye the lid warp alone draws: 1 on every pixel it moves, falling linearly to 0
#: over twice this many eye widths beyond.
LID_REGION_MARGIN = 0.15


@dataclass(frozen=True)
class LidClosing:
    """One closing eye, in crop pixels: its corners in the output (``corners``: (2, 2), points 36
    and 39 or 42 and 45, dlib's first corner first) and its lid curves in that frame, ``(u, v)`` points (4, 2) from
    corner to corner: the photo's lids (``upper_open``/``lower_open``) and the edit's (``upper``/``lower``).
    ``eye``: its landmark indices (``faces.landmarks.RIGHT_EYE`` or ``LEFT_EYE``)."""

    eye: range
    corners: np.ndarray
    upper_open: np.ndarray
    lower_open: np.ndarray
    upper: np.ndarray
    lower: np.ndarray


def _frame(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origin, axis, normal) of an eye's frame: u along the corners, v across, downwards, in eye widths."""
    origin, axis = corners[0], corners[1] - corners[0]
    normal = np.array([-axis[1], axis[0]])
    if normal[1] < 0:
        normal = -normal
    return origin, axis, normal


def _to_frame(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    origin, axis, normal = _frame(corners)
    relative = np.asarray(points, np.float64) - origin
    return np.stack([relative @ axis, relative @ normal], axis=-1) / (axis @ axis)


def _from_frame(uv: np.ndarray, corners: np.ndarray) -> np.ndarray:
    origin, axis, normal = _frame(corners)
    return origin + uv[..., :1] * axis + uv[..., 1:] * normal


def _lids(points: np.ndarray, eye: range) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(corners (2, 2), upper lid (4, 2), lower lid (4, 2)) of ``eye``: the lids from corner to corner."""
    index = list(eye)  # corner, 2 upper, corner, 2 lower (from the far corner back)
    corners = points[[index[0], index[3]]]
    upper = points[[index[0], index[1], index[2], index[3]]]
    lower = points[[index[0], index[5], index[4], index[3]]]
    return corners, upper, lower


def closing_eyes(source: np.ndarray, target: np.ndarray) -> tuple[LidClosing, ...]:
    """The eyes whose lids come together from ``source`` to ``target`` ((68, 2) crop pixels each) by
    at least :data:`CLOSING_SHARE` of their distance."""
    closings = []
    for eye in (RIGHT_EYE, LEFT_EYE):
        s_corners, s_upper, s_lower = _lids(np.asarray(source, np.float64), eye)
        t_corners, t_upper, t_lower = _lids(np.asarray(target, np.float64), eye)
        s_up, s_low = _to_frame(s_upper, s_corners), _to_frame(s_lower, s_corners)
        t_up, t_low = _to_frame(t_upper, t_corners), _to_frame(t_lower, t_corners)
        opening, closed = (s_low - s_up)[1:3, 1].mean(), (t_low - t_up)[1:3, 1].mean()
        if opening > 0 and closed < (1.0 - CLOSING_SHARE) * opening:
            closings.append(LidClosing(eye, t_corners, s_up, s_low, t_up, t_low))
    return tuple(closings)


def open_targets(target: np.ndarray, closings: tuple[LidClosing, ...]) -> np.ndarray:
    """``target`` (68, 2) with each closing eye's lids put back at the photo's opening, in the edited
    eye's place: the targets of the flow, which leaves the closing to :func:`lid_positions`."""
    points = np.asarray(target, np.float64).copy()
    for closing in closings:
        index = list(closing.eye)
        points[[index[1], index[2]]] = _from_frame(closing.upper_open[1:3], closing.corners)
        points[[index[5], index[4]]] = _from_frame(closing.lower_open[1:3], closing.corners)
    return points.astype(np.float32)


def _curve(points: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The lid curve (4 (u, v) points, u increasing from 0 to 1) at ``u``; 0 beyond the corners."""
    order = np.argsort(points[:, 0])
    return np.interp(u, points[order, 0], points[order, 1], left=0.0, right=0.0)


def lid_positions(points: np.ndarray, closings: tuple[LidClosing, ...]) -> np.ndarray:
    """Where each output position ``points`` (..., 2, crop pixels) takes the photo from before the
    flow: moved by every closing eye's lid map (see the module docstring), else unchanged."""
    out = np.asarray(points, np.float64).copy()
    above, below = SKIN_REACH
    for closing in closings:
        width = float(np.linalg.norm(closing.corners[1] - closing.corners[0]))
        low, high = closing.corners.min(axis=0) - width, closing.corners.max(axis=0) + width
        near = np.all((out >= low) & (out <= high), axis=-1)  # the map is the identity beyond
        if not near.any():
            continue
        out[near] = _closed(out[near], closing, above, below)
    return out


def _closed(points: np.ndarray, closing: LidClosing, above: float, below: float) -> np.ndarray:
    """:func:`lid_positions` of one closing eye on ``points`` (N, 2) near it."""
    out = points.copy()
    uv = _to_frame(out, closing.corners)
    u, v = uv[..., 0], uv[..., 1]
    upper_open, lower_open = _curve(closing.upper_open, u), _curve(closing.lower_open, u)
    lower_open = lower_open + LOWER_MARGIN * (lower_open > 0)
    upper, lower = _curve(closing.upper, u), _curve(closing.lower, u)
    shut = lower - upper < CLOSED_GAP  # lids that meet close the whole way across the eye
    upper = np.where(shut, (upper + lower) / 2, upper)
    lower = np.where(shut, upper, lower)
    top, bottom = np.minimum(upper_open, 0.0) - above, np.maximum(lower_open, 0.0) + below
    inside = (u > 0) & (u < 1) & (v > top) & (v < bottom)
    lid_top = inside & (v <= upper)
    lid_bottom = inside & (v >= lower)
    new_v = v.copy()
    span = np.maximum(upper - top, 1e-6)
    new_v[lid_top] = (top + (v - top) * (upper_open - top) / span)[lid_top]
    span = np.maximum(bottom - lower, 1e-6)
    new_v[lid_bottom] = (bottom - (bottom - v) * (bottom - lower_open) / span)[lid_bottom]
    moved = lid_top | lid_bottom
    out[moved] = _from_frame(np.stack([u, new_v], axis=-1)[moved], closing.corners)
    return out


def lid_region(closings: tuple[LidClosing, ...], height: int, width: int) -> torch.Tensor:
    """``(1, 1, height, width)`` float32 in [0, 1]: 1 around each closing eye (crop pixels), 0 away.

    1 on every pixel :func:`lid_positions` moves, falling to 0 over 2 :data:`LID_REGION_MARGIN` eye
    widths beyond (a max-pool of that radius, then a box blur of it); all zeros without closings. In
    an expression edit the renderer raises G's blend mask A to 1 there, so the lid warp alone closes
    the eye.
    """
    if not closings:
        return torch.zeros(1, 1, height, width)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    pixels = np.stack([xs, ys], axis=-1)
    moved = np.abs(lid_positions(pixels, closings) - pixels).max(axis=-1) > 1e-6
    eye_width = max(float(np.linalg.norm(c.corners[1] - c.corners[0])) for c in closings)
    radius = max(1, round(LID_REGION_MARGIN * eye_width))
    region = torch.from_numpy(moved.astype(np.float32))[None, None]
    region = torch.nn.functional.max_pool2d(region, 2 * radius + 1, stride=1, padding=radius)
    return torch.nn.functional.avg_pool2d(region, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)
