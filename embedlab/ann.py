"""Approximate nearest neighbours for large corpora: an inverted-file index (IVF) on spherical k-means centroids,
persisted beside the embedding it indexes.

Why not HNSW (hnswlib is a dependency, `embedlab.retrieval.methods.hnsw`): on 2 shared cores an HNSW graph of
1M x 384 takes minutes to build, and as a persisted blob it holds a second copy of the 1.5 GB of vectors, which the
server would load beside the embedding it already holds. The IVF index is a permutation of the rows grouped by their
nearest centroid (4 bytes a row) and the centroids (~1,000 x 384): it is built in tens of seconds, stored in a few
MB, and searches the embedding matrix the page has already loaded.

Search: the `nprobe` lists whose centroids are nearest to the query, then the exact cosine of the query with every
document of those lists (blockwise, `embedlab.neighbours.top_k_of_scores`' tie rule). Below `ANN_MIN_ROWS` documents
exact search is fast enough (100k x 384: ~15 ms) and no index is used (`use_index`); above it, exact top-10 of one
document costs 120-290 ms on 2 cores at 1M. Recall@10 against exact search is measured by bench/million.py and
tested on a small clustered set (tests/test_ann.py).

Persisted as two matrices (`storage.matrices`): the centroids (float32) and the lists (int32: nlist, then the
nlist + 1 list offsets, then the row permutation), under keys derived from the embedding's own cache key and the
index's parameters (`ann_cache_key`). Their content hash is `ANN_HASH_PREFIX` + the corpus's, so that no corpus
lists them as its matrices (exports never carry them) and deleting the corpus drops them
(`storage.matrices.delete_orphan_matrices`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Callable

import numpy as np
import sqlite_utils
from scipy import sparse

from embedlab.neighbours import top_k, top_k_of_scores
from storage.db import is_read_only, transaction
from storage.errors import StorageError
from storage.matrices import find_matrix, load_matrix, save_matrix

ANN_VERSION = 1
ANN_MIN_ROWS = 200_000      # from here on the Atlas's neighbours come from the index (exact below)
ANN_HASH_PREFIX = "ann:"
NPROBE = 16                 # lists searched per query (1M rows: ~16,000 candidates, 24 MB read)
TRAIN_ROWS = 65_536         # k-means is fitted on a sample of this many rows
TRAIN_ITERATIONS = 8
BLOCK_ROWS = 16_384         # rows assigned to centroids per matrix product

Progress = Callable[[float, str], None]


def n_lists(n: int) -> int:
    """Lists for n rows: about sqrt(n) (1M rows: 1,000 lists of ~1,000 rows), between 16 and 4,096."""
    return int(min(4096, max(16, round(np.sqrt(max(n, 1))))))


def index_params(n: int, *, nlist: int | None = None, nprobe: int = NPROBE, seed: int = 0) -> dict:
    """The parameters an index is built and keyed with."""
    nlist = int(nlist or n_lists(n))
    return {"version": ANN_VERSION, "kind": "ivf", "nlist": nlist, "nprobe": int(min(nprobe, nlist)),
            "seed": int(seed), "train_rows": TRAIN_ROWS, "iterations": TRAIN_ITERATIONS}


def ann_cache_key(embedding_key: str, params: dict) -> str:
    """The key of the index (`params`) of the embedding stored under `embedding_key` (shared or private)."""
    payload = json.dumps({"embedding": embedding_key, "ann": params}, sort_keys=True)
    return "ann:" + hashlib.sha256(payload.encode()).hexdigest()


def use_index(n: int) -> bool:
    """Whether neighbours of a corpus of n documents come from the index (else exact)."""
    return n >= ANN_MIN_ROWS


@dataclass
class IvfIndex:
    centroids: np.ndarray   # (nlist, d) float32, unit rows
    offsets: np.ndarray     # (nlist + 1,) int64: list j holds order[offsets[j]:offsets[j + 1]]
    order: np.ndarray       # (n,) int32: the rows grouped by list
    params: dict

    @property
    def n(self) -> int:
        return int(len(self.order))

    def candidates(self, q: np.ndarray, nprobe: int | None = None) -> np.ndarray:
        """The rows of the `nprobe` lists nearest to the unit vector q."""
        nprobe = int(min(nprobe or self.params["nprobe"], len(self.centroids)))
        near = np.argpartition(-(self.centroids @ q), nprobe - 1)[:nprobe]
        return np.concatenate([self.order[self.offsets[j]:self.offsets[j + 1]] for j in near])

    def search(self, X: np.ndarray, query, *, k: int = 10, exclude_self: bool = True,
               nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`top_k(X, query, k=k)` for one query (a document index or a vector), approximately: (idx, scores),
        best first. X is the matrix the index was built on (rows L2-normalised)."""
        if len(X) != self.n:
            raise ValueError(f"the index covers {self.n} rows, the matrix has {len(X)}")
        if isinstance(query, (int, np.integer)):
            focus = int(query) % len(X)
            q = np.asarray(X[focus], dtype=np.float32)
        else:
            focus, q = None, np.asarray(query, dtype=np.float32).reshape(-1)
        rows = np.sort(self.candidates(q, nprobe))
        if focus is not None and exclude_self:
            rows = rows[rows != focus]
        if len(rows) < k:       # a query far from every list: search everything
            return top_k(X, focus if focus is not None else q, k=k, exclude_self=exclude_self)
        # einsum, not BLAS: a matrix-vector product wakes BLAS's threads, which costs more than it saves here
        scores = np.einsum("ij,j->i", X[rows], q)[None, :]
        pos, best = top_k_of_scores(scores, min(k, len(rows)))
        return rows[pos[0]], best[0]


def build_index(X: np.ndarray, *, nlist: int | None = None, nprobe: int = NPROBE, seed: int = 0,
                progress: Progress | None = None) -> IvfIndex:
    """Spherical k-means on a sample of the (L2-normalised) rows of X, then every row assigned to its nearest
    centroid, blockwise."""
    X = np.asarray(X)
    n = len(X)
    params = index_params(n, nlist=nlist, nprobe=nprobe, seed=seed)
    nlist = min(params["nlist"], n)
    params["nlist"] = nlist
    params["nprobe"] = min(params["nprobe"], nlist)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, TRAIN_ROWS), replace=False))
    S = np.ascontiguousarray(X[sample], dtype=np.float32)
    C = S[rng.choice(len(S), size=nlist, replace=False)].copy()
    for it in range(TRAIN_ITERATIONS):
        if progress:
            progress(0.5 * it / TRAIN_ITERATIONS, f"index: k-means iteration {it + 1}/{TRAIN_ITERATIONS}")
        assign = _nearest(S, C)
        sums = np.asarray(sparse.csr_matrix((np.ones(len(S), np.float32), (assign, np.arange(len(S)))),
                                            shape=(nlist, len(S))) @ S)
        empty = np.bincount(assign, minlength=nlist) == 0
        sums[empty] = S[rng.choice(len(S), size=int(empty.sum()), replace=False)] if empty.any() else 0
        C = _unit(sums)
    assign = np.empty(n, dtype=np.int32)
    for start in range(0, n, BLOCK_ROWS):
        if progress:
            progress(0.5 + 0.5 * start / n, f"index: placing rows {start:,}/{n:,}")
        assign[start:start + BLOCK_ROWS] = _nearest(np.asarray(X[start:start + BLOCK_ROWS], dtype=np.float32), C)
    order = np.argsort(assign, kind="stable").astype(np.int32)
    offsets = np.zeros(nlist + 1, dtype=np.int64)
    np.cumsum(np.bincount(assign, minlength=nlist), out=offsets[1:])
    if progress:
        progress(1.0, "index: done")
    return IvfIndex(C.astype(np.float32), offsets, order, params)


def _nearest(S: np.ndarray, C: np.ndarray) -> np.ndarray:
    return np.argmax(S @ C.T, axis=1).astype(np.int32)


def _unit(A: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(A, axis=1, keepdims=True)
    return (A / np.maximum(norms, 1e-12)).astype(np.float32)


# --- persisted beside the embedding ---------------------------------------------------------------------------------


def _keys(embedding_key: str, params: dict) -> tuple[str, str]:
    key = ann_cache_key(embedding_key, params)
    return key + ":centroids", key + ":lists"


def save_index(db: sqlite_utils.Database, index: IvfIndex, *, embedding_key: str, content_hash: str = "") -> None:
    """Store the index under keys derived from the embedding's cache key (replacing nothing that is finished)."""
    ckey, lkey = _keys(embedding_key, index.params)
    lists = np.concatenate([[len(index.centroids)], index.offsets, index.order]).astype(np.int32).reshape(-1, 1)
    scope = ANN_HASH_PREFIX + content_hash
    with transaction(db):
        save_matrix(db, index.centroids, cache_key=ckey, kind="ann", dtype="float32", params=index.params,
                    content_hash=scope)
        save_matrix(db, lists, cache_key=lkey, kind="ann", dtype="int32", params=index.params, content_hash=scope)


def load_index(db: sqlite_utils.Database, *, embedding_key: str, n: int, params: dict | None = None
               ) -> IvfIndex | None:
    """The stored index of the embedding (n rows) with `params` (default: `index_params(n)`), or None."""
    params = params or index_params(n)
    ckey, lkey = _keys(embedding_key, params)
    cm, lm = find_matrix(db, ckey), find_matrix(db, lkey)
    if cm is None or lm is None:
        return None
    lists = load_matrix(db, lm).reshape(-1)
    nlist = int(lists[0])
    offsets = lists[1:nlist + 2].astype(np.int64)
    order = lists[nlist + 2:]
    if len(order) != n:
        return None
    return IvfIndex(load_matrix(db, cm), offsets, np.ascontiguousarray(order), dict(cm.params))


def stored_or_built(db: sqlite_utils.Database, X: np.ndarray, *, embedding_key: str,
                    progress: Progress | None = None) -> IvfIndex:
    """The stored index of the embedding stored under `embedding_key` (X: its rows), or one built now and stored
    beside it (kept in memory only where the database is read-only or full)."""
    index = load_index(db, embedding_key=embedding_key, n=len(X))
    if index is None:
        index = build_index(X, progress=progress)
        meta = find_matrix(db, embedding_key)
        if not is_read_only(db):
            try:
                save_index(db, index, embedding_key=embedding_key,
                           content_hash=meta.content_hash if meta is not None else "")
            except StorageError:
                pass        # a full disk: the index still serves this process
    return index


def recall_at_k(X: np.ndarray, index: IvfIndex, queries: np.ndarray, *, k: int = 10) -> float:
    """Mean share of the exact top-k (cosine, self excluded) that the index finds, over document queries."""
    exact, _ = top_k(X, np.asarray(queries), k=k)
    found = [index.search(X, int(q), k=k)[0] for q in queries]
    return float(np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(exact, found)]))
