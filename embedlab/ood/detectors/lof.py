"""Local Outlier Factor (Breunig et al., 2000) from scikit-learn, on normalised embeddings."""
from __future__ import annotations

import numpy as np

from embedlab.errors import InputError
from embedlab.neighbours import l2_normalise
from embedlab.ood.base import Detector, register
from embedlab.registry import Param


@register
class LOFDetector(Detector):
    name = "lof"
    description = "Local Outlier Factor on normalised embeddings, i.e. cosine neighbourhoods (Breunig et al., 2000)."
    param_specs = (Param("n_neighbors", int, 20, min=1, help="neighbourhood size: below the in-distribution size"),)

    def _fit(self, X, labels, label_names, embed_fn):
        from sklearn.neighbors import LocalOutlierFactor

        k = int(self.config["n_neighbors"])
        if k >= len(X):
            raise InputError(f"lof: n_neighbors must be between 1 and {len(X) - 1}, got {k}")
        # Euclidean distance on unit vectors is a monotone function of cosine distance.
        self._lof = LocalOutlierFactor(n_neighbors=k, novelty=True, algorithm="brute", n_jobs=1)
        self._lof.fit(l2_normalise(X, dtype=np.float64).astype(np.float32))

    def _score(self, X):
        return -self._lof.score_samples(l2_normalise(X, dtype=np.float64).astype(np.float32))
