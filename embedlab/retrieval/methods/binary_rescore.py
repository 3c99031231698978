"""Binary index (1 bit a dimension): Hamming candidates, rescored with the float query against a rescoring store
(see `embedlab.retrieval.quantized`)."""
from __future__ import annotations

import numpy as np

from embedlab.registry import Param
from embedlab.retrieval.base import RetrievalMethod, TextSet
from embedlab.retrieval.quantized import (RESCORE_MULTIPLIER, dequantize_int8, hamming_distances, load_quantizer,
                                          quantize, rescore, smallest_k_int, stack_results, unpack_signs)
from embedlab.retrieval.registry import register


@register
class BinaryRescore(RetrievalMethod):
    name = "binary-rescore"
    description = "Binary index (1 bit a dimension, 32x smaller), Hamming candidates, rescored with the float query"
    param_specs = (
        RESCORE_MULTIPLIER,
        Param("rescore", str, "int8", choices=("int8", "sign", "float"),
              help="rescoring store: int8 documents, the index's own sign bits, or float32 documents"),
    )
    needs = frozenset({"embeddings"})

    def load_libraries(self) -> None:
        load_quantizer()

    def build(self, corpus: TextSet) -> "BinaryRescore":
        docs = np.asarray(corpus.embeddings(), dtype=np.float32)
        self.dim = docs.shape[1]
        self._bits = quantize(docs, "ubinary")
        self._store = None
        if self.params["rescore"] == "int8":
            self._ranges = np.vstack([docs.min(axis=0), docs.max(axis=0)]).astype(np.float32)
            self._store = quantize(docs, "int8", ranges=self._ranges)
        elif self.params["rescore"] == "float":
            self._store = np.ascontiguousarray(docs)
        self.n_docs = len(docs)
        return self

    def candidates(self, q: np.ndarray, n_cand: int) -> np.ndarray:
        """Rows of the n_cand documents nearest in Hamming distance (ties by lower row)."""
        return smallest_k_int(hamming_distances(quantize(q, "ubinary"), self._bits), n_cand)

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        kind = self.params["rescore"]
        if kind == "sign":
            return unpack_signs(self._bits[rows], self.dim)
        if kind == "int8":
            return dequantize_int8(self._store[rows], self._ranges)
        return self._store[rows]

    def search(self, queries: TextSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(queries.embeddings(), dtype=np.float32)
        k = min(k, self.n_docs)
        n_cand = min(self.n_docs, k * self.params["rescore_multiplier"])
        ids_out, scores_out = [], []
        for s in range(0, len(q), 64):
            ids, sc = rescore(q[s:s + 64], self.candidates(q[s:s + 64], n_cand), self._vectors, k)
            ids_out.append(ids)
            scores_out.append(sc)
        return stack_results(ids_out, scores_out, len(q), k)

    @property
    def index_bytes(self) -> int:
        """The binary index that candidate search scans (the rescoring store is read only for candidates)."""
        return int(self._bits.nbytes)

    @property
    def rescore_bytes(self) -> int:
        """The rescoring store: int8 or float32 documents (kept on disk in sentence-transformers' recipe)."""
        if self._store is None:
            return 0
        return int(self._store.nbytes + (self._ranges.nbytes if self.params["rescore"] == "int8" else 0))
