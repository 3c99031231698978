"""Relative Mahalanobis (Ren et al., 2021): class Mahalanobis minus the class-agnostic one."""
from __future__ import annotations

from embedlab.ood.base import register
from embedlab.ood.mahalanobis import ClassGaussians


@register
class RelativeMahalanobisDetector(ClassGaussians):
    name = "rmd"
    description = "Relative Mahalanobis: min over classes of MD_k(x) − MD_0(x), MD_0 class-agnostic (Ren et al., 2021)."

    def _score(self, X):
        return self._class_md(X) - self._background_md(X)
