"""Maximum softmax probability (Hendrycks & Gimpel, 2017) of the logistic-regression head."""
from __future__ import annotations

import numpy as np

from embedlab.ood.base import register
from embedlab.ood.logits import HeadDetector, logsumexp


@register
class MSPDetector(HeadDetector):
    name = "msp"
    description = "Minus the maximum softmax probability of a logistic-regression head (Hendrycks & Gimpel, 2017)."

    def _score(self, X):
        z = self.head.logits(X)
        return -np.exp(z.max(1) - logsumexp(z))
