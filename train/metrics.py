"""Image and landmark metrics of the paper's evaluation (Table 1: MSE, SSIM) plus landmark error.

* :func:`mse` and :func:`ssim` compare images on the [0, 1] scale (inputs are in [-1, 1]), per image.
  SSIM is Wang et al. (2004) with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
  computed per channel over the valid region and averaged, written here in torch (no torchvision).
* :func:`mouth_window` and :func:`mouth_ssim`: SSIM on a fixed box around the mouth (points 48-67),
  where an expression edit changes most and a whole-image SSIM changes least.
* :func:`psnr`, :func:`grey` and :func:`laplacian_variance` compare a photo with a re-rendering of it
  (the no-op fidelity of ``train/evaluate.py``): PSNR in dB and the fine detail left (Laplacian
  variance); :func:`mean_chroma` measures how far an output is from grey (a sketch should be grey).
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
#: The mouth of the 68-point layout: outer (48-59) and inner (60-67) lips.
MOUTH_POINTS = range(48, 68)
#: :func:`mouth_window` pads the mouth's bounding box by this share of its width (left and right)
#: and of its height (top and bottom).
MOUTH_PAD = 0.15


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


def mouth_window(
    landmarks: np.ndarray | torch.Tensor, size: int | tuple[int, int], pad: float = MOUTH_PAD
) -> tuple[int, int, int, int]:
    """The box ``(x0, y0, x1, y1)`` (right and bottom exclusive) around the mouth of ``landmarks``.

    ``landmarks``: (68, 2) pixel-index points (integers are pixel centres) of an image of ``size``
    (a side, or ``(height, width)``). The bounding box of points 48-67, padded by ``pad`` times its
    width on the left and right and its height on the top and bottom, widened to whole pixels and
    clamped to the image. ``ValueError`` if the mouth lies outside the image.
    """
    height, width = (size, size) if isinstance(size, int) else size
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"landmarks must be (68, 2), got {points.shape}")
    mouth = points[list(MOUTH_POINTS)]
    low, high = mouth.min(axis=0), mouth.max(axis=0)
    margin = pad * (high - low)
    x0, y0 = np.floor(low - margin).astype(int)
    x1, y1 = np.ceil(high + margin).astype(int) + 1
    box = (max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1)))
    if box[0] >= box[2] or box[1] >= box[3]:
        raise ValueError(
            f"the mouth (points 48-67, {low.round(1)} to {high.round(1)}) is outside the {width}x{height} image"
        )
    return box


def mouth_ssim(
    output: torch.Tensor, target: torch.Tensor, landmarks: np.ndarray | torch.Tensor, pad: float = MOUTH_PAD
) -> torch.Tensor:
    """SSIM per image, ``(B,)``, inside each image's :func:`mouth_window` of ``landmarks`` (B, 68, 2).

    ``output`` and ``target``: ``(B, C, H, W)`` in [-1, 1]. The window depends only on the landmarks,
    so every method scored against the same target landmarks is scored on the same pixels.
    """
    scores = []
    for i in range(output.shape[0]):
        x0, y0, x1, y1 = mouth_window(landmarks[i], tuple(output.shape[-2:]), pad)
        scores.append(ssim(output[i : i + 1, :, y0:y1, x0:x1], target[i : i + 1, :, y0:y1, x0:x1]))
    return torch.cat(scores) if scores else torch.zeros(0)


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB of two arrays of one shape with values in 0..``data_range``.

    ``10 log10(data_range^2 / MSE)``; ``inf`` for identical arrays.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"psnr needs two non-empty arrays of one shape, got {a.shape} and {b.shape}")
    error = float(np.mean((a - b) ** 2))
    return float("inf") if error == 0 else float(10 * np.log10(data_range**2 / error))


def grey(rgb: np.ndarray) -> np.ndarray:
    """``(H, W)`` float64 luma (ITU-R BT.601 weights, no rounding) of an ``(H, W, 3)`` RGB array."""
    rgb = np.asarray(rgb, dtype=np.float64)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of an ``(H, W)`` grey image (valid region, no padding).

    A measure of fine detail: blurring lowers it, noise raises it. 0 for images under 3x3.
    """
    g = np.asarray(grey, dtype=np.float64)
    if g.ndim != 2:
        raise ValueError(f"laplacian_variance takes an (H, W) grey image, got shape {g.shape}")
    if min(g.shape) < 3:
        return 0.0
    laplacian = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
    return float(laplacian.var())


#: Periods (pixels) of the grids a decoder draws: a stride-2 transposed convolution at each of the
#: four upsampling stages repeats its uneven overlap every 2, 4, 8 and 16 output pixels.
GRID_PERIODS = (2, 4, 8, 16)


def grid_artifact_score(grey: np.ndarray, periods: tuple[int, ...] = GRID_PERIODS) -> float:
    """An FFT measure of checkerboard artifacts (Odena et al. 2016): how far the power spectrum of
    ``grey`` (H, W), any range, stands out at the grid frequencies of ``periods``.

    The image is cropped to a multiple of the largest period, Hann-windowed, and Fourier-transformed;
    at each first harmonic of each period, (N/p, 0), (0, N/p) and (N/p, N/p), the power is divided
    by the median power of its 7 x 7 neighbourhood (itself left out). Returns the largest log10 ratio
    of these 12: 0.4-0.8 for pictures without a grid (noise, London photos: chance fluctuations),
    4-6 for a faint checkerboard (8 grey levels) added to a photo. Raises ``ValueError`` for an image
    smaller than twice the largest period.
    """
    step = max(periods)
    height, width = (grey.shape[0] // step) * step, (grey.shape[1] // step) * step
    if height < 2 * step or width < 2 * step:
        raise ValueError(f"the image must be at least {2 * step} px on each side, got {grey.shape}")
    image = np.asarray(grey, np.float64)[:height, :width]
    image = (image - image.mean()) * np.outer(np.hanning(height), np.hanning(width))
    power = np.abs(np.fft.fft2(image)) ** 2
    ratios = []
    for period in periods:
        for fy, fx in ((height // period, 0), (0, width // period), (height // period, width // period)):
            rows = np.arange(fy - 3, fy + 4) % height
            cols = np.arange(fx - 3, fx + 4) % width
            window = power[np.ix_(rows, cols)].copy()
            peak = window[3, 3]
            window[3, 3] = np.nan
            ratios.append(np.log10((peak + 1e-12) / (np.nanmedian(window) + 1e-12)))
    return float(np.max(ratios))


def mean_chroma(images: torch.Tensor) -> torch.Tensor:
    """Mean chroma per image, ``(B,)``, in grey levels (0..255) of ``(B, 3, H, W)`` images in [-1, 1].

    Chroma of a pixel = max(R, G, B) - min(R, G, B) on the 0..255 scale: 0 for grey, 255 for pure red.
    """
    unit = _unit(images) * 255
    return (unit.amax(dim=1) - unit.amin(dim=1)).flatten(1).mean(dim=1)


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
