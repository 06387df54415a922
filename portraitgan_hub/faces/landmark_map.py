"""The paper's one-channel landmark image L: the 68 points drawn as the outline of each facial part.

Training and editing both draw with :func:`draw_landmark_map`, so the generator sees exactly the
same kind of lines whether the landmarks were detected or edited by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from portraitgan_hub.faces.landmarks import FACE_PARTS, NUM_LANDMARKS

Size = int | tuple[int, int]


def _hw(size: Size) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, (int, np.integer)) else size
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {size}")
    return int(height), int(width)


def draw_landmark_map(landmarks: np.ndarray, size: Size, line_width: int = 2) -> np.ndarray:
    """Draw the parts of ``landmarks`` on a black ``size`` canvas; ``(h, w)`` float32, values 0 or 1.

    ``landmarks`` is ``(68, 2)`` ``(x, y)`` in pixel coordinates of the canvas (points may lie
    outside it). ``size`` is one side of a square or ``(height, width)``. The jaw, brows, nose
    bridge and nose base are open polylines; the eyes and both lip contours are closed.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"expected ({NUM_LANDMARKS}, 2) landmarks, got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("landmarks contain NaN or infinity")
    if line_width < 1:
        raise ValueError(f"line_width must be at least 1, got {line_width}")
    height, width = _hw(size)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for _name, indices, closed in FACE_PARTS:
        part = [(int(x), int(y)) for x, y in np.rint(points[list(indices)])]
        if closed:
            part.append(part[0])
        draw.line(part, fill=255, width=int(line_width), joint="curve")
    return np.asarray(canvas, dtype=np.float32) / 255.0


def landmark_map_tensor(
    landmarks: np.ndarray | torch.Tensor | Sequence[np.ndarray], size: Size, line_width: int = 2
) -> torch.Tensor:
    """:func:`draw_landmark_map` for one ``(68, 2)`` or a batch ``(B, 68, 2)``: ``(B, 1, H, W)`` float32."""
    if isinstance(landmarks, torch.Tensor):
        landmarks = landmarks.detach().cpu().numpy()
    batch = np.asarray(landmarks, dtype=np.float64)
    if batch.ndim == 2:
        batch = batch[None]
    if batch.ndim != 3:
        raise ValueError(f"expected (68, 2) or (B, 68, 2) landmarks, got {batch.shape}")
    maps = np.stack([draw_landmark_map(points, size, line_width) for points in batch])
    return torch.from_numpy(maps[:, None])
