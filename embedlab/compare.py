"""How much two embedding spaces of the same documents agree: linear CKA and neighbour overlap."""
from __future__ import annotations

import numpy as np

from embedlab.neighbours import l2_normalise, top_k


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al., 2019) of two representations of the same rows, in [0, 1].

    Feature-space form on column-centred matrices: ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F), so the
    dimensions may differ and the cost is linear in the number of rows. Invariant to rotations and
    isotropic scaling of either space. NaN when a space has no variance.
    """
    X, Y = _same_rows(X, Y)
    X = X.astype(np.float64) - X.mean(axis=0, dtype=np.float64)
    Y = Y.astype(np.float64) - Y.mean(axis=0, dtype=np.float64)
    cross = np.linalg.norm(Y.T @ X) ** 2
    denom = np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)
    if denom == 0:
        return float("nan")
    return float(cross / denom)


def neighbour_overlap(X: np.ndarray, Y: np.ndarray, *, k: int = 10, block: int | None = None) -> np.ndarray:
    """Per document, the share of its k nearest neighbours (cosine, self excluded) that both spaces agree on.

    Exact, for every document: all-pairs scores in tiles of `block` documents (see `neighbours.top_k`).
    The cost is two n x n x d matrix products: seconds for 20k documents, minutes for 100k (see the bench);
    `mean_neighbour_overlap(..., sample=...)` is the quick estimate.
    """
    X, Y = _same_rows(X, Y)
    return _overlap(l2_normalise(X), l2_normalise(Y), np.arange(X.shape[0]), k=k, block=block)


def mean_neighbour_overlap(X: np.ndarray, Y: np.ndarray, *, k: int = 10, sample: int | None = None,
                           seed: int = 0) -> float:
    """Mean of `neighbour_overlap` over all documents, or over a random `sample` of them (neighbours are
    still searched among all documents, so the estimate is unbiased)."""
    X, Y = _same_rows(X, Y)
    n = X.shape[0]
    if sample is None or sample >= n:
        rows = np.arange(n)
    else:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=int(sample), replace=False))
    per_doc = _overlap(l2_normalise(X), l2_normalise(Y), rows, k=k, block=None)
    return float(per_doc.mean()) if per_doc.size else float("nan")


def _overlap(Xn: np.ndarray, Yn: np.ndarray, rows: np.ndarray, *, k: int, block: int | None) -> np.ndarray:
    n = Xn.shape[0]
    k = int(min(k, n - 1))
    if k < 1:
        return np.ones(len(rows), dtype=np.float64) if n == 1 else np.zeros(len(rows))
    idx_x, _ = top_k(Xn, rows, k=k, block=block)
    idx_y, _ = top_k(Yn, rows, k=k, block=block)
    shared = np.zeros(len(rows), dtype=np.int64)
    for start in range(0, len(rows), 16384):  # k x k comparisons per row, in bounded memory
        a, b = idx_x[start:start + 16384], idx_y[start:start + 16384]
        shared[start:start + 16384] = (a[:, :, None] == b[:, None, :]).any(axis=2).sum(axis=1)
    return shared / k


def _same_rows(X, Y) -> tuple[np.ndarray, np.ndarray]:
    X, Y = np.asarray(X), np.asarray(Y)
    if X.ndim != 2 or Y.ndim != 2:
        raise ValueError(f"both spaces must be 2-D matrices, got shapes {X.shape} and {Y.shape}")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"the two spaces must hold the same documents: {X.shape[0]} rows vs {Y.shape[0]}")
    return X, Y
