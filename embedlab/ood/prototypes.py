"""Class prototypes: a few k-means centroids per label, scored by the best cosine similarity."""
from __future__ import annotations

import numpy as np

from embedlab.errors import InputError
from embedlab.ood.base import Detector, l2_normalise, register


@register
class PrototypeDetector(Detector):
    name = "prototypes"
    description = "Minus the best cosine similarity to k-means prototypes, a few per class."
    params = {"per_class": 5, "seed": 0}
    needs_labels = True

    def _fit(self, X, labels, label_names, embed_fn):
        from sklearn.cluster import KMeans

        per_class = int(self.config["per_class"])
        if per_class < 1:
            raise InputError(f"prototypes: per_class must be at least 1, got {per_class}")
        Xn = l2_normalise(X)
        centres = []
        for c in np.unique(labels):
            members = Xn[labels == c]
            k = min(per_class, len(members))
            if k == 1:
                centres.append(members.mean(0, keepdims=True))
                continue
            km = KMeans(n_clusters=k, n_init=3, random_state=int(self.config["seed"])).fit(members)
            centres.append(km.cluster_centers_)
        self._prototypes = l2_normalise(np.vstack(centres))

    def _score(self, X):
        return -(l2_normalise(X) @ self._prototypes.T).max(1)
