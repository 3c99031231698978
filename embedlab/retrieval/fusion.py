"""Hybrid retrieval: Reciprocal Rank Fusion (Cormack et al., 2009) of BM25 and dense runs.

A faithful reimplementation of ranx's `fuse(method="rrf")`: each run contributes 1 / (k + rank), rank from 1 in
that run's order, summed over runs (a document absent from a run gets nothing from it). Checked against ranx in
the tests; done in numpy so that a single query does not pay ranx's per-call Run construction.
"""
from __future__ import annotations

import numpy as np

from embedlab.retrieval.base import RetrievalMethod, TextSet, top_k
from embedlab.retrieval.registry import create_method, register


def rrf_fuse(runs: list[np.ndarray], n_docs: int, *, k: int = 60) -> np.ndarray:
    """[n_q, n_docs] RRF scores from ranked id lists ([n_q, depth_i] each, best first; -1 pads)."""
    n_q = len(runs[0]) if runs else 0
    fused = np.zeros((n_q, n_docs), dtype=np.float64)
    rows = np.arange(n_q)[:, None]
    for ids in runs:
        ids = np.asarray(ids, dtype=np.int64)
        contrib = np.broadcast_to(1.0 / (k + np.arange(1, ids.shape[1] + 1)), ids.shape)
        valid = ids >= 0
        np.add.at(fused, (np.broadcast_to(rows, ids.shape)[valid], ids[valid]), contrib[valid])
    return fused


@register
class HybridRRF(RetrievalMethod):
    name = "hybrid-rrf"
    description = "Reciprocal Rank Fusion (k=60) of the BM25 and dense top-`depth` lists"
    params = {"rrf_k": 60, "depth": 100}
    needs = frozenset({"text", "embeddings"})

    def load_libraries(self) -> None:
        create_method("bm25").load_libraries()

    def build(self, corpus: TextSet) -> "HybridRRF":
        self._parts = [create_method("bm25").build(corpus), create_method("dense").build(corpus)]
        self.n_docs = len(corpus)
        return self

    def search(self, queries: TextSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        depth = max(k, self.params["depth"])
        runs = [part.search(queries, depth)[0] for part in self._parts]
        fused = rrf_fuse(runs, self.n_docs, k=self.params["rrf_k"])
        # Only documents found by some run are candidates (a zero-score document never ranks).
        ids, scores = top_k(np.where(fused > 0, fused, -np.inf), min(k, self.n_docs))
        return ids, scores

    @property
    def index_bytes(self) -> int:
        return sum(part.index_bytes for part in self._parts)
