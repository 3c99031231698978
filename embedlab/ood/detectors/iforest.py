"""Isolation Forest (Liu et al., 2008) from scikit-learn, on normalised embeddings."""
from __future__ import annotations

import numpy as np

from embedlab.neighbours import l2_normalise
from embedlab.ood.base import Detector, register
from embedlab.registry import Param


@register
class IsolationForestDetector(Detector):
    name = "iforest"
    description = "Isolation Forest: how few random splits isolate a point (Liu et al., 2008)."
    param_specs = (
        Param("n_estimators", int, 200, min=1, step=50, help="trees in the forest"),
        Param("seed", int, 0, min=0, help="random seed"),
    )

    def _fit(self, X, labels, label_names, embed_fn):
        from sklearn.ensemble import IsolationForest

        self._forest = IsolationForest(n_estimators=int(self.config["n_estimators"]),
                                       random_state=int(self.config["seed"]), n_jobs=1)
        self._forest.fit(l2_normalise(X, dtype=np.float64))

    def _score(self, X):
        return -self._forest.score_samples(l2_normalise(X, dtype=np.float64))
