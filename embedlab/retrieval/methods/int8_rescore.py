"""int8 scalar-quantised index: candidates by integer inner product, rescored with the float query
(see `embedlab.retrieval.quantized`)."""
from __future__ import annotations

import numpy as np

from embedlab.neighbours import top_k_of_scores
from embedlab.retrieval.base import RetrievalMethod, TextSet
from embedlab.retrieval.quantized import (RESCORE_MULTIPLIER, dequantize_int8, load_quantizer, quantize, rescore,
                                          stack_results)
from embedlab.retrieval.registry import register


@register
class Int8Rescore(RetrievalMethod):
    name = "int8-rescore"
    description = "int8 scalar-quantised index (4x smaller), candidates by int8 dot product, float rescoring"
    param_specs = (RESCORE_MULTIPLIER,)
    needs = frozenset({"embeddings"})

    def load_libraries(self) -> None:
        load_quantizer()

    def build(self, corpus: TextSet) -> "Int8Rescore":
        docs = corpus.embeddings()
        self.dim = docs.shape[1]
        self._ranges = np.vstack([docs.min(axis=0), docs.max(axis=0)]).astype(np.float32)
        self._codes = quantize(docs, "int8", ranges=self._ranges)
        self.n_docs = len(docs)
        return self

    def search(self, queries: TextSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(queries.embeddings(), dtype=np.float32)
        k = min(k, self.n_docs)
        n_cand = min(self.n_docs, k * self.params["rescore_multiplier"])
        q_codes = quantize(q, "int8", ranges=self._ranges).astype(np.float32)
        ids_out, scores_out = [], []
        for s in range(0, len(q), 256):
            # Integer inner products computed exactly in float32 (|sum| < 2**24 for dim <= 1024).
            int_scores = q_codes[s:s + 256] @ self._codes.T.astype(np.float32)
            cand, _ = top_k_of_scores(int_scores, n_cand)
            ids, sc = rescore(q[s:s + 256], cand, lambda c: dequantize_int8(self._codes[c], self._ranges), k)
            ids_out.append(ids)
            scores_out.append(sc)
        return stack_results(ids_out, scores_out, len(q), k)

    @property
    def index_bytes(self) -> int:
        return int(self._codes.nbytes + self._ranges.nbytes)
