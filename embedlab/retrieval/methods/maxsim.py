"""Exact late interaction (ColBERT's MaxSim, Chamfer similarity) over token embeddings, every document scored.

The scoring kernel is `embedlab.retrieval.multivector.maxsim_scores`.
"""
from __future__ import annotations

import numpy as np

from embedlab.neighbours import top_k_of_scores
from embedlab.registry import Param
from embedlab.retrieval.base import RetrievalMethod, TextSet
from embedlab.retrieval.multivector import TokenOffsets, maxsim_scores, unit_query_tokens, unit_rows
from embedlab.retrieval.registry import register


@register
class MaxSim(RetrievalMethod):
    name = "maxsim"
    description = "Exact late interaction: sum over query tokens of the best document-token cosine (all documents)"
    param_specs = (Param("token_block", int, 1 << 20, min=1, step=65536,
                         help="document tokens per matrix product (bounds the memory)"),)
    needs = frozenset({"tokens"})

    def build(self, corpus: TextSet) -> "MaxSim":
        toks = corpus.tokens()
        # Stored transposed ([dim, total_tokens]): one query's tokens times all document tokens is then a
        # plain matrix product over the whole collection in a few large blocks.
        self._columns = np.ascontiguousarray(unit_rows(toks.data).T)
        self._offsets = toks.offsets
        self.n_docs = len(toks)
        return self

    def scores(self, query_tokens: np.ndarray) -> np.ndarray:
        """Exact MaxSim of one query's tokens against every document."""
        return maxsim_scores(query_tokens, TokenOffsets(self._offsets), token_block=self.params["token_block"],
                             columns=self._columns)

    def search(self, queries: TextSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.n_docs)
        if not len(queries):
            return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
        return top_k_of_scores(np.stack([self.scores(unit_query_tokens(queries, i)) for i in range(len(queries))]),
                               k)

    @property
    def index_bytes(self) -> int:
        return int(self._columns.nbytes + self._offsets.nbytes)
