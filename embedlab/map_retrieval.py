"""Retrieval runs on a corpus's map: which stored runs fit a corpus (and the corpus row of each of their document
ids), where a query goes on the map, each method's top 10 as hits and misses, the orders in which to step through
the queries, and per-query nDCG@10 aggregated by the cluster of each query's relevant documents (failure regions).

A run's details are those of `embedlab.retrieval.run_details.run_details`. Runs with queries from labels name
documents by the corpus's doc ids (by str(row) when those are not unique) and their query ids are documents of the
corpus; BEIR runs name documents by the collection's ids, which a corpus holds when it was ingested with them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from embedlab.neighbours import l2_normalise, top_k
from embedlab.retrieval.run_details import disagreements
from embedlab.runs import RetrievalRun, RunHeader

MIN_FOUND = 0.9               # share of a run's document ids a corpus must hold for the run to fit it
PLACEMENT_K = 10              # a BEIR query sits at the mean map position of its this many nearest documents
ORDERS = ("methods disagree most", "worst first", "run order")
CORPUS_SOURCES = ("labels", "judgments")   # runs whose queries come from a stored corpus (documents named alike)


# --- which runs fit a corpus ------------------------------------------------------------------------------------


def has_details(details: Mapping[str, Any] | None) -> bool:
    """Whether a run kept the per-query details the map views need (CLI runs of older versions did not)."""
    return bool(details) and all(isinstance(details.get(k), dict) and details.get(k)
                                 for k in ("per_query", "rankings", "queries"))


def run_title(run: RunHeader) -> str:
    """"#id · dataset · methods" for a run picker."""
    methods = run.params.get("methods") or run.methods
    return f"#{run.id} · {run.dataset or run.source or '?'} · {', '.join(map(str, methods))}"


def corpus_keys(doc_ids: Sequence[str], *, source: str) -> dict[str, int]:
    """The row of each document id as a run of `source` names the corpus's documents: labels runs use the doc ids
    when they are unique, else str(row) (as `comparison._labels_comparison` does); BEIR runs use the doc ids (the
    first row of a repeated id)."""
    ids = [str(d) for d in doc_ids]
    if source in CORPUS_SOURCES and len(set(ids)) != len(ids):
        return {str(i): i for i in range(len(ids))}
    rows: dict[str, int] = {}
    for i, d in enumerate(ids):
        rows.setdefault(d, i)
    return rows


def run_doc_ids(details: Mapping[str, Any], *, with_queries: bool = False) -> list[str]:
    """Every document id a run names (ranked or judged; with `with_queries`, its query ids too), first seen first."""
    seen: dict[str, None] = {}
    if with_queries:
        seen.update(dict.fromkeys(map(str, details.get("queries", {}))))
    for ranking in details.get("rankings", {}).values():
        for ranked in ranking.values():
            seen.update(dict.fromkeys(str(d) for d, _ in ranked))
    for judged in details.get("qrels", {}).values():
        seen.update(dict.fromkeys(map(str, judged)))
    return list(seen)


@dataclass(frozen=True)
class RunFit:
    """How a stored retrieval run fits a corpus: `rows` maps the run's ids (documents, and for labels runs the
    queries) that the corpus holds to their rows."""
    run_id: int
    title: str
    source: str
    fits: bool
    found: int
    total: int
    reason: str = ""
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def share(self) -> float:
        return self.found / self.total if self.total else 0.0


def fit_run(run: RetrievalRun, *, corpus_id: int, corpus_name: str, doc_ids: Sequence[str],
            min_found: float = MIN_FOUND) -> RunFit:
    """Whether `run` (a stored run with its details) can be drawn on this corpus's map.

    A labels run fits the corpus it was made on (its corpus id, or its name in a copied or imported session) when
    the corpus holds at least `min_found` of its document and query ids; a BEIR run fits when the corpus holds at
    least `min_found` of its ranked and judged document ids."""
    params, details, source = run.params, run.details, run.source
    title = run_title(run)
    if not has_details(details):
        return RunFit(int(run.id), title, source, False, 0, 0, "no per-query details")
    labels = source == "labels"
    if source in CORPUS_SOURCES and params.get("corpus_id") != corpus_id and run.dataset != corpus_name:
        return RunFit(int(run.id), title, source, False, 0, 0, f"queries from the {source} of another corpus")
    keys = corpus_keys(doc_ids, source=source)
    wanted = run_doc_ids(details, with_queries=labels)
    if source == "judgments":     # its queries that are documents (typed ones are placed like BEIR queries)
        wanted = list(dict.fromkeys([*wanted, *map(str, details.get("document_queries") or {})]))
    rows = {d: keys[d] for d in wanted if d in keys}
    fits = bool(wanted) and len(rows) >= min_found * len(wanted)
    reason = "" if fits else f"the corpus holds {len(rows):,} of its {len(wanted):,} document ids"
    return RunFit(int(run.id), title, source, fits, len(rows), len(wanted), reason, rows)


# --- one query on the map ---------------------------------------------------------------------------------------


def query_row(run: RetrievalRun, qid: str, rows: Mapping[str, int]) -> int | None:
    """The corpus row of a query that is a document of the corpus (its own place on the map): every query of a
    labels run, a judgments run's document queries; None for a typed or BEIR query (placed by `place_query`) or a
    document the corpus does not hold."""
    if run.source == "labels" or (run.source == "judgments" and str(qid) in run.document_queries):
        return rows.get(str(qid))
    return None


def query_is_document(run: RetrievalRun, qid: str) -> bool:
    """Whether a run's query is a document of its corpus (drawn at its own place, or not at all when absent)."""
    return run.source == "labels" or (run.source == "judgments" and str(qid) in run.document_queries)


def best_methods(metrics: Mapping[str, Mapping[str, Any]], baseline: str | None, methods: Sequence[str]) -> list[str]:
    """The default pair to draw: the baseline and the best other method by nDCG@10 (one method alone if only one)."""
    methods = list(methods)
    if not methods:
        return []
    base = baseline if baseline in methods else methods[0]
    others = [m for m in methods if m != base]
    if not others:
        return [base]
    best = max(others, key=lambda m: _number((metrics.get(m) or {}).get("ndcg@10")))
    return [base, best]


def ndcg_of(details: Mapping[str, Any], method: str, qid: str) -> float:
    """A query's stored nDCG@10 under a method (0 when missing)."""
    return _number(details.get("per_query", {}).get(method, {}).get(qid))


def query_order(details: Mapping[str, Any], methods: Sequence[str], order: str) -> list[tuple[str, float]]:
    """The stored queries as (query id, the value they are ordered by):
    "methods disagree most": nDCG@10 of the second method minus the first, largest |difference| first;
    "worst first": mean nDCG@10 over `methods`, lowest first; "run order": the run's order, with that mean.
    Ties keep the run's order."""
    qids = [str(q) for q in details.get("queries", {})]
    if order == "methods disagree most":
        if len(methods) < 2:
            raise ValueError("the disagreement order needs two methods")
        return disagreements(details, methods[0], methods[1])
    means = [(q, float(np.mean([ndcg_of(details, m, q) for m in methods])) if methods else 0.0) for q in qids]
    if order == "worst first":
        return sorted(means, key=lambda qd: qd[1])
    if order == "run order":
        return means
    raise ValueError(f"unknown order {order!r}; expected one of {', '.join(ORDERS)}")


def relevant_rows(details: Mapping[str, Any], qid: str, rows: Mapping[str, int]) -> list[int]:
    """Corpus rows of the query's relevant (judged > 0) documents that the corpus holds, in the run's order."""
    return [rows[d] for d, rel in details.get("qrels", {}).get(qid, {}).items() if rel > 0 and d in rows]


@dataclass(frozen=True)
class MethodMarks:
    """One method's stored top 10 for a query on the map: rows of the relevant ones (hits) and of the others
    (misses), each in rank order; `absent` ranked ids the corpus does not hold."""
    method: str
    ndcg: float
    hits: list[int]
    misses: list[int]
    absent: int


def method_marks(details: Mapping[str, Any], method: str, qid: str, rows: Mapping[str, int]) -> MethodMarks:
    judged = details.get("qrels", {}).get(qid, {})
    hits, misses, absent = [], [], 0
    for doc_id, _score in details.get("rankings", {}).get(method, {}).get(qid, []):
        if doc_id not in rows:
            absent += 1
        elif judged.get(doc_id, 0) > 0:
            hits.append(rows[doc_id])
        else:
            misses.append(rows[doc_id])
    return MethodMarks(method, ndcg_of(details, method, qid), hits, misses, absent)


def ranked_rows(details: Mapping[str, Any], method: str, qid: str, rows: Mapping[str, int]) -> list[dict]:
    """One method's stored top 10 for a query: rank, ✓ for a relevant one, doc id, corpus row (None when the
    corpus lacks it) and score."""
    judged = details.get("qrels", {}).get(qid, {})
    return [{"rank": rank, "relevant": "✓" if judged.get(doc_id, 0) > 0 else "", "doc_id": doc_id,
             "row": rows.get(doc_id), "score": float(score)}
            for rank, (doc_id, score) in enumerate(details.get("rankings", {}).get(method, {}).get(qid, []), 1)]


def nearest_rows(query: np.ndarray, X: np.ndarray, k: int = PLACEMENT_K) -> np.ndarray:
    """Rows of the `k` documents most cosine-similar to `query` (rows of X L2-normalised), best first."""
    rows, _ = top_k(np.asarray(X, dtype=np.float32), l2_normalise(np.ravel(query)), k=k, exclude_self=False)
    return rows


def place_query(query: np.ndarray, X: np.ndarray, coords: np.ndarray,
                k: int = PLACEMENT_K) -> tuple[np.ndarray, np.ndarray]:
    """(map position, rows used): the mean map position of the `k` documents nearest to the query vector."""
    near = nearest_rows(query, X, k)
    return np.asarray(coords, dtype=np.float64)[near].mean(axis=0), near


# --- failure regions --------------------------------------------------------------------------------------------


def query_clusters(details: Mapping[str, Any], rows: Mapping[str, int], cluster_ids: np.ndarray) -> dict[str, int]:
    """The cluster of each stored query: the cluster holding most of its relevant documents found in the corpus
    (noise left out; a tie goes to the lowest cluster id). Queries whose relevant documents are all noise or
    absent are left out."""
    cluster_ids = np.asarray(cluster_ids)
    out: dict[str, int] = {}
    for qid in details.get("queries", {}):
        found = [int(cluster_ids[r]) for r in relevant_rows(details, str(qid), rows)]
        found = [c for c in found if c >= 0]
        if found:
            ids, counts = np.unique(found, return_counts=True)
            out[str(qid)] = int(ids[np.argmax(counts)])   # np.unique sorts: argmax takes the lowest id of a tie
    return out


def cluster_scores(details: Mapping[str, Any], assignment: Mapping[str, int], cluster_ids: np.ndarray,
                   keywords: Mapping[int, str], method: str, method_b: str | None = None) -> list[dict]:
    """One row per cluster (noise left out), by cluster id: "cluster", "keywords", "size" (documents), "queries"
    (queries counted in it), "mean_ndcg" (mean nDCG@10 of `method` over them, None without queries) and, with
    `method_b`, "mean_ndcg_b" and "difference" (B − A)."""
    ids, sizes = np.unique(np.asarray(cluster_ids, dtype=np.int64), return_counts=True)
    by_cluster: dict[int, list[str]] = {}
    for qid, c in assignment.items():
        by_cluster.setdefault(int(c), []).append(qid)
    table = []
    for c, size in zip(ids.tolist(), sizes.tolist()):
        if c < 0:
            continue
        qids = by_cluster.get(c, [])
        row: dict[str, Any] = {"cluster": c, "keywords": keywords.get(c, ""), "size": size, "queries": len(qids),
                               "mean_ndcg": _mean([ndcg_of(details, method, q) for q in qids])}
        if method_b is not None:
            row["mean_ndcg_b"] = _mean([ndcg_of(details, method_b, q) for q in qids])
            row["difference"] = None if not qids else row["mean_ndcg_b"] - row["mean_ndcg"]
        table.append(row)
    return table


def worst_clusters(scores: Sequence[Mapping[str, Any]], *, difference: bool = False,
                   min_queries: int = 1) -> list[dict]:
    """Clusters with at least `min_queries` queries, worst first: lowest mean nDCG@10, or (`difference`) where
    method B falls furthest below A; ties by more queries, then cluster id."""
    key = "difference" if difference else "mean_ndcg"
    kept = [dict(r) for r in scores if r["queries"] >= max(1, min_queries) and r.get(key) is not None]
    return sorted(kept, key=lambda r: (r[key], -r["queries"], r["cluster"]))


def cluster_values(cluster_ids: np.ndarray, scores: Sequence[Mapping[str, Any]], *,
                   difference: bool = False) -> np.ndarray:
    """Each document's colour value: its cluster's mean nDCG@10 (or difference B − A); NaN for noise and for
    clusters without a query."""
    key = "difference" if difference else "mean_ndcg"
    value = {int(r["cluster"]): r[key] for r in scores if r.get(key) is not None}
    cluster_ids = np.asarray(cluster_ids, dtype=np.int64)
    lookup = np.full(int(cluster_ids.max(initial=-1)) + 2, np.nan)   # the last slot stands for noise (-1)
    for c, v in value.items():
        if 0 <= c < lookup.size - 1:
            lookup[c] = v
    return lookup[cluster_ids]


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _number(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return 0.0
    return v if math.isfinite(v) else 0.0
