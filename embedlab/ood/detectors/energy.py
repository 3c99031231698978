"""Energy score (Liu et al., 2020) of the logistic-regression head."""
from __future__ import annotations

from embedlab.ood.base import register
from embedlab.ood.logits import C_PARAM, HeadDetector, logsumexp
from embedlab.registry import Param


@register
class EnergyDetector(HeadDetector):
    name = "energy"
    description = "Free energy −T·logsumexp(logits/T) of a logistic-regression head (Liu et al., 2020)."
    param_specs = (C_PARAM, Param("temperature", float, 1.0, min=1e-3, help="T (positive)"))

    def _score(self, X):
        T = float(self.config["temperature"])
        return -T * logsumexp(self.head.logits(X) / T)
