"""Evaluation of retrieval methods with ranx (trec_eval definitions, as BEIR reports them).

Metrics: nDCG@10 (trec_eval: gain = graded relevance, discount log2(rank + 1)), Recall@10, Recall@100, MRR@10,
MAP@100 (average precision over the top 100, divided by the number of relevant documents). Judgements with
relevance <= 0 count as not relevant; queries without any relevant document score 0 (as in trec_eval).

Latency: every query is searched on its own (a batch of one), timed with perf_counter around `search`, after a
warm-up of a few untimed queries; `ms_per_query` is the median over queries. Searches run with the BLAS thread
pool limited to one thread (one query per core, as a server answering concurrent queries would): on a small shared
machine, multi-threaded BLAS makes tiny products (one query against a few thousand vectors) erratically slower.
Query texts are embedded (and their token embeddings computed) before timing, so the time is the method's, not
the model's; BM25 times include query tokenisation. The ranked lists evaluated are the ones produced by these
timed single-query searches.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from embedlab.errors import InputError
from embedlab.retrieval.base import RetrievalMethod, TextSet

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100")
SIGNIFICANCE_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100")
Qrels = Mapping[str, Mapping[str, int]]
Run = dict[str, dict[str, float]]
Progress = Callable[[float, str], None]


def to_run(ids: np.ndarray, scores: np.ndarray, query_ids: Sequence[str], doc_ids: Sequence[str]) -> Run:
    """Ranked rows -> {query id: {doc id: score}} (negative rows, i.e. padding, left out)."""
    run: Run = {}
    for qi, qid in enumerate(query_ids):
        row = {}
        for rank, (d, s) in enumerate(zip(ids[qi], scores[qi])):
            if d < 0:
                continue
            # trec_eval orders by score; a strictly decreasing nudge keeps our order for exact ties.
            row[doc_ids[d]] = float(s) - rank * 1e-9
        run[qid] = row
    return run


def _ranx_qrels(qrels: Qrels):
    from ranx import Qrels as RanxQrels

    # ranx wants every query to have a judgement; rel <= 0 are kept (they count as non-relevant).
    return RanxQrels({str(q): {str(d): int(r) for d, r in docs.items()} for q, docs in qrels.items() if docs})


def _ranx_run(run: Run, name: str | None = None):
    from ranx import Run as RanxRun

    return RanxRun({q: dict(docs) for q, docs in run.items()}, name=name)


@dataclass
class RunScores:
    """Mean metric values and each query's value (for the drill-down)."""
    mean: dict[str, float]
    per_query: dict[str, dict[str, float]]  # metric -> query id -> value


def evaluate_run(qrels: Qrels, run: Run, metrics: Sequence[str] = METRICS) -> RunScores:
    """Metric means over the queries of `qrels`, and per-query values; queries missing from the run score 0."""
    from ranx import evaluate

    metrics = list(metrics)
    judged = {q: d for q, d in qrels.items() if d}
    if not judged:
        return RunScores({m: 0.0 for m in metrics}, {m: {} for m in metrics})
    full_run = {q: dict(run.get(q, {})) for q in judged}
    q_no_results = [q for q, docs in full_run.items() if not docs]
    ranx_run = _ranx_run({q: d for q, d in full_run.items() if d})
    per_query: dict[str, dict[str, float]] = {m: {q: 0.0 for q in judged} for m in metrics}
    if len(q_no_results) < len(judged):
        evaluate(_ranx_qrels(judged), ranx_run, metrics, return_mean=False, make_comparable=True,
                 save_results_in_run=True)
        for m in metrics:
            for q, v in ranx_run.scores[m].items():
                per_query[m][q] = float(v)
    mean = {m: float(np.mean(list(per_query[m].values()))) for m in metrics}
    return RunScores(mean, per_query)


def compare_to_baseline(qrels: Qrels, runs: Mapping[str, Run], baseline: str, *,
                        metrics: Sequence[str] = ("ndcg@10",), stat_test: str = "student",
                        max_p: float = 0.05) -> dict[str, dict[str, dict[str, float | bool]]]:
    """Paired significance of every run against `baseline` with ranx.compare (two-sided paired test per query).

    Returns {run name: {metric: {"delta": mean - baseline mean, "p_value": p, "significant": p < max_p}}}.
    """
    from ranx import compare

    if baseline not in runs:
        raise InputError(f"the baseline {baseline!r} is not among the compared methods {sorted(runs)}")
    judged = {q: d for q, d in qrels.items() if d}
    names = list(runs)
    ranx_runs = [_ranx_run({q: dict(runs[n].get(q, {})) or {"__none__": 0.0} for q in judged}, name=n)
                 for n in names]
    report = compare(_ranx_qrels(judged), ranx_runs, list(metrics), stat_test=stat_test, max_p=max_p,
                     make_comparable=True).to_dict()
    out: dict[str, dict[str, dict[str, float | bool]]] = {}
    for n in names:
        if n == baseline:
            continue
        out[n] = {}
        for m in metrics:
            p = float(report[n]["comparisons"][baseline][m])
            out[n][m] = {"delta": float(report[n]["scores"][m] - report[baseline]["scores"][m]),
                         "p_value": p, "significant": bool(p < max_p)}
    return out


def significance_vs_baseline(qrels: Qrels, runs: Mapping[str, Run], baseline: str,
                             metrics: Sequence[str] = SIGNIFICANCE_METRICS) -> dict[str, dict[str, float | None]]:
    """{method: {metric: p-value}} of `compare_to_baseline`, as strict JSON: None where the test is undefined
    (e.g. identical per-query values); {} when there is nothing to compare."""
    if len(runs) < 2 or baseline not in runs:
        return {}
    report = compare_to_baseline(qrels, runs, baseline, metrics=metrics)
    return {n: {m: finite_or_none(v["p_value"]) for m, v in per_metric.items()} for n, per_metric in report.items()}


def finite_or_none(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


@dataclass
class MethodResult:
    """One method's evaluation: metrics, latency, index size, build time and its ranked lists."""
    name: str
    params: dict[str, Any]
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    ms_per_query: float
    index_bytes: int
    build_s: float
    ids: np.ndarray
    scores: np.ndarray
    run: Run = field(repr=False, default_factory=dict)
    extra: dict[str, float | int] = field(default_factory=dict)    # method-specific sizes, e.g. rescore_bytes

    def summary(self) -> dict[str, float | int]:
        """The bench JSON entry: DESIGN §3 keys first, then the extra ones."""
        m = self.metrics
        out: dict[str, float | int] = {"ndcg@10": m.get("ndcg@10", 0.0), "recall@100": m.get("recall@100", 0.0),
                                       "mrr@10": m.get("mrr@10", 0.0), "ms_per_query": self.ms_per_query,
                                       "index_bytes": int(self.index_bytes)}
        for key in ("recall@10", "map@100"):
            if key in m:
                out[key] = m[key]
        out["build_s"] = self.build_s
        out.update(self.extra)
        return out


def prepare(texts: TextSet, needs: frozenset[str]) -> None:
    """Compute the representations a method reads, so that neither build nor search timing includes the model."""
    if "embeddings" in needs:
        texts.embeddings()
    if "tokens" in needs:
        texts.tokens()
    if "query_bank" in needs and texts.reference_queries is not None:
        texts.reference_queries.embeddings()


def timed_search(method: RetrievalMethod, queries: TextSet, k: int, *, warmup: int = 5, threads: int | None = 1,
                 progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Search query by query with at most `threads` BLAS threads (None: the library's default);
    returns (ids, scores, seconds per query)."""
    with _blas_threads(threads):
        return _timed_search(method, queries, k, warmup=warmup, progress=progress)


def _blas_threads(threads: int | None):
    import contextlib

    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def _timed_search(method: RetrievalMethod, queries: TextSet, k: int, *, warmup: int,
                  progress: Progress | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(queries)
    singles = [queries.subset([i]) for i in range(n)]
    for q in singles[:min(warmup, n)]:
        method.search(q, k)
    k_eff = min(k, method.n_docs)
    ids = np.full((n, k_eff), -1, np.int64)
    scores = np.zeros((n, k_eff), np.float32)
    seconds = np.zeros(n)
    step = max(1, n // 20)
    for i, q in enumerate(singles):
        t0 = time.perf_counter()
        row_ids, row_scores = method.search(q, k)
        seconds[i] = time.perf_counter() - t0
        ids[i, :row_ids.shape[1]], scores[i, :row_ids.shape[1]] = row_ids[0], row_scores[0]
        if progress and (i % step == 0 or i == n - 1):
            progress((i + 1) / n, f"{method.name}: searched {i + 1}/{n} queries")
    return ids, scores, seconds


def evaluate_method(method: RetrievalMethod, corpus: TextSet, queries: TextSet, qrels: Qrels, *, k: int = 100,
                    metrics: Sequence[str] = METRICS, warmup: int = 5, exclude: np.ndarray | None = None,
                    threads: int | None = 1, progress: Progress | None = None) -> MethodResult:
    """Build `method` on `corpus` (timed), search every query on its own (timed), evaluate against `qrels`.

    `exclude[i]` (a document row, or -1) is left out of query i's ranking: the query document itself when queries
    are sampled from the corpus (`queries_from_labels`).
    """
    def report(frac: float, msg: str) -> None:
        if progress:
            progress(frac, msg)

    prepare(corpus, method.needs)
    prepare(queries, method.needs)
    report(0.0, f"{method.name}: building")
    method.load_libraries()
    t0 = time.perf_counter()
    method.build(corpus)
    build_s = time.perf_counter() - t0
    margin = 0 if exclude is None else (np.shape(exclude)[1] if np.ndim(exclude) == 2 else 1)
    ids, scores, seconds = timed_search(method, queries, k + margin, warmup=warmup, threads=threads,
                                        progress=lambda f, m: report(0.05 + 0.9 * f, m))
    if exclude is not None:
        ids, scores = drop_rows(ids, scores, exclude, k)
    run = to_run(ids, scores, queries.ids, corpus.ids)
    result = evaluate_run(qrels, run, metrics)
    report(1.0, f"{method.name}: done")
    extra = method.extra_summary(queries, qrels)
    return MethodResult(method.name, dict(method.params), result.mean, result.per_query,
                        float(np.median(seconds) * 1000) if len(seconds) else 0.0, int(method.index_bytes), build_s,
                        ids, scores, run, extra)


def drop_rows(ids: np.ndarray, scores: np.ndarray, exclude: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each query's excluded documents (`exclude[i]`: one row, or a row of rows padded with -1) from its
    ranked list and keep the first k of the rest."""
    exclude = np.asarray(exclude, dtype=np.int64).reshape(len(ids), -1)
    keep = np.array([~np.isin(ids[i], exclude[i]) for i in range(len(ids))]).reshape(ids.shape)
    out_ids = np.full((len(ids), min(k, ids.shape[1])), -1, np.int64)
    out_scores = np.zeros(out_ids.shape, np.float32)
    for i in range(len(ids)):
        row_ids, row_scores = ids[i][keep[i]][:k], scores[i][keep[i]][:k]
        out_ids[i, :len(row_ids)], out_scores[i, :len(row_ids)] = row_ids, row_scores
    return out_ids, out_scores
