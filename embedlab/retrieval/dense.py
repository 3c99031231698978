"""Exact cosine search over a float32 matrix: the index that dense, Matryoshka and InvGC share (none registered
here; the methods live in `embedlab.retrieval.methods`)."""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from embedlab.registry import Param
from embedlab.retrieval.base import RetrievalMethod, TextSet, exact_top_k

BLOCK = Param("block", int, 65536, min=1, step=4096, help="documents per matrix product (bounds the memory)")


class ExactIndex(RetrievalMethod):
    """Documents prepared by `transform` and kept as float32; a search is exact inner product (blockwise)."""
    param_specs: ClassVar[tuple[Param, ...]] = (BLOCK,)
    needs = frozenset({"embeddings"})

    def build(self, corpus: TextSet) -> "ExactIndex":
        self._docs = self.transform(corpus.embeddings())
        self.n_docs = len(self._docs)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """How document and query vectors are prepared (subclasses truncate or adjust)."""
        return np.ascontiguousarray(x, dtype=np.float32)

    def search(self, queries: TextSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        return exact_top_k(self.transform(queries.embeddings()), self._docs, k, block=self.params["block"])

    @property
    def index_bytes(self) -> int:
        return int(self._docs.nbytes)
