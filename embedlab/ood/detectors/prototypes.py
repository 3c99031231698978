"""Class prototypes: a few k-means centroids per label, scored by the best cosine similarity."""
from __future__ import annotations

import numpy as np

from embedlab.neighbours import l2_normalise
from embedlab.ood.base import Detector, register
from embedlab.registry import Param


@register
class PrototypeDetector(Detector):
    name = "prototypes"
    description = "Minus the best cosine similarity to k-means prototypes, a few per class."
    param_specs = (
        Param("per_class", int, 5, min=1, help="k-means prototypes per label (fewer for a small label)"),
        Param("seed", int, 0, min=0, help="random seed of k-means"),
    )
    needs_labels = True

    def _fit(self, X, labels, label_names, embed_fn):
        from sklearn.cluster import KMeans

        per_class = int(self.config["per_class"])
        Xn = l2_normalise(X, dtype=np.float64)
        centres = []
        for c in np.unique(labels):
            members = Xn[labels == c]
            k = min(per_class, len(members))
            if k == 1:
                centres.append(members.mean(0, keepdims=True))
                continue
            km = KMeans(n_clusters=k, n_init=3, random_state=int(self.config["seed"])).fit(members)
            centres.append(km.cluster_centers_)
        self._prototypes = l2_normalise(np.vstack(centres), dtype=np.float64)

    def _score(self, X):
        return -(l2_normalise(X, dtype=np.float64) @ self._prototypes.T).max(1)
