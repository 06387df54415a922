"""Piecewise-affine warp of a face by its 68 landmarks: the classic geometric baseline for expression edits.

The image is cut into triangles over the 68 points plus fixed anchors on the image border, and each
triangle is mapped affinely so that the source landmarks land on the target landmarks; the border
stays put. The triangulation is one fixed Delaunay triangulation of the canonical (mean) face in its
crop (:func:`triangulation`), so that source and target use the same triangles whatever their shape.

The warp is a backward map: each output pixel finds its triangle in a raster of the target
triangles (drawn with ``PIL.ImageDraw``), is mapped by that triangle's affine into the source and
sampled bilinearly. Pixels no triangle covers (possible only where target triangles fold over) keep
their own position.

Here, beside the evaluation, rather than in the ``portraitgan_hub`` package: it is a baseline (the
``warp`` method of :mod:`train.evaluation`; tests and benchmarks also use it to make driving videos),
not a step of an edit. Its inputs come from the package: the canonical face
(``portraitgan_hub.faces.alignment.template_in_crop``) and the landmark check
(``portraitgan_hub.faces.landmarks.check_landmarks``).
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw

from portraitgan_hub.faces.alignment import template_in_crop
from portraitgan_hub.faces.landmarks import check_landmarks

#: Anchors per image side, corners included: 5 gives the corners and three points in between.
ANCHORS_PER_SIDE = 5
_TRIANGULATION_SIZE = 256


def anchor_points(width: int, height: int) -> np.ndarray:
    """Fixed points on the image border (pixel-index coordinates, outer pixel edges), ``(16, 2)``."""
    xs = np.linspace(-0.5, width - 0.5, ANCHORS_PER_SIDE)
    ys = np.linspace(-0.5, height - 0.5, ANCHORS_PER_SIDE)
    top = [(x, ys[0]) for x in xs[:-1]]
    right = [(xs[-1], y) for y in ys[:-1]]
    bottom = [(x, ys[-1]) for x in xs[:0:-1]]
    left = [(xs[0], y) for y in ys[:0:-1]]
    return np.array(top + right + bottom + left, dtype=np.float64)


def delaunay(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles ``(T, 3)`` (indices, counter-clockwise in image coordinates) by Bowyer-Watson.

    Quadratic and plain Python: meant for the ~100 points of a face, computed once. Deterministic
    for a given point order; among co-circular points the first inserted decides.
    """
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    low, high = pts.min(axis=0), pts.max(axis=0)
    centre, span = (low + high) / 2, float((high - low).max()) or 1.0
    # A super-triangle far outside every point; its vertices are n, n+1, n+2.
    big = np.array([centre + (-20 * span, -20 * span), centre + (20 * span, -20 * span), centre + (0, 20 * span)])
    vertices = np.vstack([pts, big])
    triangles: list[tuple[int, int, int]] = [(n, n + 1, n + 2)]

    def circumcircle_contains(tri: tuple[int, int, int], p: np.ndarray) -> bool:
        a, b, c = vertices[list(tri)] - p
        det = (
            (a @ a) * (b[0] * c[1] - c[0] * b[1])
            - (b @ b) * (a[0] * c[1] - c[0] * a[1])
            + (c @ c) * (a[0] * b[1] - b[0] * a[1])
        )
        return det * _orientation(vertices[list(tri)]) > 1e-9

    for index in range(n):
        p = vertices[index]
        bad = [tri for tri in triangles if circumcircle_contains(tri, p)]
        edges: dict[tuple[int, int], int] = {}
        for tri in bad:
            for edge in ((tri[0], tri[1]), (tri[1], tri[2]), (tri[2], tri[0])):
                key = (min(edge), max(edge))
                edges[key] = edges.get(key, 0) + 1
        triangles = [tri for tri in triangles if tri not in bad]
        triangles += [(a, b, index) for (a, b), count in edges.items() if count == 1]
    result = np.array([tri for tri in triangles if max(tri) < n], dtype=np.int64)
    for row in result:  # one orientation for all: counter-clockwise on screen (positive signed area, y down)
        if _orientation(pts[row]) < 0:
            row[[1, 2]] = row[[2, 1]]
    return result


def _orientation(corners: np.ndarray) -> float:
    (ax, ay), (bx, by), (cx, cy) = corners
    return float((bx - ax) * (cy - ay) - (by - ay) * (cx - ax))


@functools.cache
def triangulation() -> np.ndarray:
    """The fixed triangles ``(T, 3)``: indices 0-67 are landmarks, 68 on are :func:`anchor_points`.

    Delaunay of the canonical face in a square crop (``alignment.template_in_crop``) and the border anchors.
    """
    size = _TRIANGULATION_SIZE
    triangles = delaunay(np.vstack([template_in_crop(size), anchor_points(size, size)]))
    triangles.setflags(write=False)
    return triangles


def piecewise_affine_warp(image: Image.Image | np.ndarray, source: np.ndarray, target: np.ndarray):
    """Warp ``image`` so that its landmarks ``source`` move to ``target`` (both ``(68, 2)``, image pixels).

    Returns the same kind as given: a PIL image, or an ``(H, W[, C])`` array of the input dtype
    (integer images are rounded and clipped). ``source == target`` returns the image unchanged.
    """
    as_pil = isinstance(image, Image.Image)
    pixels = np.asarray(image.convert("RGB") if as_pil else image)
    height, width = pixels.shape[:2]
    src_points, dst_points = (
        check_landmarks(points, name) for points, name in ((source, "source"), (target, "target"))
    )
    anchors = anchor_points(width, height)
    src = np.vstack([src_points, anchors])
    dst = np.vstack([dst_points, anchors])
    triangles = triangulation()

    # Backward affines, output (target) -> input (source): for each triangle, M @ [x, y, 1] = source.
    dst_h = np.concatenate([dst[triangles], np.ones(triangles.shape[:2] + (1,))], axis=2)  # (T, 3, 3)
    usable = np.abs(np.linalg.det(dst_h)) > 1e-9  # degenerate (zero-area) target triangles cover nothing
    affines = np.zeros((len(triangles), 3, 2))
    affines[usable] = np.linalg.solve(dst_h[usable], src[triangles][usable])

    raster = Image.new("I", (width, height), 0)
    draw = ImageDraw.Draw(raster)
    for index in np.flatnonzero(usable):
        draw.polygon([tuple(point) for point in dst[triangles[index]]], fill=int(index) + 1)
    owner = np.asarray(raster, dtype=np.int64) - 1

    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    coords = np.stack([xs, ys, np.ones_like(xs)], axis=-1)  # (H, W, 3)
    mapped = np.einsum("hwk,hwkj->hwj", coords, affines[np.maximum(owner, 0)])
    mapped[owner < 0] = coords[owner < 0][:, :2]
    warped = _bilinear(pixels, mapped[..., 0], mapped[..., 1])
    if np.issubdtype(pixels.dtype, np.integer):
        info = np.iinfo(pixels.dtype)
        warped = np.clip(np.rint(warped), info.min, info.max)
    warped = warped.astype(pixels.dtype)
    return Image.fromarray(warped) if as_pil else warped


def _bilinear(pixels: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample ``pixels`` at float positions (pixel-index coordinates), clamped at the border; float64."""
    height, width = pixels.shape[:2]
    x = np.clip(x, 0, width - 1)
    y = np.clip(y, 0, height - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), width - 2) if width > 1 else np.zeros_like(x, np.int64)
    y0 = np.minimum(np.floor(y).astype(np.int64), height - 2) if height > 1 else np.zeros_like(y, np.int64)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    wx, wy = x - x0, y - y0
    if pixels.ndim == 3:
        wx, wy = wx[..., None], wy[..., None]
    data = pixels.astype(np.float64)
    top = data[y0, x0] * (1 - wx) + data[y0, x1] * wx
    bottom = data[y1, x0] * (1 - wx) + data[y1, x1] * wx
    return top * (1 - wy) + bottom * wy
