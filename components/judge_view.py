"""The Atlas's "✍️ Judgments" tab: what this corpus's judges have judged, how far two judges agree (Cohen's kappa
and raw agreement on the pairs both judged, the pairs they disagree on, each one click from its query on the map),
and what to judge next: the top-k of several methods and models pooled for a query set (TREC-style depth-k
pooling), the unjudged pairs first where the systems disagree most, judged in place, with judged@10 per system.

It is a tab of the Atlas, not a section of the Sessions page, because judgments belong to one corpus and its map: a
disagreement opens as the focused document (or the typed query's search) on the same page, and the pool ranks with
the corpus's embedded models, which the Atlas has at hand.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from components.atlas_context import AtlasContext
from components.atlas_search import HITS_LIST, MODE_KEY, QUERY_KEY, SEMANTIC
from components.atlas_state import SEARCH_TAB, TAB_KEY
from components.data import pool_rankings
from components.judge_buttons import GRADE_MARKS, GRADE_WORDS, JudgeItem, JudgeScope, judge_list, point_cursor
from components.judge_name import current_judge
from components.neighbour_panel import PANEL_KEY
from components.state import keep_widgets, restore_widget
from embedlab.errors import UserError
from embedlab.judgment_pool import COVERAGE_K, DEFAULT_POOL_METHODS, Candidate, Pool, build_pool
from embedlab.judgments import Query, combined_grades
from embedlab.retrieval import list_methods
from embedlab.text_display import display_text, short_text

POOL_KEY = "atlas_pool"                 # the pool asked for: its query set, systems and depth (session state)
POOL_SHOWN = 30                         # pairs listed to judge at a time
SOURCES = {"judged": "Judged queries", "sample": "A sample of documents", "typed": "Typed queries"}


def judgments_view(ctx: AtlasContext) -> None:
    st.caption("Judge results where you read them: the neighbour cards, the search hits, a retrieval run's lists. "
               "Grades: **Relevant** 2 · **Partly** 1 · **Not** 0; the Retrieval lab scores every method on them "
               "(*My judgments*).")
    summary(ctx)
    st.markdown("#### Agreement of two judges")
    agreement_section(ctx)
    st.markdown("#### What to judge next")
    pool_section(ctx)


# --- summary ------------------------------------------------------------------------------------------------------


def summary(ctx: AtlasContext) -> None:
    rows = [r for r in ctx.ws.judgment_counts(ctx.session_id) if r["corpus_id"] == ctx.corpus.id]
    if not rows:
        st.info("No judgments on this corpus yet: focus a document and grade its neighbours, or grade search hits.")
        return
    st.dataframe(pd.DataFrame([{"judge": r["judge"], "judgments": r["judgments"], "queries": r["queries"],
                                "relevant": r["relevant"], "last": r["last"]} for r in rows]),
                 hide_index=True, width="stretch", key="atlas-judges-table")


# --- agreement ----------------------------------------------------------------------------------------------------


def query_words(ctx: AtlasContext, query: Query, chars: int = 90) -> str:
    """A query as the lists name it (Markdown, escaped): a document "#12 “text…”", a typed one "“text”"."""
    if query.idx is not None:
        return f"#{query.idx} “{display_text(short_text(ctx.texts[query.idx], chars))}”"
    return f"typed “{display_text(short_text(query.text or '', chars))}”"


def open_query(ctx: AtlasContext, query: Query, doc: int) -> None:
    """Show a query on this page: a document query becomes the focus (its neighbours listed and judged), a typed
    one the search box's query (its hits listed and judged in the Search hits tab); the keyboard's cursor waits on
    `doc` when it is listed."""
    if query.idx is not None:
        ctx.set_focus(int(query.idx))
        point_cursor(PANEL_KEY, doc)
    else:
        st.session_state[QUERY_KEY] = query.text
        st.session_state[MODE_KEY] = SEMANTIC
        st.session_state[TAB_KEY] = SEARCH_TAB
        point_cursor(HITS_LIST, doc)


def agreement_section(ctx: AtlasContext) -> None:
    judges = ctx.ws.judge_names(ctx.session_id, ctx.corpus.id)
    if len(judges) < 2:
        st.caption("Two judges are needed: a second person types their name in the sidebar (each browser has its "
                   "own) and judges some of the same results.")
        return
    me = current_judge()
    first = me if me in judges else judges[0]
    defaults = {"atlas_agree_a": first, "atlas_agree_b": next(j for j in judges if j != first)}
    for key, default in defaults.items():
        if st.session_state.get(key, default) not in judges:     # a judge whose judgments are gone
            st.session_state.pop(key, None)
        restore_widget(key, default, valid=lambda v: v in judges)
    c1, c2 = st.columns(2)
    a = c1.selectbox("Judge A", judges, key="atlas_agree_a")
    b = c2.selectbox("Judge B", judges, key="atlas_agree_b")
    keep_widgets(*defaults)
    if a == b:
        st.caption("Pick two different judges.")
        return
    try:
        found = ctx.ws.judgment_agreement(ctx.session_id, ctx.corpus.id, a, b)
    except UserError as exc:
        st.error(display_text(exc))
        return
    m1, m2, m3 = st.columns(3)
    m1.metric("Pairs both judged", f"{found.pairs:,}",
              help=f"{found.only_a:,} judged by {a} only, {found.only_b:,} by {b} only")
    m2.metric("Raw agreement", "—" if found.agreement is None else f"{found.agreement:.0%}",
              help=f"{found.agree:,} of {found.pairs:,} pairs got the same grade")
    m3.metric("Cohen's kappa", "—" if found.kappa is None else f"{found.kappa:.3f}",
              help="Agreement beyond chance (1 perfect, 0 as by chance; unweighted, grades as categories). "
                   "Undefined with no shared pair, or one grade everywhere.")
    st.caption(display_text(f"{found.agree:,} of {found.pairs:,} shared pairs agree · {found.only_a:,} judged by "
                            f"{a} only · {found.only_b:,} by {b} only."))
    if found.confusion:
        grades = sorted({g for pair in found.confusion for g in pair}, reverse=True)
        table = pd.DataFrame([[found.confusion.get((ga, gb), 0) for gb in grades] for ga in grades],
                             index=[f"{a}: {GRADE_WORDS.get(g, g)}" for g in grades],
                             columns=[f"{b}: {GRADE_WORDS.get(g, g)}" for g in grades])
        st.dataframe(table, width="stretch", key="atlas-agree-confusion")
    if not found.disagreements:
        if found.pairs:
            st.caption("They agree on every shared pair.")
        return
    st.markdown(f"**{len(found.disagreements):,} pair(s) they disagree on** (click to open the query here)")
    for n, d in enumerate(found.disagreements[:50]):
        with st.container(border=True, key=f"atlas-disagree-{n}"):
            left, right = st.columns([5, 1.3], vertical_alignment="center")
            left.markdown(f"Query {query_words(ctx, d.query)} → document #{d.doc_idx} "
                          f"“{display_text(short_text(ctx.texts[d.doc_idx], 90))}”  \n"
                          f"{display_text(a)}: {GRADE_MARKS.get(d.grade_a, '')} **{GRADE_WORDS.get(d.grade_a)}** · "
                          f"{display_text(b)}: {GRADE_MARKS.get(d.grade_b, '')} **{GRADE_WORDS.get(d.grade_b)}**")
            right.button("Open query", key=f"atlas-disagree-open-{n}", on_click=open_query,
                         args=(ctx, d.query, d.doc_idx), width="stretch",
                         help="Focus the query document (or search the typed query) on this map")
    if len(found.disagreements) > 50:
        st.caption(f"The first 50 of {len(found.disagreements):,} are listed.")


# --- pooling ------------------------------------------------------------------------------------------------------


def _pool_form(ctx: AtlasContext) -> None:
    methods = [m.name for m in list_methods() if m.name != "matryoshka-N"]
    with st.form("atlas_pool_form", border=True):
        c1, c2 = st.columns([2, 1])
        source = c1.radio("Queries", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="atlas_pool_src")
        depth = c2.number_input("Pool depth (top k of each system)", 1, 100, 10, key="atlas_pool_depth")
        c3, c4, c5 = st.columns([1, 1, 2])
        n_queries = c3.number_input("Sample size", 1, 1000, 20, key="atlas_pool_n",
                                    help="A sample of documents: how many documents become queries")
        seed = c4.number_input("Seed", 0, 10**6, 0, key="atlas_pool_seed")
        typed = c5.text_area("Typed queries (one a line)", key="atlas_pool_typed", height=80)
        c6, c7 = st.columns(2)
        picked = c6.multiselect("Methods", methods, default=[m for m in DEFAULT_POOL_METHODS if m in methods],
                                key="atlas_pool_methods")
        models = c7.multiselect("Models", list(ctx.models), default=[ctx.model], key="atlas_pool_models")
        mine = st.checkbox("Unjudged = not judged by me (else: by nobody)", key="atlas_pool_mine",
                           help="Two judges who want to measure their agreement each judge the same pairs.")
        if st.form_submit_button("Pool", type="primary"):
            try:
                queries = ctx.ws.pool_queries(ctx.session_id, ctx.corpus.id, source, n_queries=int(n_queries),
                                              seed=int(seed), texts=typed.splitlines())
            except UserError as exc:
                st.error(display_text(exc))
                return
            st.session_state[POOL_KEY] = {"corpus_id": ctx.corpus.id, "source": source, "depth": int(depth),
                                          "queries": tuple((q.idx, q.text) for q in queries),
                                          "methods": tuple(picked), "models": tuple(models), "mine": mine}


def pool_section(ctx: AtlasContext) -> None:
    _pool_form(ctx)
    asked = st.session_state.get(POOL_KEY)
    if not asked or asked["corpus_id"] != ctx.corpus.id:
        st.caption("Pick a query set and the systems to pool, then **Pool**: each system's top k is pooled, and the "
                   "pairs nobody judged yet come first, where the systems disagree most.")
        return
    if not asked["methods"] or not asked["models"]:
        st.caption("Pick at least one method and one model.")
        return
    queries = [Query(idx=i, text=t) for i, t in asked["queries"]]
    try:
        rankings = pool_rankings(ctx.corpus, asked["queries"], asked["methods"], asked["models"],
                                 max(asked["depth"], COVERAGE_K))
    except UserError as exc:
        st.error(display_text(exc))
        return
    judges = [current_judge()] if asked["mine"] and current_judge() else None
    grades = combined_grades(ctx.ws.judgments(ctx.session_id, ctx.corpus.id, judges=judges))
    pool = build_pool(queries, rankings, grades, depth=asked["depth"])
    coverage_table(pool)
    todo = pool.unjudged
    st.markdown(f"**{len(todo):,} of {len(pool.candidates):,} pooled pairs unjudged** · {len(queries):,} queries · "
                f"depth {pool.depth} · {len(pool.systems)} systems")
    if not todo:
        st.success("Every pooled pair is judged.")
        return
    scope = JudgeScope(ctx.session_id, ctx.corpus.id)
    items = [pool_item(ctx, scope, pool, c) for c in todo[:POOL_SHOWN]]
    judge_list(items, key="atlas-pool", what="Pair", on_focus=None, page_size=10)
    if len(todo) > POOL_SHOWN:
        st.caption(f"The first {POOL_SHOWN} are listed; judged pairs leave the list.")


def coverage_table(pool: Pool) -> None:
    """judged@10 per system: the share of its top 10 that is judged, averaged over the queries."""
    st.dataframe(pd.DataFrame([{"system": s, f"judged@{COVERAGE_K}": v} for s, v in pool.coverage.items()]),
                 hide_index=True, key="atlas-pool-coverage",
                 column_config={f"judged@{COVERAGE_K}": st.column_config.ProgressColumn(
                     f"judged@{COVERAGE_K}", format="percent", min_value=0.0, max_value=1.0)})


def ranks_words(pool: Pool, candidate: Candidate) -> str:
    """"bm25 #3 · dense —" (— where the system did not pool it)."""
    return " · ".join(f"{s} {'#' + str(r) if r <= pool.depth else '—'}"
                      for s, r in zip(pool.systems, candidate.ranks))


def pool_item(ctx: AtlasContext, scope: JudgeScope, pool: Pool, c: Candidate) -> JudgeItem:
    head = (f"Query {query_words(ctx, c.query, 70)} → **#{c.doc_idx}** · {display_text(ranks_words(pool, c))}")
    return JudgeItem(scope.target(c.query), int(c.doc_idx), head, ctx.texts[c.doc_idx])

