"""Gaussian class-conditional machinery shared by the mahalanobis and rmd detectors (`embedlab/ood/detectors/`):
class means with a shared covariance (Lee et al., 2018) and one class-agnostic Gaussian (Ren et al., 2021)."""
from __future__ import annotations

import numpy as np

from embedlab.ood.base import Detector
from embedlab.registry import Param


def whitener(centred: np.ndarray, eps: float) -> np.ndarray:
    """W with W Wᵀ = (Σ + eps·mean(diag Σ)·I)⁻¹ for the covariance Σ of the centred rows."""
    cov = centred.T @ centred / len(centred)
    cov += eps * max(float(np.trace(cov)) / len(cov), 1e-12) * np.eye(len(cov))
    vals, vecs = np.linalg.eigh(cov)
    return vecs / np.sqrt(np.maximum(vals, 1e-12))


def sq_distances(Z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (n × k) between whitened rows and whitened centres."""
    d = (Z * Z).sum(1)[:, None] - 2.0 * Z @ centres.T + (centres * centres).sum(1)[None, :]
    return np.maximum(d, 0.0)


class ClassGaussians(Detector):
    """Fits class means with a shared covariance, and one Gaussian on all training data (not a detector itself)."""
    needs_labels = True
    param_specs = (Param("eps", float, 1e-6, min=0.0, help="covariance shrinkage, a fraction of the mean variance"),)

    def _fit(self, X, labels, label_names, embed_fn):
        classes, y = np.unique(labels, return_inverse=True)
        means = np.stack([X[y == c].mean(0) for c in range(len(classes))])
        self._W = whitener(X - means[y], float(self.config["eps"]))
        self._centres = means @ self._W
        self._mean0 = X.mean(0)
        self._W0 = whitener(X - self._mean0, float(self.config["eps"]))

    def _class_md(self, X):
        """Squared Mahalanobis distance to the nearest class mean (shared covariance)."""
        return sq_distances(X @ self._W, self._centres).min(1)

    def _background_md(self, X):
        """Squared class-agnostic Mahalanobis distance: one Gaussian fitted on all training data."""
        return (((X - self._mean0) @ self._W0) ** 2).sum(1)
