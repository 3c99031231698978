"""How much two embedding spaces of the same documents agree: linear CKA, neighbour overlap, and per document
how far its neighbours move from one space to the other (where the models disagree most)."""
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


def neighbour_disagreement(X: np.ndarray, Y: np.ndarray, *, k: int = 10, depth: int = 50,
                           rows: np.ndarray | None = None, block: int | None = None) -> dict[str, np.ndarray]:
    """Per document (all, or `rows`), how differently the two spaces see its neighbourhood.

    Returns arrays "overlap" (share of the k nearest neighbours both spaces agree on) and "displacement":
    the mean rank displacement of the k nearest neighbours, in both directions — each of X's k neighbours
    is looked up in Y's ranking and vice versa, |rank_X - rank_Y| with a rank past `depth` counted as
    depth + 1, averaged over the 2k neighbours and divided by `depth` + 1 - (k + 1) / 2, the value when the
    two top-k lists are disjoint and no neighbour is within `depth` of the other list (so 1.0 is complete
    disagreement, 0.0 the same ranking). Unlike the overlap, it separates a neighbour that moved from 3rd to
    12th from one that left the top 50, so documents with the same overlap are told apart. Also "score"
    (the mean cosine of the k neighbours in each space, averaged: how tight the neighbourhood is) to break
    the ties that remain.
    """
    X, Y = _same_rows(X, Y)
    n = X.shape[0]
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    k = int(min(k, n - 1))
    depth = int(max(k, min(depth, n - 1)))
    if k < 1:
        zeros = np.zeros(len(rows))
        return {"overlap": np.ones(len(rows)), "displacement": zeros, "score": zeros}
    Xn, Yn = l2_normalise(X), l2_normalise(Y)
    idx_x, sc_x = top_k(Xn, rows, k=depth, block=block)
    idx_y, sc_y = top_k(Yn, rows, k=depth, block=block)
    if idx_x.ndim == 1:
        idx_x, idx_y, sc_x, sc_y = idx_x[None], idx_y[None], sc_x[None], sc_y[None]
    worst = depth + 1 - (k + 1) / 2  # mean |r - (depth + 1)| over ranks 1..k
    overlap = np.zeros(len(rows))
    displacement = np.zeros(len(rows))
    ranks = np.arange(1, depth + 1)
    for start in range(0, len(rows), 2048):
        ax, ay = idx_x[start:start + 2048], idx_y[start:start + 2048]
        # rank in the other list of each of this list's top k (depth + 1 when absent)
        hit_xy = ax[:, :k, None] == ay[:, None, :]          # (m, k, depth)
        hit_yx = ay[:, :k, None] == ax[:, None, :]
        rank_in_y = np.where(hit_xy.any(axis=2), ranks[hit_xy.argmax(axis=2)], depth + 1)
        rank_in_x = np.where(hit_yx.any(axis=2), ranks[hit_yx.argmax(axis=2)], depth + 1)
        own = ranks[:k][None, :]
        moved = np.abs(rank_in_y - own).sum(axis=1) + np.abs(rank_in_x - own).sum(axis=1)
        displacement[start:start + 2048] = moved / (2 * k) / worst
        overlap[start:start + 2048] = (rank_in_y <= k).sum(axis=1) / k
    score = (sc_x[:, :k].mean(axis=1) + sc_y[:, :k].mean(axis=1)) / 2
    return {"overlap": overlap, "displacement": np.clip(displacement, 0.0, 1.0), "score": score.astype(np.float64)}


def disagreement_order(displacement: np.ndarray, overlap: np.ndarray, score: np.ndarray | None = None) -> np.ndarray:
    """Document positions, most disagreement first: by rank displacement (descending), then by overlap
    (ascending), then by how tight the neighbourhood is in both spaces (descending: a tight neighbourhood that
    the other model scatters is the more telling). Never by document id: exact ties keep no id order."""
    displacement = np.asarray(displacement, dtype=np.float64)
    overlap = np.asarray(overlap, dtype=np.float64)
    score = np.zeros_like(displacement) if score is None else np.asarray(score, dtype=np.float64)
    return np.lexsort((-score, overlap, -displacement))


def neighbour_lists(X: np.ndarray, Y: np.ndarray, doc: int, *, k: int = 10) -> list[dict]:
    """The k nearest neighbours of document `doc` in both spaces, side by side: one row per rank with
    idx/cosine in X ("a_idx", "a_cosine") and in Y ("b_idx", "b_cosine"), and whether each is among the
    other space's k ("a_shared", "b_shared")."""
    X, Y = _same_rows(X, Y)
    ia, sa = top_k(l2_normalise(X), int(doc), k=k)
    ib, sb = top_k(l2_normalise(Y), int(doc), k=k)
    set_a, set_b = set(ia.tolist()), set(ib.tolist())
    return [{"rank": r + 1, "a_idx": int(ia[r]), "a_cosine": float(sa[r]), "a_shared": int(ia[r]) in set_b,
             "b_idx": int(ib[r]), "b_cosine": float(sb[r]), "b_shared": int(ib[r]) in set_a}
            for r in range(min(len(ia), len(ib)))]


def _same_rows(X, Y) -> tuple[np.ndarray, np.ndarray]:
    X, Y = np.asarray(X), np.asarray(Y)
    if X.ndim != 2 or Y.ndim != 2:
        raise ValueError(f"both spaces must be 2-D matrices, got shapes {X.shape} and {Y.shape}")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"the two spaces must hold the same documents: {X.shape[0]} rows vs {Y.shape[0]}")
    return X, Y
