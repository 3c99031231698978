"""Mahalanobis (Lee et al., 2018): squared distance to the nearest class mean under a shared covariance."""
from __future__ import annotations

from embedlab.ood.base import register
from embedlab.ood.mahalanobis import ClassGaussians


@register
class MahalanobisDetector(ClassGaussians):
    name = "mahalanobis"
    description = "Squared Mahalanobis distance to the nearest class mean, shared covariance (Lee et al., 2018)."

    def _score(self, X):
        return self._class_md(X)
