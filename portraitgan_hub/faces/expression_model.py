"""Expression apart from face shape: a linear identity + expression model of the 68 landmarks.

A face's 68 points ``x``, in the canonical frame of :mod:`portraitgan_hub.faces.expressions` (mapped
by a similarity fitted on the eyes and nose onto the mean face; eye units, 1 = the distance between
the eye centres, y down), are modelled as::

    x = mean + identity + expression + noise
    identity   ~ N(0, C_id),  C_id = U_id diag(var_id) U_id^T   (PCA of neutral shapes)
    expression = 0 with probability 1 - prior, else ~ N(0, C_ex),
                 C_ex = U_ex diag(var_ex) U_ex^T                 (PCA about 0 of smiling - neutral)
    noise      ~ N(0, noise I)

fitted on the neutral/smiling pairs of the London training people
(``data/expression_model.json``, derived by :mod:`portraitgan_hub.faces.derive_expression_model`).
This is the additive identity/expression split of linear face models (Amberg, Knothe and Vetter
2008, "Expression invariant 3D face recognition with a morphable model"; the identity and
expression bases of 3D morphable models, the linear case of Vlasic et al. 2005, "Face transfer with
multilinear models"), used on 2D landmarks. A face's expression is estimated from its landmarks
alone as the posterior mean under that spike-and-slab prior: the Gaussian (Wiener / MAP) estimate
``C_ex (C_id + C_ex + noise I)^-1 (x - mean)``, weighted by the posterior probability that the face
shows an expression at all (the likelihood ratio of the two Gaussians). Its neutral shape is ``x``
minus that expression, so whatever the model cannot explain stays with the face's shape.

A face shape alone cannot always say what is expression: a wide mouth may be a smile or a wide
mouth. The estimate is what the 72 training people's data make most likely, not the truth; the
figures of the fit (leave-one-person-out and on the 8 held-out people) are in the data file.

What it reaches as a reference transfer, and what was tried, is in the model card's Limits.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import numpy as np

from portraitgan_hub.faces.alignment import (
    ALIGNMENT_INDICES,
    DATA_DIR,
    apply_affine,
    invert_affine,
    mean_face,
    similarity_transform,
)
from portraitgan_hub.faces.landmarks import NUM_LANDMARKS, check_landmarks

MODEL_FILE = DATA_DIR / "expression_model.json"
_DIMENSION = 2 * NUM_LANDMARKS


def to_canonical(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(68, 2)`` points in the mean face's eye-unit frame, and the ``(2, 3)`` matrix that maps them back."""
    indices = list(ALIGNMENT_INDICES)
    to_frame = similarity_transform(points[indices], mean_face()[indices])
    return apply_affine(to_frame, points), invert_affine(to_frame)


def _gaussian_log_density(residual: np.ndarray, inverse: np.ndarray, log_det: float) -> float:
    """log N(residual; 0, C) up to the constant shared by every such density of the same dimension."""
    return -0.5 * (log_det + float(residual @ inverse @ residual))


@dataclass(frozen=True)
class ExpressionModel:
    """The fitted model; every array in canonical eye units, flattened shapes are ``(136,)`` = (68, 2) row-major.

    ``identity_basis`` ``(k_id, 136)`` and ``expression_basis`` ``(k_ex, 136)`` have orthonormal rows;
    ``identity_variance`` ``(k_id,)`` and ``expression_variance`` ``(k_ex,)`` are the variances along
    them (eye units squared), ``noise_variance`` the isotropic rest, ``expression_prior`` the prior
    probability that a face shows an expression. Raises ``ValueError`` for inconsistent shapes or
    non-positive variances.
    """

    mean: np.ndarray  # (68, 2)
    identity_basis: np.ndarray
    identity_variance: np.ndarray
    expression_basis: np.ndarray
    expression_variance: np.ndarray
    noise_variance: float
    expression_prior: float

    def __post_init__(self) -> None:
        if self.mean.shape != (NUM_LANDMARKS, 2):
            raise ValueError(f"mean has shape {self.mean.shape}, expected ({NUM_LANDMARKS}, 2)")
        for name in ("identity", "expression"):
            basis, variance = getattr(self, f"{name}_basis"), getattr(self, f"{name}_variance")
            if basis.ndim != 2 or basis.shape[1] != _DIMENSION or variance.shape != (basis.shape[0],):
                raise ValueError(f"{name} basis {basis.shape} and variance {variance.shape} do not match")
            if not (variance > 0).all():
                raise ValueError(f"{name} variances must be positive")
        if not self.noise_variance > 0 or not 0 < self.expression_prior < 1:
            raise ValueError("noise_variance must be > 0 and expression_prior in (0, 1)")

    @functools.cached_property
    def _filters(self) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, float]:
        """(Wiener filter, inverse and log-determinant of the neutral and of the expressive covariance)."""
        neutral = (self.identity_basis.T * self.identity_variance) @ self.identity_basis
        neutral += self.noise_variance * np.eye(_DIMENSION)
        expression = (self.expression_basis.T * self.expression_variance) @ self.expression_basis
        expressive = neutral + expression
        inverse_neutral, inverse_expressive = np.linalg.inv(neutral), np.linalg.inv(expressive)
        return (
            expression @ inverse_expressive,
            inverse_neutral,
            float(np.linalg.slogdet(neutral)[1]),
            inverse_expressive,
            float(np.linalg.slogdet(expressive)[1]),
        )

    def expression_probability(self, canonical: np.ndarray) -> float:
        """Posterior probability (0..1) that the canonical ``(68, 2)`` shape shows an expression."""
        _, inverse_neutral, log_det_neutral, inverse_expressive, log_det_expressive = self._filters
        residual = (np.asarray(canonical, dtype=np.float64) - self.mean).ravel()
        log_ratio = _gaussian_log_density(residual, inverse_expressive, log_det_expressive)
        log_ratio -= _gaussian_log_density(residual, inverse_neutral, log_det_neutral)
        log_ratio += np.log(self.expression_prior / (1.0 - self.expression_prior))
        return float(1.0 / (1.0 + np.exp(-np.clip(log_ratio, -60.0, 60.0))))

    def expression(self, canonical: np.ndarray) -> np.ndarray:
        """The estimated expression displacement ``(68, 2)`` of a canonical shape (posterior mean, eye units)."""
        wiener = self._filters[0]
        residual = (np.asarray(canonical, dtype=np.float64) - self.mean).ravel()
        return self.expression_probability(canonical) * (wiener @ residual).reshape(NUM_LANDMARKS, 2)

    def neutral(self, canonical: np.ndarray) -> np.ndarray:
        """The estimated neutral shape ``(68, 2)`` of a canonical shape: it minus :meth:`expression`."""
        canonical = np.asarray(canonical, dtype=np.float64)
        return canonical - self.expression(canonical)

    @classmethod
    def from_dict(cls, data: dict) -> ExpressionModel:
        """The model of a parsed ``expression_model.json``; ``KeyError``/``ValueError`` if it is malformed."""

        def array(key: str) -> np.ndarray:
            return np.asarray(data[key], dtype=np.float64)

        def basis(key: str) -> np.ndarray:
            return array(key).reshape(len(data[key]), _DIMENSION)

        return cls(
            mean=array("mean"),
            identity_basis=basis("identity_basis"),
            identity_variance=array("identity_variance"),
            expression_basis=basis("expression_basis"),
            expression_variance=array("expression_variance"),
            noise_variance=float(data["noise_variance"]),
            expression_prior=float(data["expression_prior"]),
        )


@functools.lru_cache(maxsize=1)
def expression_model() -> ExpressionModel:
    """The package's fitted model (``data/expression_model.json``), loaded once."""
    return ExpressionModel.from_dict(json.loads(MODEL_FILE.read_text(encoding="utf-8")))


def estimate_neutral(landmarks: np.ndarray) -> np.ndarray:
    """The ``(68, 2)`` float32 neutral shape of a face, estimated from its ``landmarks`` alone, in their frame.

    ``landmarks``: ``(68, 2)`` points in any pixel frame (``ValueError`` otherwise). The points are
    mapped to the canonical frame, :meth:`ExpressionModel.neutral` removes the estimated expression,
    and the result is mapped back.
    """
    canonical, back = to_canonical(check_landmarks(landmarks).astype(np.float64))
    return apply_affine(back, expression_model().neutral(canonical)).astype(np.float32)


def estimate_expression(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """A face's estimated expression displacement ``(68, 2)`` in canonical eye units, and the probability
    (0..1) that it shows one; ``landmarks`` as in :func:`estimate_neutral`."""
    canonical, _ = to_canonical(check_landmarks(landmarks).astype(np.float64))
    model = expression_model()
    return model.expression(canonical), model.expression_probability(canonical)
