"""Generic outlier detectors from scikit-learn: Local Outlier Factor and Isolation Forest."""
from __future__ import annotations

import numpy as np

from embedlab.errors import InputError
from embedlab.ood.base import Detector, l2_normalise, register


@register
class LOFDetector(Detector):
    name = "lof"
    description = "Local Outlier Factor on normalised embeddings, i.e. cosine neighbourhoods (Breunig et al., 2000)."
    params = {"n_neighbors": 20}

    def _fit(self, X, labels, label_names, embed_fn):
        from sklearn.neighbors import LocalOutlierFactor

        k = int(self.config["n_neighbors"])
        if not 1 <= k < len(X):
            raise InputError(f"lof: n_neighbors must be between 1 and {len(X) - 1}, got {k}")
        # Euclidean distance on unit vectors is a monotone function of cosine distance.
        self._lof = LocalOutlierFactor(n_neighbors=k, novelty=True, algorithm="brute", n_jobs=1)
        self._lof.fit(l2_normalise(X).astype(np.float32))

    def _score(self, X):
        return -self._lof.score_samples(l2_normalise(X).astype(np.float32))


@register
class IsolationForestDetector(Detector):
    name = "iforest"
    description = "Isolation Forest: how few random splits isolate a point (Liu et al., 2008)."
    params = {"n_estimators": 200, "seed": 0}

    def _fit(self, X, labels, label_names, embed_fn):
        from sklearn.ensemble import IsolationForest

        self._forest = IsolationForest(n_estimators=int(self.config["n_estimators"]),
                                       random_state=int(self.config["seed"]), n_jobs=1)
        self._forest.fit(l2_normalise(X))

    def _score(self, X):
        return -self._forest.score_samples(l2_normalise(X))
