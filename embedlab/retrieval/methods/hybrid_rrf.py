"""Hybrid retrieval: Reciprocal Rank Fusion of the BM25 and dense runs (see `embedlab.retrieval.fusion`)."""
from __future__ import annotations

import numpy as np

from embedlab.neighbours import top_k_of_scores
from embedlab.registry import Param
from embedlab.retrieval.base import RetrievalMethod, TextSet
from embedlab.retrieval.fusion import rrf_fuse
from embedlab.retrieval.registry import create_method, register


@register
class HybridRRF(RetrievalMethod):
    name = "hybrid-rrf"
    description = "Reciprocal Rank Fusion (k=60) of the BM25 and dense top-`depth` lists"
    param_specs = (
        Param("rrf_k", int, 60, min=0, help="k in 1 / (k + rank)"),
        Param("depth", int, 100, min=1, step=10, help="how deep each run is read (at least k)"),
    )
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
        return top_k_of_scores(np.where(fused > 0, fused, -np.inf), min(k, self.n_docs))

    @property
    def index_bytes(self) -> int:
        return sum(part.index_bytes for part in self._parts)
