"""Exact cosine nearest neighbours by blockwise matrix products, and the map's view of them.

The one place for row normalisation (`l2_normalise`), for the blockwise exact top-k (`top_k`, used by the map, the
retrieval methods and the OOD detectors) and for picking each row's best entries of a score matrix
(`top_k_of_scores`, which shares `top_k`'s selection and tie rule).
"""
from __future__ import annotations

import numpy as np

# Largest score tile (queries x documents) held at once: 2^24 float32 values = 64 MiB.
TILE_ELEMENTS = 1 << 24
# A row shorter than this is zero or numerical noise: `l2_normalise` leaves it short instead of blowing it up to a
# unit vector of arbitrary direction (an imported embedding's empty document is recognised by it: storage.transfer).
TINY_NORM = 1e-12


def l2_normalise(X: np.ndarray, *, dtype=np.float32) -> np.ndarray:
    """Rows scaled to unit length, x / max(|x|, TINY_NORM), so that a dot product is a cosine; zero rows stay zero
    (and rows of numerical noise stay shorter than 1). Stored embeddings are normalised by this very function."""
    X = np.asarray(X, dtype=dtype)
    norms = np.linalg.norm(X, axis=-1, keepdims=True)
    return X / np.maximum(norms, TINY_NORM)


def top_k(X: np.ndarray, query, *, k: int = 10, exclude_self: bool = True,
          block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The k documents of X (rows L2-normalised) with the highest cosine to each query, best first.

    `query` is a document index (int), an array of document indices (integer dtype), a vector (d,)
    or vectors (m, d). A document query leaves the document itself out when `exclude_self`.
    Exact: scores are matrix products over blocks of `block` documents, cut to k with argpartition.
    By default a block holds TILE_ELEMENTS scores: one product over all documents for a single query
    (each BLAS call costs a thread wake-up, ~4 ms on a busy 2-core machine), 65,536 documents for 256
    queries or more. One query gives `(idx, scores)` of shape (k,); several give (m, k); k is capped at
    what exists. One query on 100k x 384 float32 reads 150 MB, which bounds it: 15 ms median on the
    2 shared cores of bench/projection_scale.py (X @ q + argsort: 19 ms), 20-30 ms when other jobs load it.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}")
    n = X.shape[0]
    single = False
    self_rows = None
    if isinstance(query, (int, np.integer)):
        query = np.array([int(query)])
        single = True
    q = np.asarray(query)
    if q.dtype.kind in "iu":
        if q.ndim == 0:
            q, single = q.reshape(1), True
        if q.ndim != 1:
            raise ValueError("document queries must be an int or a 1-D array of indices")
        if q.size and (q.min() < -n or q.max() >= n):
            raise IndexError(f"document index out of range for {n} documents")
        q = np.where(q < 0, q + n, q)
        self_rows = q if exclude_self else None
        Q = X[q]
    else:
        if q.ndim == 1:
            q, single = q[None, :], True
        if q.ndim != 2 or q.shape[1] != X.shape[1]:
            raise ValueError(f"query vectors must have {X.shape[1]} columns, got shape {q.shape}")
        Q = q.astype(X.dtype, copy=False)
    k_avail = n - (1 if self_rows is not None else 0)
    k = int(max(0, min(k, k_avail)))
    m = Q.shape[0]
    out_idx = np.empty((m, k), dtype=np.int64)
    out_scores = np.empty((m, k), dtype=np.float32)
    if k > 0 and m > 0:
        if block is None:
            block = TILE_ELEMENTS // min(m, 256)
        _fill_top_k(X, Q, k, block, self_rows, out_idx, out_scores)
    if single:
        return out_idx[0], out_scores[0]
    return out_idx, out_scores


def _fill_top_k(X, Q, k, block, self_rows, out_idx, out_scores):
    """Queries in chunks so that one score tile stays under TILE_ELEMENTS."""
    n, m = X.shape[0], Q.shape[0]
    block = int(max(1, min(block, n)))
    q_chunk = int(max(1, min(m, TILE_ELEMENTS // block)))
    for qs in range(0, m, q_chunk):
        qe = min(m, qs + q_chunk)
        rows = None if self_rows is None else self_rows[qs:qe]
        out_idx[qs:qe], out_scores[qs:qe] = _top_k_rows(X, Q[qs:qe], k, block, rows)


def _top_k_rows(X, Q, k, block, self_rows):
    """Top k of X for each row of Q, merging per-block winners; ties go to the lower index."""
    n = X.shape[0]
    m = Q.shape[0]
    best_idx = np.empty((m, 0), dtype=np.int64)
    best_sc = np.empty((m, 0), dtype=np.float32)
    rows = np.arange(m)
    for start in range(0, n, block):
        end = min(n, start + block)
        S = Q @ X[start:end].T
        if S.dtype != np.float32:
            S = S.astype(np.float32)
        if self_rows is not None:
            inside = (self_rows >= start) & (self_rows < end)
            S[rows[inside], self_rows[inside] - start] = -np.inf
        part = _largest_columns(S, min(k, end - start))
        best_idx, best_sc = _best_first(np.concatenate([best_idx, part + start], axis=1),
                                        np.concatenate([best_sc, np.take_along_axis(S, part, axis=1)], axis=1), k)
    return best_idx, best_sc


def top_k_of_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k highest scores, best first, ties to the lower column: (columns int64, scores float32).

    For a score matrix already in hand (BM25, fused or re-ranked scores); k is capped at the number of columns."""
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D, got shape {scores.shape}")
    k = int(max(0, min(k, scores.shape[1])))
    if k == 0:
        return np.zeros((len(scores), 0), np.int64), np.zeros((len(scores), 0), np.float32)
    part = _largest_columns(scores, k)
    ids, best = _best_first(part, np.take_along_axis(scores, part, axis=1), k)
    return ids.astype(np.int64, copy=False), best.astype(np.float32, copy=False)


def _largest_columns(S: np.ndarray, k: int) -> np.ndarray:
    """Columns of each row's k largest entries (1 <= k), in no particular order."""
    n = S.shape[1]
    if k < n:
        # Partitioning for the largest k directly is ~3x faster than partitioning -S for the smallest.
        return np.argpartition(S, -k, axis=1)[:, -k:]
    return np.broadcast_to(np.arange(n), S.shape)


def _best_first(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best candidates of each row: score descending, then id ascending (exact ties at a block's cut may
    still depend on the blocks)."""
    order = np.lexsort((ids, -scores), axis=1)[:, :k]
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(scores, order, axis=1)


def far_on_map(coords: np.ndarray, focus: int, neighbours: np.ndarray, *, quantile: float = 0.9) -> np.ndarray:
    """Flags the neighbours that the map puts far from the focus document.

    A neighbour is far when its map distance to the focus exceeds the `quantile` of the focus's map
    distances to every other document, i.e. when more than that fraction of the corpus lies closer to
    the focus on the map than this neighbour does. The rule is a rank rule relative to corpus size, so
    it reads the same for 1,000 or 100,000 documents and does not flag neighbours that merely sit a
    few dozen places down inside the focus's own (dense) island. Lower `quantile` flags more: on the
    UMAP map of AG News (7,600 MiniLM embeddings) 0.9 flags 0.3 % of true top-10 neighbours (2 % of
    documents show a flag), 0.75 flags 0.9 % (5 %), 0.5 flags 2.7 % (13 %).
    """
    coords = np.asarray(coords, dtype=np.float64)
    neighbours = np.asarray(neighbours, dtype=np.int64).reshape(-1)
    n = coords.shape[0]
    if not 0 <= focus < n:
        raise IndexError(f"focus {focus} out of range for {n} documents")
    if n < 3 or neighbours.size == 0:
        return np.zeros(neighbours.shape, dtype=bool)
    dist = np.linalg.norm(coords - coords[focus], axis=1)
    others = np.delete(dist, focus)
    threshold = np.quantile(others, float(quantile))
    return dist[neighbours] > threshold
