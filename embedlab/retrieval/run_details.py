"""What a stored retrieval run keeps for the page's per-query drill-down, bounded in size, and the views of it that
the page shows: the queries on which two methods disagree most, one method's ranked list with relevance marks, and
what the numbers of a run with queries from labels mean.
"""
from __future__ import annotations

import math

from embedlab.retrieval.comparison import Comparison, ComparisonResult
from embedlab.retrieval.evaluate import significance_vs_baseline

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
    baseline = done.params["baseline"]
    significance = significance_vs_baseline(done.comparison.qrels, done.runs, baseline)
    details = run_details(done.comparison, done.results, significance, baseline=baseline)
    if done.params.get("source") == "judgments":   # the queries that are documents, and the condensed lists
        details["document_queries"] = {q: int(r) for q, r in done.comparison.document_queries.items()
                                       if q in details["queries"]}
        details["condensed"] = done.condensed
        details["condensed_significance"] = done.condensed_significance
    return details


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


def labels_note(params: dict, details: dict) -> str | None:
    """What the numbers of a run with queries from labels mean, as Markdown (None for other sources)."""
    if params.get("source") != "labels":
        return None
    counts = [int(n) for n in (details.get("n_relevant") or {}).values() if isinstance(n, (int, float)) and n > 0]
    cap = params.get("max_relevant")
    mean = sum(counts) / len(counts) if counts else None
    ceiling = sum(min(10, n) / n for n in counts) / len(counts) if counts else None
    per_query = f"{mean:,.0f} per query on average here" if mean is not None else "their number varies"
    if cap:
        return (f"**Queries from labels, capped.** Each query is a document of the corpus; its relevant set is a "
                f"seeded sample of at most {cap:,} other documents of its label ({per_query}), and the rest of its "
                "label is set aside (unjudged: left out of its ranking). Recall@10 is the share of those found "
                "before the 10th document of another label; nDCG@10 and MRR@10 weigh them by rank. The scores ask "
                "how far ahead of the other labels a method ranks the query's label as a whole, so they read lower "
                "than uncapped ones, which only ask whether the top 10 share its label; 1 needs every document of "
                "the label first.")
    text = (f"**Queries from labels.** Each query is a document of the corpus; its relevant documents are all "
            f"the other documents of its label ({per_query}). ")
    if ceiling is not None and ceiling < 0.995:
        return text + (f"Recall@10 can therefore reach only {ceiling:.3f} (10 of them), and recall@100 and MAP@100 "
                       "stay small too: read nDCG@10 (1 when the top 10 are all of the query's label) and MRR@10 "
                       "(1 when the first hit is). To judge against a fixed number of label-mates "
                       "instead, set “Relevant per query” (e.g. 10) and run again.")
    return text + "nDCG@10 is 1 when the top 10 are all of the query's label; MRR@10 when the first hit is."


def _short_float(x: float) -> float:
    x = float(x)
    return float(f"{x:.6g}") if math.isfinite(x) else 0.0


def judgments_note(params: dict, details: dict) -> str | None:
    """What the numbers of a run on the user's own judgments mean, as Markdown (None for other sources)."""
    if params.get("source") != "judgments":
        return None
    who = ", ".join(params.get("judges") or []) or "every judge (a pair graded by several: the lower median)"
    qrels = details.get("qrels") or {}
    only_relevant = bool(qrels) and all(g > 0 for judged in qrels.values() for g in judged.values())
    text = (f"**My judgments.** The queries are the judged ones with at least one relevant document, graded by "
            f"{who}; a document nobody judged counts as not relevant (as in BEIR and TREC), so a method that finds "
            "good documents nobody looked at scores lower. The condensed scores (Sakai 2007) drop every unjudged "
            "document from each ranking before scoring: where they differ much from the first ones, the ranking "
            "of methods depends on unjudged results, and judging the pooled pairs of “What to judge next” helps.")
    if only_relevant:
        text += (" Only relevant documents are judged here, so a condensed list holds nothing else: its scores "
                 "only say which relevant documents a method found in its top 100.")
    return text
