"""Judgments in the Retrieval lab: the "My judgments" query source (a corpus's judged queries, by some or all
judges), the condensed-list table beside a "My judgments" run's table, the button that opens a run's worst query on
the Atlas, and judging a run's ranked lists in place (the drill-down on the Retrieval page and the Retrieval tab of
the Atlas alike).

A run's query is judged as what it is: a document of the corpus (a labels run's queries, a judgments run's document
queries) or a typed text (a BEIR query, a judgments run's typed queries); its listed documents are rows of the
corpus that the run fits (`embedlab.map_retrieval.fit_run`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import streamlit as st

from components.atlas_state import RETRIEVAL_TAB, AtlasView, open_atlas, tab_name
from components.data import corpora_showing_run, run_fit_for
from components.judge_buttons import JudgeItem, JudgeScope, JudgeTarget, judge_list
from components.metric_table import metric_table
from components.state import get_workspace
from embedlab.errors import UserError
from embedlab.judgments import Query
from embedlab.map_retrieval import best_methods, ndcg_of, query_is_document, query_row
from embedlab.runs import RetrievalRun
from embedlab.text_display import display_text
from embedlab.workspace import CorpusInfo

WORST_FIRST = "worst first"


# --- the query source ---------------------------------------------------------------------------------------------


def judgments_source(session_id: int, corpora: Sequence[CorpusInfo]) -> tuple[dict, bool]:
    """The "My judgments" choices: the corpus and whose judgments count. Returns (setup, ready)."""
    ws = get_workspace()
    counts = ws.judgment_counts(session_id)
    judged = [c for c in corpora if any(r["corpus_id"] == c.id for r in counts)]
    if not judged:
        st.info("No judgments in this session yet: on the Atlas, grade a focused document's neighbours or a search's "
                "hits (Relevant / Partly / Not); each judged query with a relevant document becomes a query here.")
        return {}, False
    c1, c2 = st.columns([2, 3])
    chosen = c1.selectbox("Corpus", [c.name for c in judged], key="retr_judged_corpus")
    corpus = next(c for c in judged if c.name == chosen)
    judges = ws.judge_names(session_id, corpus.id)
    picked = c2.multiselect("Judges (none = everyone)", judges, key="retr_judges",
                            help="Several judges' grades of one pair count as their lower median.")
    queries = ws.judged_queries(session_id, corpus.id, judges=picked or None)
    usable = [q for q in queries if q.relevant > 0]
    st.caption(f"{len(usable):,} judged quer{'y' if len(usable) == 1 else 'ies'} with a relevant document "
               f"({len(queries):,} judged, {sum(q.judged for q in queries):,} judged pairs) · documents nobody "
               "judged count as not relevant; the condensed lists beside leave them out.")
    if not usable:
        st.warning("Mark at least one result relevant to a query first: a query without a relevant document scores "
                   "0 for every method and is left out.")
        return {}, False
    return {"source": "judgments", "corpus_id": corpus.id, "judges": picked or None, "dataset": corpus.name}, True


# --- a run's tables ----------------------------------------------------------------------------------------------


def ranking_by(metrics: Mapping[str, Mapping[str, float | None]], metric: str = "ndcg@10") -> list[str]:
    """Methods best first by `metric` (missing values last)."""
    return sorted(metrics, key=lambda m: -(metrics[m].get(metric) if metrics[m].get(metric) is not None else -1))


def condensed_table(run: RetrievalRun) -> None:
    """A "My judgments" run's second table: the same metrics on condensed lists (unjudged documents removed,
    Sakai 2007), and whether the order of the methods by nDCG@10 changes."""
    if not run.condensed:
        return
    st.markdown("**Condensed lists** — the same metrics with every unjudged document removed from each ranking "
                "(Sakai 2007): a method is neither punished nor rewarded for results nobody judged.")
    metric_table(run.condensed, significance=run.condensed_significance, baseline=run.baseline,
                 key=f"retr-condensed-{run.id}")
    full, condensed = ranking_by(run.metrics), ranking_by(run.condensed)
    if full == condensed:
        st.caption("The methods rank the same by nDCG@10 with and without the unjudged documents.")
    else:
        st.warning(display_text(f"The ranking depends on unjudged results: by nDCG@10, {' > '.join(full)} with "
                                f"unjudged documents counted as not relevant, {' > '.join(condensed)} on condensed "
                                "lists. Judge more of the methods' top results (the Atlas's Judgments tab pools "
                                "them)."), icon=":material/warning:")


def worst_query(run: RetrievalRun, methods: Sequence[str]) -> str | None:
    """The run's query with the lowest mean nDCG@10 over `methods` (the run's order breaks ties)."""
    qids = [str(q) for q in run.details.get("queries", {})]
    if not qids or not methods:
        return None
    means = [float(np.mean([ndcg_of(run.details, m, q) for m in methods])) for q in qids]
    return qids[int(np.argmin(means))]


def worst_query_button(run: RetrievalRun) -> None:
    """"Open on the Atlas (worst query first)": the run on the Atlas's Retrieval tab, its queries stepped through
    worst first, starting with the worst one."""
    shown_on = corpora_showing_run(run.id, run.created_at, run.session_id)
    methods = best_methods(run.metrics, run.baseline, list(run.details.get("per_query", {})))
    qid = worst_query(run, methods)
    if not shown_on or qid is None:
        return
    if st.button("🗺️ Open on the Atlas (worst query first)", key=f"retr-worst-{run.id}",
                 help=display_text(f"The run on the map of “{shown_on[0]}”: its queries worst first (lowest mean "
                                   f"nDCG@10 of {' and '.join(methods)}), starting with query {qid}.")):
        open_atlas(AtlasView(corpus=shown_on[0], tab=tab_name(RETRIEVAL_TAB), run=int(run.id),
                             methods=tuple(methods), query=qid, order=WORST_FIRST))


# --- judging a run's lists ----------------------------------------------------------------------------------------


def run_query(run: RetrievalRun, qid: str, rows: Mapping[str, int], scope: JudgeScope) -> Query | None:
    """The query `qid` of a run as a judgment's query on the scope's corpus: a document (its row) or a typed text;
    None when it cannot be one (a document query the corpus does not hold)."""
    qid = str(qid)
    if query_is_document(run, qid):
        row = query_row(run, qid, rows)
        return None if row is None else Query.document(int(row))
    if run.source == "judgments":
        known = get_workspace().judged_query_ids(scope.session_id, scope.corpus_id).get(qid)
        if known is not None:
            return known
    text = run.details.get("queries", {}).get(qid)
    try:
        return Query.typed(text) if text else None
    except UserError:
        return None


def run_items(run: RetrievalRun, qid: str, methods: Sequence[str], rows: Mapping[str, int], target: JudgeTarget,
              texts: Sequence[str] | None = None) -> list[JudgeItem]:
    """The union of `methods`' stored top 10 for the query, in rank order (best rank first), as a judge list."""
    rankings = run.details.get("rankings", {})
    seen: dict[int, list[str]] = {}
    order: list[tuple[int, int]] = []
    for m in methods:
        for rank, (doc_id, _score) in enumerate(rankings.get(m, {}).get(str(qid), []), start=1):
            row = rows.get(str(doc_id))
            if row is None:
                continue
            if row not in seen:
                order.append((rank, row))
            seen.setdefault(row, []).append(f"{m} #{rank}")
    docs = run.details.get("docs", {})
    doc_of = {row: d for d, row in rows.items()}
    items = []
    for _, row in sorted(order, key=lambda rr: rr[0]):
        text = texts[row] if texts is not None else docs.get(doc_of.get(row, ""), "")
        items.append(JudgeItem(target, row, f"#{row} · {display_text(' · '.join(seen[row]))}", text))
    return items


def run_judging(run: RetrievalRun, qid: str, methods: Sequence[str], *, scope: JudgeScope | None = None,
                rows: Mapping[str, int] | None = None, texts: Sequence[str] | None = None, key: str) -> None:
    """Judge the query's results of `methods` in place (one row per document of their top 10s). On the Retrieval
    page the corpus is the first of the session's corpora that the run fits; the Atlas passes its own."""
    if scope is None or rows is None:
        found = _run_corpus(run)
        if found is None:
            st.caption("The run's documents are not a corpus of this session: ingest them (for BEIR, corpus.jsonl "
                       "with its `_id` as the id column) to judge them.")
            return
        scope, rows = found
    query = run_query(run, qid, rows, scope)
    if query is None:
        st.caption("This query is not a document of the corpus on screen: its results cannot be judged here.")
        return
    items = run_items(run, qid, methods, rows, scope.target(query), texts)
    st.markdown(f"**Judge these results** for query {display_text(qid)} (your grades count in *My judgments*)")
    judge_list(items, key=key, what="Result")


def _run_corpus(run: RetrievalRun) -> tuple[JudgeScope, Mapping[str, int]] | None:
    ws = get_workspace()
    shown_on = corpora_showing_run(run.id, run.created_at, run.session_id)
    corpus = next((c for c in ws.corpora(run.session_id) if shown_on and c.name == shown_on[0]), None)
    if corpus is None:
        return None
    fit = run_fit_for(run.id, run.created_at, corpus)
    return JudgeScope(run.session_id, corpus.id), fit.rows
