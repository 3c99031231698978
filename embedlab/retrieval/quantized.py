"""Quantised indexes with rescoring (sentence-transformers' embedding quantisation recipe).

The index keeps only the quantised documents; a search retrieves `rescore_multiplier * k` candidates with the
quantised representation, then rescores them with the float query:
- int8: query and documents quantised with the corpus's per-dimension ranges, integer inner product;
  rescoring by float query . dequantised document.
- binary: sign bits packed 8 per byte, Hamming distance (popcount of XOR) for candidates; rescoring by the float
  query against a rescoring store read only for the candidates: int8 documents (default, as in
  sentence-transformers' binary + int8 recipe, where that store stays on disk), float32 documents ("float"), or the
  unpacked +-1 bits of the index itself ("sign": no store, but about 0.02 nDCG@10 lower on SciFact).
  `index_bytes` is the binary index; `rescore_bytes` the store.
"""
from __future__ import annotations

import numpy as np

from embedlab.retrieval.base import RetrievalMethod, TextSet, top_k
from embedlab.retrieval.registry import register


def _quantize_embeddings():
    """sentence-transformers' `quantize_embeddings` (imported lazily: it pulls in torch)."""
    try:
        from sentence_transformers.util.quantization import quantize_embeddings
    except ImportError:  # older layout
        from sentence_transformers.quantization import quantize_embeddings
    return quantize_embeddings


def quantize(embeddings: np.ndarray, precision: str, ranges: np.ndarray | None = None) -> np.ndarray:
    """Quantise float rows with sentence-transformers ("int8" with the given ranges, or "ubinary")."""
    return _quantize_embeddings()(np.asarray(embeddings, dtype=np.float32), precision=precision, ranges=ranges)


def dequantize_int8(codes: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Bucket starts of int8 codes in the float space (the inverse sentence-transformers uses for rescoring)."""
    starts = ranges[0].astype(np.float32)
    steps = (ranges[1] - ranges[0]).astype(np.float32) / 255
    steps = np.where(steps == 0, 1, steps)
    return (codes.astype(np.float32) + 128.0) * steps + starts


def smallest_k_int(values: np.ndarray, k: int) -> np.ndarray:
    """Columns of the k smallest non-negative integers per row, ties by lower column (exact, via unique keys)."""
    n = values.shape[1]
    k = min(k, n)
    keys = values.astype(np.int64) * n + np.arange(n, dtype=np.int64)
    if k < n:
        part = np.argpartition(keys, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n), keys.shape).copy()
    order = np.argsort(np.take_along_axis(keys, part, axis=1), axis=1)
    return np.take_along_axis(part, order, axis=1)


def hamming_distances(query_bits: np.ndarray, doc_bits: np.ndarray, *, block: int = 64) -> np.ndarray:
    """[n_q, n_d] Hamming distances between packed bit rows (uint8), by popcount of XOR on 64-bit words."""
    q, d = _as_words(query_bits), _as_words(doc_bits)
    out = np.empty((len(q), len(d)), dtype=np.int32)
    for s in range(0, len(q), block):
        out[s:s + block] = np.bitwise_count(q[s:s + block, None, :] ^ d[None, :, :]).sum(axis=2, dtype=np.int32)
    return out


def _as_words(bits: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(bits, dtype=np.uint8)
    pad = (-bits.shape[1]) % 8
    if pad:
        bits = np.concatenate([bits, np.zeros((len(bits), pad), np.uint8)], axis=1)
    return bits.view(np.uint64)


def unpack_signs(bits: np.ndarray, dim: int) -> np.ndarray:
    """Packed sign bits -> +-1 float32 vectors of length dim."""
    return np.unpackbits(bits, axis=-1)[..., :dim].astype(np.float32) * 2 - 1


def _rescore(queries: np.ndarray, cand: np.ndarray, vectors_of, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rescore candidate rows by float query . candidate vector; keep the k best."""
    scores = np.einsum("qd,qcd->qc", queries, vectors_of(cand))
    sel, best = top_k(scores, k)
    return np.take_along_axis(cand, sel, axis=1), best


@register
class Int8Rescore(RetrievalMethod):
    name = "int8-rescore"
    description = "int8 scalar-quantised index (4x smaller), candidates by int8 dot product, float rescoring"
    params = {"rescore_multiplier": 4}
    needs = frozenset({"embeddings"})

    def load_libraries(self) -> None:
        _quantize_embeddings()

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
        n_cand = min(self.n_docs, k * max(1, self.params["rescore_multiplier"]))
        q_codes = quantize(q, "int8", ranges=self._ranges).astype(np.float32)
        ids_out, scores_out = [], []
        for s in range(0, len(q), 256):
            # Integer inner products computed exactly in float32 (|sum| < 2**24 for dim <= 1024).
            int_scores = q_codes[s:s + 256] @ self._codes.T.astype(np.float32)
            cand, _ = top_k(int_scores, n_cand)
            ids, sc = _rescore(q[s:s + 256], cand, lambda c: dequantize_int8(self._codes[c], self._ranges), k)
            ids_out.append(ids)
            scores_out.append(sc)
        return _stack(ids_out, scores_out, len(q), k)

    @property
    def index_bytes(self) -> int:
        return int(self._codes.nbytes + self._ranges.nbytes)


@register
class BinaryRescore(RetrievalMethod):
    name = "binary-rescore"
    description = "Binary index (1 bit a dimension, 32x smaller), Hamming candidates, rescored with the float query"
    params = {"rescore_multiplier": 4, "rescore": "int8"}
    needs = frozenset({"embeddings"})
    RESCORE = ("int8", "sign", "float")

    def load_libraries(self) -> None:
        _quantize_embeddings()

    def build(self, corpus: TextSet) -> "BinaryRescore":
        if self.params["rescore"] not in self.RESCORE:
            raise ValueError(f"rescore must be one of {', '.join(self.RESCORE)}")
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
        n_cand = min(self.n_docs, k * max(1, self.params["rescore_multiplier"]))
        ids_out, scores_out = [], []
        for s in range(0, len(q), 64):
            ids, sc = _rescore(q[s:s + 64], self.candidates(q[s:s + 64], n_cand), self._vectors, k)
            ids_out.append(ids)
            scores_out.append(sc)
        return _stack(ids_out, scores_out, len(q), k)

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


def _stack(ids: list[np.ndarray], scores: list[np.ndarray], n_q: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    if not ids:
        return np.zeros((n_q, k), np.int64), np.zeros((n_q, k), np.float32)
    return np.concatenate(ids).astype(np.int64), np.concatenate(scores).astype(np.float32)
