"""Gaussian class-conditional detectors: Mahalanobis (Lee et al., 2018) and Relative Mahalanobis (Ren et al., 2021)."""
from __future__ import annotations

import numpy as np

from embedlab.ood.base import Detector, register


def _whitener(centred: np.ndarray, eps: float) -> np.ndarray:
    """W with W Wᵀ = (Σ + eps·mean(diag Σ)·I)⁻¹ for the covariance Σ of the centred rows."""
    cov = centred.T @ centred / len(centred)
    cov += eps * max(float(np.trace(cov)) / len(cov), 1e-12) * np.eye(len(cov))
    vals, vecs = np.linalg.eigh(cov)
    return vecs / np.sqrt(np.maximum(vals, 1e-12))


def _sq_distances(Z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (n × k) between whitened rows and whitened centres."""
    d = (Z * Z).sum(1)[:, None] - 2.0 * Z @ centres.T + (centres * centres).sum(1)[None, :]
    return np.maximum(d, 0.0)


class _ClassGaussians(Detector):
    needs_labels = True
    params = {"eps": 1e-6}

    def _fit(self, X, labels, label_names, embed_fn):
        classes, y = np.unique(labels, return_inverse=True)
        means = np.stack([X[y == c].mean(0) for c in range(len(classes))])
        self._W = _whitener(X - means[y], float(self.config["eps"]))
        self._centres = means @ self._W
        self._mean0 = X.mean(0)
        self._W0 = _whitener(X - self._mean0, float(self.config["eps"]))

    def _class_md(self, X):
        """Squared Mahalanobis distance to the nearest class mean (shared covariance)."""
        return _sq_distances(X @ self._W, self._centres).min(1)

    def _background_md(self, X):
        """Squared class-agnostic Mahalanobis distance: one Gaussian fitted on all training data."""
        return (((X - self._mean0) @ self._W0) ** 2).sum(1)


@register
class MahalanobisDetector(_ClassGaussians):
    name = "mahalanobis"
    description = "Squared Mahalanobis distance to the nearest class mean, shared covariance (Lee et al., 2018)."

    def _score(self, X):
        return self._class_md(X)


@register
class RelativeMahalanobisDetector(_ClassGaussians):
    name = "rmd"
    description = "Relative Mahalanobis: min over classes of MD_k(x) − MD_0(x), MD_0 class-agnostic (Ren et al., 2021)."

    def _score(self, X):
        return self._class_md(X) - self._background_md(X)
