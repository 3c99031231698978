"""Instance routing between retrieval methods (after RouterRetriever, Lee et al., 2024).

RouterRetriever routes each query to one of several domain experts by the similarity of the query to training
queries. Adapted here with retrieval methods as the experts (one neural model is available offline): at build time
every expert answers the collection's training queries and is scored per query (nDCG@10 against the training
qrels); a test query goes to the expert with the best mean nDCG@10 over its `k` nearest training queries (dense
cosine), and gets that expert's ranking. Ties go to the expert that is best over all training queries.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from embedlab.errors import InputError
from embedlab.neighbours import l2_normalise, top_k
from embedlab.registry import Param
from embedlab.retrieval.base import RetrievalMethod, TextSet
from embedlab.retrieval.evaluate import evaluate_run, to_run
from embedlab.retrieval.registry import create_method, method_info, parse_method_list, register

DEPTH = 100   # how deep each expert answers (the benchmark evaluates the top 100)


@register
class Router(RetrievalMethod):
    name = "router"
    description = "Each query goes to the expert method that did best on its nearest training queries"
    param_specs = (
        Param("experts", str, "bm25,dense,maxsim", help="comma-separated expert methods"),
        Param("k", int, 10, min=1, max=200, help="nearest training queries that vote"),
    )
    needs = frozenset({"text", "embeddings", "tokens", "query_bank", "query_qrels"})

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.experts = parse_method_list(self.params["experts"])
        if self.name in self.experts:
            raise InputError("router: a router cannot be its own expert")
        self.needs = frozenset({"embeddings", "query_bank", "query_qrels"}).union(
            *(method_info(e).needs for e in self.experts))
        self.routed: dict[str, str] = {}            # query id -> chosen expert, for the searched queries
        self._answers: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}   # query id -> expert -> ranking

    def load_libraries(self) -> None:
        for expert in self.experts:
            create_method(expert).load_libraries()

    def build(self, corpus: TextSet) -> "Router":
        bank = corpus.reference_queries
        if bank is None or not bank.qrels:
            raise InputError("router needs training queries with judgements (a BEIR collection with a "
                             "qrels/train.tsv split besides the evaluated one)")
        self._parts = {e: create_method(e).build(corpus) for e in self.experts}
        self._doc_ids = list(corpus.ids)
        self._bank = l2_normalise(bank.embeddings())
        judged = {q: d for q, d in bank.qrels.items() if any(r > 0 for r in d.values())}
        gains = np.zeros((len(bank), len(self.experts)), np.float32)   # nDCG@10 of each expert per training query
        for j, (expert, part) in enumerate(self._parts.items()):
            ids, scores = part.search(bank, 10)
            per_query = evaluate_run(judged, to_run(ids, scores, bank.ids, self._doc_ids), ["ndcg@10"]).per_query
            gains[:, j] = [per_query["ndcg@10"].get(q, 0.0) for q in bank.ids]
        self._gains = gains
        self._overall = gains.mean(axis=0)
        self.n_docs = len(corpus)
        return self

    def route(self, query_vectors: np.ndarray) -> np.ndarray:
        """Index of the chosen expert for each query vector."""
        k = min(self.params["k"], len(self._bank))
        rows, _ = top_k(self._bank, np.atleast_2d(query_vectors).astype(np.float32), k=k)
        votes = self._gains[rows].mean(axis=1)                        # (queries, experts)
        return np.argmax(votes + 1e-6 * self._overall, axis=1)       # ties: the expert best overall

    def search(self, queries: TextSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        depth = min(max(k, DEPTH), self.n_docs)
        answers = {e: part.search(queries, depth) for e, part in self._parts.items()}
        chosen = self.route(queries.embeddings())
        ids = np.full((len(queries), min(k, self.n_docs)), -1, np.int64)
        scores = np.zeros(ids.shape, np.float32)
        for i, qid in enumerate(queries.ids):
            expert = self.experts[int(chosen[i])]
            row_ids, row_scores = answers[expert][0][i][:ids.shape[1]], answers[expert][1][i][:ids.shape[1]]
            ids[i, :len(row_ids)], scores[i, :len(row_ids)] = row_ids, row_scores
            self.routed[qid] = expert
            self._answers[qid] = {e: (a[0][i], a[1][i]) for e, a in answers.items()}
        return ids, scores

    def extra_summary(self, queries: TextSet, qrels: dict[str, dict[str, int]]) -> dict[str, Any]:
        """`oracle_ndcg@10`: the mean of each query's best expert's nDCG@10; `routed`: how often each expert was
        chosen for these queries."""
        best: dict[str, float] = {}
        for expert in self.experts:
            run = {}
            for qid in queries.ids:
                row_ids, row_scores = self._answers[qid][expert]
                run[qid] = {self._doc_ids[int(d)]: float(s) - r * 1e-9
                            for r, (d, s) in enumerate(zip(row_ids, row_scores)) if d >= 0}
            for q, v in evaluate_run(qrels, run, ["ndcg@10"]).per_query["ndcg@10"].items():
                best[q] = max(best.get(q, 0.0), v)
        counts = Counter(self.routed[q] for q in queries.ids)
        return {"oracle_ndcg@10": float(np.mean(list(best.values()))) if best else 0.0,
                "routed": {e: int(counts.get(e, 0)) for e in self.experts}}

    @property
    def index_bytes(self) -> int:
        return sum(part.index_bytes for part in self._parts.values()) + int(self._bank.nbytes + self._gains.nbytes)
