"""What a stored retrieval run keeps for the page's per-query drill-down, bounded in size, and the views of it that
the page shows: the queries on which two methods disagree most, and one method's ranked list with relevance marks.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from embedlab.retrieval.comparison import Comparison, ComparisonResult

TOP_SHOWN = 10                  # ranked documents kept per query and method for the drill-down
MAX_DETAIL_QUERIES = 1000       # queries whose rankings, texts and qrels the run keeps
MAX_QRELS_PER_QUERY = 100       # judged documents kept per query (besides those shown in a ranking)
TEXT_CHARS = 300                # query and document texts are cut to this length in the run
MAX_WARNINGS = 20


def run_details(comp: Comparison, results: dict, significance: dict, *, baseline: str,
                max_queries: int | None = None) -> dict:
    """What the page's drill-down needs, bounded: the first `max_queries` queries with each method's top 10,
    nDCG@10 per query, their judgements (at most MAX_QRELS_PER_QUERY besides the shown documents) and the texts
    (cut to TEXT_CHARS) of the queries and of the documents shown."""
    qids = list(comp.queries.ids[:max_queries or MAX_DETAIL_QUERIES])
    doc_ids = comp.corpus.ids
    rankings: dict[str, dict[str, list]] = {}
    per_query: dict[str, dict[str, float]] = {}
    shown: dict[str, set[str]] = {q: set() for q in qids}
    for name, r in results.items():
        per_query[name] = {q: round(float(r.per_query.get("ndcg@10", {}).get(q, 0.0)), 6) for q in qids}
        ranking = {}
        for qi, q in enumerate(qids):
            row = [[doc_ids[int(d)], _short_float(s)] for d, s in zip(r.ids[qi][:TOP_SHOWN], r.scores[qi][:TOP_SHOWN])
                   if d >= 0]
            shown[q].update(d for d, _ in row)
            ranking[q] = row
        rankings[name] = ranking
    qrels, n_relevant = {}, {}
    for q in qids:
        judged = comp.qrels.get(q, {})
        n_relevant[q] = sum(1 for r in judged.values() if r > 0)
        if len(judged) > MAX_QRELS_PER_QUERY:
            first = list(judged)[:MAX_QRELS_PER_QUERY]
            judged = {d: judged[d] for d in dict.fromkeys([*first, *(d for d in shown[q] if d in judged)])}
        qrels[q] = {d: int(r) for d, r in judged.items()}
    row_of = {d: i for i, d in enumerate(doc_ids)}
    wanted = sorted(set().union(*shown.values()), key=lambda d: row_of[d]) if shown else []
    query_text = dict(zip(comp.queries.ids, comp.queries.texts))
    return {"dataset": comp.dataset, "n_docs": len(comp.corpus), "n_queries": len(comp.queries),
            "n_queries_shown": len(qids), "baseline": baseline,
            "per_query": per_query, "rankings": rankings, "qrels": qrels, "n_relevant": n_relevant,
            "queries": {q: query_text[q][:TEXT_CHARS] for q in qids},
            "docs": {d: comp.corpus.texts[row_of[d]][:TEXT_CHARS] for d in wanted},
            "significance": significance, "warnings": comp.warnings[:MAX_WARNINGS]}


def details_of(done: ComparisonResult) -> dict:
    """What a run of a finished comparison keeps (significance against its baseline included), from the page's
    job and from `bench-retrieval --session` alike."""
    from embedlab.retrieval.evaluate import significance_vs_baseline

    baseline = done.params["baseline"]
    significance = significance_vs_baseline(done.comparison.qrels, done.runs, baseline)
    return run_details(done.comparison, done.results, significance, baseline=baseline)


def disagreements(details: dict, a: str, b: str) -> list[tuple[str, float]]:
    """(query id, nDCG@10 of b minus a) for the stored queries, largest |difference| first (ties by query order)."""
    pa, pb = details.get("per_query", {}).get(a, {}), details.get("per_query", {}).get(b, {})
    order = list(details.get("queries", {}))
    deltas = [(q, float(pb.get(q, 0.0)) - float(pa.get(q, 0.0))) for q in order]
    return sorted(deltas, key=lambda qd: -abs(qd[1]))


def ranked_list_rows(details: dict, method: str, qid: str) -> list[dict]:
    """One method's stored top 10 for a query, with relevance marks and document snippets (plain text)."""
    judged = details.get("qrels", {}).get(qid, {})
    docs = details.get("docs", {})
    rows = []
    for rank, (doc_id, score) in enumerate(details.get("rankings", {}).get(method, {}).get(qid, []), start=1):
        rel = judged.get(doc_id, 0)
        rows.append({"rank": rank, "relevant": "✓" if rel > 0 else "", "doc_id": doc_id, "score": score,
                     "text": docs.get(doc_id, "")})
    return rows


def _short_float(x: float) -> float:
    x = float(x)
    return float(f"{x:.6g}") if math.isfinite(x) else 0.0
