"""Approximate nearest neighbours: an HNSW graph (hnswlib) over the normalised embeddings, inner-product space."""
from __future__ import annotations

import numpy as np

from embedlab.registry import Param
from embedlab.retrieval.base import RetrievalMethod, TextSet
from embedlab.retrieval.registry import register


@register
class HNSW(RetrievalMethod):
    name = "hnsw"
    description = "HNSW graph (hnswlib), cosine via inner product on normalised vectors; ef raised to k if lower"
    param_specs = (
        Param("M", int, 16, min=2, max=256, help="links per node"),
        Param("ef_construction", int, 200, min=1, step=10, help="candidate list size while building"),
        Param("ef", int, 128, min=1, step=8, help="candidate list size while searching (at least k)"),
        Param("seed", int, 100, min=0, help="random seed of the graph"),
        Param("threads", int, 0, min=0, help="build threads; 0 = all cores (1 makes the graph reproducible)"),
    )
    needs = frozenset({"embeddings"})

    def load_libraries(self) -> None:
        import hnswlib  # noqa: F401

    def build(self, corpus: TextSet) -> "HNSW":
        import hnswlib

        docs = np.ascontiguousarray(corpus.embeddings(), dtype=np.float32)
        p = self.params
        self.n_docs = len(docs)
        self._index = hnswlib.Index(space="ip", dim=docs.shape[1])
        self._index.init_index(max_elements=max(1, self.n_docs), M=p["M"], ef_construction=p["ef_construction"],
                               random_seed=p["seed"])
        # threads=0: all cores. The graph depends on insertion order; one thread makes it reproducible.
        self._index.add_items(docs, np.arange(self.n_docs), num_threads=p["threads"] or -1)
        return self

    def search(self, queries: TextSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.n_docs)
        q = np.ascontiguousarray(queries.embeddings(), dtype=np.float32)
        if k == 0 or len(q) == 0:
            return np.zeros((len(q), 0), np.int64), np.zeros((len(q), 0), np.float32)
        self._index.set_ef(max(self.params["ef"], k))
        labels, dist = self._index.knn_query(q, k=k, num_threads=1)
        return labels.astype(np.int64), (1.0 - dist).astype(np.float32)

    @property
    def index_bytes(self) -> int:
        return int(self._index.index_file_size())
