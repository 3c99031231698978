"""Dense retrieval by exact cosine similarity (blockwise matrix products), and its Matryoshka truncation."""
from __future__ import annotations

import re

import numpy as np

from embedlab.retrieval.base import RetrievalMethod, TextSet, exact_inner_product_top_k, l2_normalise
from embedlab.retrieval.registry import register


@register
class Dense(RetrievalMethod):
    name = "dense"
    description = "Exact cosine similarity over all documents (blockwise matrix products)"
    params = {"block": 65536}
    needs = frozenset({"embeddings"})

    def build(self, corpus: TextSet) -> "Dense":
        self._docs = self.transform(corpus.embeddings())
        self.n_docs = len(self._docs)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """How document and query vectors are prepared (subclasses truncate or adjust)."""
        return np.ascontiguousarray(x, dtype=np.float32)

    def search(self, queries: TextSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        return exact_inner_product_top_k(self.transform(queries.embeddings()), self._docs, k,
                                         doc_block=self.params["block"])

    @property
    def index_bytes(self) -> int:
        return int(self._docs.nbytes)


def _parse_matryoshka(m: re.Match) -> dict:
    return {"dims": int(m.group(1))}


@register(pattern=r"matryoshka-(\d+)", parse=_parse_matryoshka)
class Matryoshka(Dense):
    name = "matryoshka-N"
    description = "Dense on the first N dimensions, renormalised (Matryoshka truncation; N from the name)"
    params = {"dims": 128, "block": 65536}

    def build(self, corpus: TextSet) -> "Matryoshka":
        dim = corpus.embeddings().shape[1]
        if not 1 <= self.params["dims"] <= dim:
            raise ValueError(f"{self.name}: N must be between 1 and the embedding dimension {dim}")
        return super().build(corpus)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(l2_normalise(np.asarray(x)[:, :self.params["dims"]]))
