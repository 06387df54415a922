"""Image and landmark metrics of the paper's evaluation (Table 1: MSE, SSIM) plus landmark error.

* :func:`mse` and :func:`ssim` compare images on the [0, 1] scale (inputs are in [-1, 1]), per image.
  SSIM is Wang et al. (2004) with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
  computed per channel over the valid region and averaged, written here in torch (no torchvision).
* :func:`landmark_nme` is the mean point-to-point error normalised by the inter-ocular distance
  (outer eye corners, points 36 and 45 of the iBUG layout).
* :class:`LandmarkScorer` re-detects the 68 landmarks of a generated image with dlib and scores them
  against the landmarks it was asked to draw; an image where dlib finds no face is counted, not an error.
* :class:`MetricTotals` accumulates all of them over a validation or test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from portraitgan_hub.faces.alignment import Alignment

#: Outer eye corners of the 68-point layout: the inter-ocular distance of 300-W's NME.
OUTER_EYE_CORNERS = (36, 45)


def _unit(images: torch.Tensor) -> torch.Tensor:
    return (images.detach().float().clamp(-1, 1) + 1) / 2


def mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image on the [0, 1] scale; ``(B,)`` from ``(B, C, H, W)`` in [-1, 1]."""
    return (_unit(output) - _unit(target)).pow(2).flatten(1).mean(dim=1)


def _gaussian_1d(size: int, sigma: float) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 2-D Gaussian kernel, ``(size, size)``."""
    g = _gaussian_1d(size, sigma)
    return (g[:, None] * g[None, :]).float()


def _band(g: torch.Tensor, n: int) -> torch.Tensor:
    """``(n - k + 1, n)`` matrix whose row ``i`` holds the 1-D kernel ``g`` at columns ``i .. i + k - 1``."""
    k = len(g)
    columns = torch.arange(n - k + 1, device=g.device)[:, None] + torch.arange(k, device=g.device)[None, :]
    return torch.zeros(n - k + 1, n, dtype=g.dtype, device=g.device).scatter_(1, columns, g.expand(n - k + 1, k))


def ssim(
    output: torch.Tensor,
    target: torch.Tensor,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Structural similarity per image, ``(B,)``, of ``(B, C, H, W)`` images in [-1, 1].

    Local means, variances and covariance use a Gaussian window over the valid region (no padding);
    the SSIM map is averaged over pixels and channels. Images smaller than the window use a window
    of their own size.
    """
    x, y = _unit(output).double(), _unit(target).double()
    size = min(window_size, x.shape[-1], x.shape[-2])
    g = _gaussian_1d(size, sigma).to(x.device)
    rows, columns = _band(g, x.shape[-2]), _band(g, x.shape[-1])

    def blur(t: torch.Tensor) -> torch.Tensor:
        # The Gaussian window is separable: two banded matrix products equal the valid 2-D
        # convolution and are >10x faster on a CPU than a float64 grouped conv2d.
        return rows @ t @ columns.T

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = k1**2, k2**2  # data range 1
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1).float()


def inter_ocular_distance(landmarks: np.ndarray) -> float:
    points = np.asarray(landmarks, dtype=np.float64)
    return float(np.linalg.norm(points[OUTER_EYE_CORNERS[0]] - points[OUTER_EYE_CORNERS[1]]))


def landmark_nme(predicted: np.ndarray, target: np.ndarray) -> float:
    """Mean Euclidean point error divided by the target's inter-ocular distance."""
    predicted = np.asarray(predicted, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if predicted.shape != target.shape or predicted.shape[-1] != 2:
        raise ValueError(f"landmark shapes differ or are not (N, 2): {predicted.shape} vs {target.shape}")
    distance = inter_ocular_distance(target)
    if distance <= 0:
        raise ValueError("target landmarks have zero inter-ocular distance")
    return float(np.linalg.norm(predicted - target, axis=-1).mean() / distance)


class LandmarkScorer:
    """Re-detects landmarks on generated images with dlib and measures their NME.

    dlib's HOG detector does not find faces much smaller than 80 px, so images smaller than
    ``detect_size`` are upscaled (bicubic) before detection and the points mapped back.
    """

    def __init__(self, detector=None, detect_size: int = 256) -> None:
        if detector is None:
            from portraitgan_hub.faces.landmarks import LandmarkDetector

            detector = LandmarkDetector()
        self.detector = detector
        self.detect_size = detect_size

    def detect(self, image: torch.Tensor) -> np.ndarray | None:
        """Landmarks of the largest face in a ``(3, H, W)`` image in [-1, 1], in its pixels; None if no face."""
        from PIL import Image

        array = (_unit(image).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
        picture = Image.fromarray(array)
        scale = max(1.0, self.detect_size / max(picture.size))
        if scale > 1.0:
            picture = picture.resize((round(picture.width * scale), round(picture.height * scale)), Image.BICUBIC)
        faces = self.detector.detect(picture)
        if not faces:
            return None
        sx, sy = picture.width / array.shape[1], picture.height / array.shape[0]
        return (faces[0].landmarks + 0.5) / np.array([sx, sy], np.float32) - 0.5

    def score(self, image: torch.Tensor, target_landmarks: np.ndarray) -> float | None:
        """NME of the landmarks found on ``image`` against ``target_landmarks``; None if no face is found."""
        found = self.detect(image)
        return None if found is None else landmark_nme(found, target_landmarks)


@dataclass
class MetricTotals:
    """Running sums of the validation metrics over any number of batches."""

    samples: int = 0
    mse_sum: float = 0.0
    ssim_sum: float = 0.0
    nme_sum: float = 0.0
    nme_count: int = 0
    no_face: int = 0

    def update(
        self,
        outputs: torch.Tensor,
        targets: torch.Tensor,
        target_landmarks: torch.Tensor | np.ndarray | None = None,
        scorer: LandmarkScorer | None = None,
    ) -> None:
        """Add a batch: ``outputs``/``targets`` ``(B, 3, H, W)`` in [-1, 1], landmarks ``(B, 68, 2)``."""
        self.samples += outputs.shape[0]
        self.mse_sum += float(mse(outputs, targets).sum())
        self.ssim_sum += float(ssim(outputs, targets).sum())
        if scorer is None or target_landmarks is None:
            return
        for image, points in zip(outputs, target_landmarks):
            points = points.cpu().numpy() if isinstance(points, torch.Tensor) else points
            error = scorer.score(image, points)
            if error is None:
                self.no_face += 1
            else:
                self.nme_sum += error
                self.nme_count += 1

    def summary(self) -> dict[str, float]:
        """Means over the samples seen; ``nme`` over the images where dlib found a face."""
        if not self.samples:
            return {}
        out = {
            "mse": self.mse_sum / self.samples,
            "ssim": self.ssim_sum / self.samples,
            "samples": float(self.samples),
        }
        if self.nme_count or self.no_face:
            if self.nme_count:
                out["nme"] = self.nme_sum / self.nme_count
            out["no_face"] = float(self.no_face)
            out["no_face_fraction"] = self.no_face / self.samples
        return out


def crop_border_step(image: Image.Image, alignment: Alignment, band: int = 8) -> tuple[float, float]:
    """Mean brightness just inside and just outside a face crop's edge, in a full-size result.

    Issue #12's measure of a pasted box: ``alignment`` maps ``image`` pixels to its crop; the two
    rings are ``band`` crop pixels wide on either side of the crop's square edge, sampled (bilinear)
    where both lie inside ``image``. Returns (inside, outside) mean luma in grey levels (0..255);
    a converted picture without a visible crop edge has them within a few levels of each other.
    """
    size = alignment.crop_size
    along = np.arange(0.5, size, 1.0)
    sides_in, sides_out = [], []
    for offset in np.arange(0.5, band, 1.0):
        for inside, ring in ((True, sides_in), (False, sides_out)):
            near = offset if inside else -offset
            far = size - offset if inside else size + offset
            ring += [
                np.stack([along, np.full_like(along, near)], 1),
                np.stack([along, np.full_like(along, far)], 1),
                np.stack([np.full_like(along, near), along], 1),
                np.stack([np.full_like(along, far), along], 1),
            ]
    luma = np.asarray(image.convert("L"), dtype=np.float64)
    inner = alignment.to_image(np.concatenate(sides_in) - 0.5)
    outer = alignment.to_image(np.concatenate(sides_out) - 0.5)
    height, width = luma.shape
    valid = np.all((inner >= 0) & (inner <= [width - 1, height - 1]), axis=1)
    valid &= np.all((outer >= 0) & (outer <= [width - 1, height - 1]), axis=1)
    if not valid.any():
        raise ValueError("the crop's edge lies outside the image everywhere: no border to measure")
    return float(_bilinear(luma, inner[valid]).mean()), float(_bilinear(luma, outer[valid]).mean())


def _bilinear(values: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``values`` (H, W) sampled at (N, 2) pixel-index (x, y) points inside it."""
    x, y = points[:, 0], points[:, 1]
    x0 = np.clip(np.floor(x).astype(int), 0, values.shape[1] - 2)
    y0 = np.clip(np.floor(y).astype(int), 0, values.shape[0] - 2)
    fx, fy = x - x0, y - y0
    top = values[y0, x0] * (1 - fx) + values[y0, x0 + 1] * fx
    bottom = values[y0 + 1, x0] * (1 - fx) + values[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy
