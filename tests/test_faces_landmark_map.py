from __future__ import annotations

import numpy as np
import pytest
import torch

from portraitgan_hub.faces.alignment import template_in_crop
from portraitgan_hub.faces.landmark_map import draw_landmark_map, landmark_map_tensor


def _lit(canvas: np.ndarray, a: np.ndarray, b: np.ndarray, t: float = 0.5) -> bool:
    """Whether the canvas is drawn at the point ``t`` of the way from ``a`` to ``b``."""
    x, y = np.rint(a + t * (b - a)).astype(int)
    return bool(canvas[y, x])


def test_map_is_binary_float_of_the_requested_size():
    points = template_in_crop(256)
    canvas = draw_landmark_map(points, 256)
    assert canvas.shape == (256, 256) and canvas.dtype == np.float32
    assert set(np.unique(canvas)) == {0.0, 1.0}
    assert draw_landmark_map(points, (200, 300)).shape == (200, 300)


def test_parts_are_open_or_closed_as_in_the_paper():
    points = template_in_crop(512)
    canvas = draw_landmark_map(points, 512, line_width=1)
    assert _lit(canvas, points[41], points[36])  # eye closed
    assert _lit(canvas, points[59], points[48])  # outer lips closed
    assert _lit(canvas, points[67], points[60])  # inner lips closed
    assert not _lit(canvas, points[16], points[0], t=0.15)  # jaw open (its midpoint is on the nose)
    assert not _lit(canvas, points[21], points[17])  # brow open
    assert not _lit(canvas, points[35], points[31])  # nose base open
    for i in (5, 19, 28, 33):
        x, y = np.rint(points[i]).astype(int)
        assert canvas[y, x] == 1


def test_line_width_and_resolution():
    points = template_in_crop(256)
    thin = draw_landmark_map(points, 256, line_width=1).sum()
    thick = draw_landmark_map(points, 256, line_width=4).sum()
    assert 3 * thin < thick < 5 * thin
    doubled = draw_landmark_map((points + 0.5) * 2 - 0.5, 512, line_width=2).sum()
    assert 1.5 * draw_landmark_map(points, 256, line_width=2).sum() < doubled


def test_points_off_canvas_are_clipped_not_errors():
    points = template_in_crop(256) + 200.0
    assert draw_landmark_map(points, 256).shape == (256, 256)


def test_invalid_input():
    with pytest.raises(ValueError):
        draw_landmark_map(np.zeros((5, 2)), 64)
    with pytest.raises(ValueError):
        draw_landmark_map(np.full((68, 2), np.nan), 64)
    with pytest.raises(ValueError):
        draw_landmark_map(template_in_crop(64), 64, line_width=0)


def test_tensor_batches():
    points = template_in_crop(128)
    single = landmark_map_tensor(points, 128)
    assert single.shape == (1, 1, 128, 128) and single.dtype == torch.float32
    batch = landmark_map_tensor(torch.from_numpy(np.stack([points, points + 3])), (128, 96), line_width=3)
    assert batch.shape == (2, 1, 128, 96)
    assert float(batch.min()) == 0.0 and float(batch.max()) == 1.0
    assert torch.equal(single[0, 0], torch.from_numpy(draw_landmark_map(points, 128)))
