"""Deep nearest neighbours (Sun et al., 2022): distance to the k-th nearest training embedding."""
from __future__ import annotations

import numpy as np

from embedlab.errors import InputError
from embedlab.ood.base import Detector, l2_normalise, register

_BLOCK = 2048  # test rows per similarity block: keeps the block at ~2048 × n_train floats


def kth_largest_similarity(Q: np.ndarray, bank: np.ndarray, k: int) -> np.ndarray:
    """The k-th largest inner product of each row of Q with the rows of bank, in row blocks."""
    out = np.empty(len(Q))
    for start in range(0, len(Q), _BLOCK):
        sims = Q[start:start + _BLOCK] @ bank.T
        out[start:start + _BLOCK] = sims.max(1) if k == 1 else -np.partition(-sims, k - 1, axis=1)[:, k - 1]
    return out


@register
class KNNDetector(Detector):
    name = "knn"
    description = "Cosine distance to the k-th nearest in-distribution embedding (Sun et al., 2022)."
    # k = 1: best on CLINC150 of {1, 5, 10, 50} (AUROC .963/.961/.956/.935); with 100 examples per intent
    # the paper's k = 50 reaches into other intents.
    params = {"k": 1}

    def _fit(self, X, labels, label_names, embed_fn):
        k = int(self.config["k"])
        if not 1 <= k <= len(X):
            raise InputError(f"knn: k must be between 1 and the {len(X)} in-distribution samples, got {k}")
        self._bank = l2_normalise(X).astype(np.float32)

    def _score(self, X):
        sims = kth_largest_similarity(l2_normalise(X).astype(np.float32), self._bank, int(self.config["k"]))
        return 1.0 - sims
