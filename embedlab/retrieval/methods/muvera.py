"""MUVERA (Dhulipala et al., 2024): Fixed Dimensional Encodings for candidates, re-ranked by exact MaxSim.

The encoding is `embedlab.retrieval.multivector.fde_encode` (DESIGN §5; defaults as in fastembed).
"""
from __future__ import annotations

import numpy as np

from embedlab.neighbours import top_k_of_scores
from embedlab.registry import Param
from embedlab.retrieval.base import RetrievalMethod, TextSet, TokenMatrix, exact_top_k
from embedlab.retrieval.multivector import fde_encode, fde_projections, maxsim_subset, unit_query_tokens, unit_rows
from embedlab.retrieval.registry import register


@register
class Muvera(RetrievalMethod):
    name = "muvera"
    description = "MUVERA: Fixed Dimensional Encodings (10,240 dims) for candidates, top ones re-ranked by MaxSim"
    param_specs = (
        Param("k_sim", int, 5, min=1, max=12, help="SimHash bits: 2^k_sim partitions a repetition"),
        Param("d_proj", int, 16, min=1, help="dimensions each partition's block is projected to"),
        Param("reps", int, 20, min=1, help="repetitions concatenated"),
        Param("seed", int, 42, min=0, help="seed of the hyperplanes and projections (queries and documents)"),
        Param("candidates", int, 100, min=1, step=10, help="FDE candidates re-ranked by exact MaxSim"),
    )
    needs = frozenset({"tokens"})

    def _encode(self, tokens: TokenMatrix, is_query: bool) -> np.ndarray:
        p = self.params
        return fde_encode(tokens, is_query=is_query, projections=self._projections, k_sim=p["k_sim"],
                          d_proj=p["d_proj"], reps=p["reps"], seed=p["seed"])

    def build(self, corpus: TextSet) -> "Muvera":
        toks = corpus.tokens()
        p = self.params
        self._projections = fde_projections(toks.data.shape[1], k_sim=p["k_sim"], d_proj=p["d_proj"], reps=p["reps"],
                                            seed=p["seed"])
        self._docs = TokenMatrix(np.ascontiguousarray(unit_rows(toks.data)), toks.offsets)
        self._fde = self._encode(self._docs, is_query=False)
        self.n_docs = len(self._docs)
        return self

    def candidates(self, queries: TextSet, n_cand: int) -> tuple[np.ndarray, np.ndarray]:
        """Top documents by FDE inner product."""
        toks = queries.tokens()
        return exact_top_k(self._encode(TokenMatrix(unit_rows(toks.data), toks.offsets), is_query=True), self._fde,
                           n_cand)

    def search(self, queries: TextSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.n_docs)
        cand, _ = self.candidates(queries, min(self.n_docs, max(k, self.params["candidates"])))
        ids = np.zeros((len(queries), k), np.int64)
        scores = np.zeros((len(queries), k), np.float32)
        for i in range(len(queries)):
            exact = maxsim_subset(unit_query_tokens(queries, i), self._docs, cand[i])
            sel, best = top_k_of_scores(exact[None, :], k)
            ids[i], scores[i] = cand[i][sel[0]], best[0]
        return ids, scores

    @property
    def index_bytes(self) -> int:
        """The FDE matrix plus the token matrix that re-ranking reads."""
        return int(self._fde.nbytes + self._docs.data.nbytes + self._docs.offsets.nbytes)
