"""Atlas view "Retrieval": a stored retrieval run on the corpus's map. Pick a run that fits the corpus, methods
and a query (stepped through in the drill-down's orders); the map shows the query, its relevant documents ringed
and each method's top 10 as hits and misses, with nDCG@10 per method and the ranked lists under it, each listed
document judged in place for the query (`components.judge_lab.run_judging`). The run picker is shared with the
Failure regions view."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from components.atlas_context import AtlasContext
from components.atlas_state import (RETRIEVAL_ORDER_KEY, RETRIEVAL_RUN_KEY, retrieval_methods_key,
                                    retrieval_query_key, settle_run)
from components.data import run_fit_for, stored_run
from components.judge_buttons import JudgeScope
from components.judge_lab import run_judging
from components.map_view import draw_map
from components.state import focus_on_pick, keep_widgets, restore_widget
from embedlab.errors import UserError
from embedlab.map_colours import ColourSpec, label_colour, label_palette
from embedlab.map_figure import Highlight
from embedlab.map_retrieval import (ORDERS, PLACEMENT_K, RunFit, best_methods, method_marks, place_query,
                                    query_is_document, query_order, ranked_rows, relevant_rows)
from embedlab.runs import RetrievalRun
from embedlab.text_display import display_text, short_text, snippet

GREY = "#CFCFCF"
RELEVANT_COLOUR = "#2CA02C"
QUERY_COLOUR = "#111111"
# (symbol, colour) per chosen method, in order: hits filled, misses open; the first method draws largest, so a
# document in several top 10s shows every method's marker
METHOD_STYLES = [("diamond", "#1F5FBF"), ("square", "#D62728"), ("triangle-up", "#9467BD"),
                 ("pentagon", "#E07B00"), ("hexagon", "#17A2B8")]
MAX_METHODS = len(METHOD_STYLES)
NO_RUN_HELP = ("No retrieval run of this session fits this corpus. Make one on the **Retrieval** page with "
               "queries from this corpus's labels; or, for a BEIR run, ingest the collection's corpus.jsonl "
               "with its `_id` as the id column (so the corpus holds the run's document ids) and run the same "
               "collection there.")


def pick_run(ctx: AtlasContext, key: str) -> tuple[RetrievalRun, RunFit] | None:
    """A selectbox of the session's retrieval runs that fit this corpus ("#id · dataset · methods"); the picked
    run (with details) and its fit, or None after a caption saying how to get one. A run asked for (a link) that
    does not fit gives way to the latest that does, with a toast."""
    runs = ctx.ws.runs(ctx.session_id, "retrieval")
    fits = [run_fit_for(r.id, r.created_at, ctx.corpus) for r in runs]
    usable = {f.run_id: f for f in fits if f.fits}
    bare = [f.run_id for f in fits if f.reason == "no per-query details"]
    bare_note = (f"Run{'s' if len(bare) > 1 else ''} {', '.join(f'#{i}' for i in bare)} "
                 f"{'were' if len(bare) > 1 else 'was'} saved without per-query details (an older "
                 "`bench-retrieval --session`): not listed. Run it again (CLI or Retrieval page) to see it here."
                 if bare else None)
    if not usable:
        st.caption(NO_RUN_HELP)
        if bare_note:
            st.caption(bare_note)
        return None
    options = list(usable)
    restore_widget(key)
    settle_run(key, options, ctx.corpus)
    run_id = st.selectbox("Retrieval run", options, format_func=lambda i: usable[i].title, key=key,
                          help="Runs of this session whose documents this corpus holds: queries from its labels, "
                               "or a BEIR run whose document ids it holds.")
    keep_widgets(key)
    fit = usable[run_id]
    run = stored_run(run_id, next(r.created_at for r in runs if r.id == run_id))
    notes = []
    if fit.found < fit.total:
        notes.append(f"the corpus holds {fit.found:,} of the run's {fit.total:,} document ids "
                     f"({fit.share:.0%}); the others are left off the map")
    details = run.details
    if details.get("n_queries_shown", 0) < details.get("n_queries", 0):
        notes.append(f"the run keeps the first {details['n_queries_shown']:,} of its {details['n_queries']:,} "
                     "queries for per-query views")
    if notes:
        st.caption("Note: " + "; ".join(notes) + ".")
    if bare_note:
        st.caption(bare_note)
    return run, fit


def run_methods(run: RetrievalRun) -> list[str]:
    """The run's methods with per-query scores, in the run's order."""
    per_query = run.details.get("per_query", {})
    ordered = [m for m in run.params.get("methods") or [] if m in per_query]
    return ordered + [m for m in per_query if m not in ordered]


def background_colour(ctx: AtlasContext, by_label: bool) -> ColourSpec:
    """Documents in one grey, or by label (the corpus's palette, the user's names)."""
    if by_label and ctx.labels is not None:
        names = {str(raw): str(shown) for raw, shown in zip(ctx.labels, ctx.shown_labels or ctx.labels)
                 if raw is not None and shown is not None}
        return label_colour(ctx.labels, names=names, palette=label_palette(ctx.labels))
    return ColourSpec("documents", "categorical", np.full(ctx.n, "documents", dtype=object), ["documents"],
                      {"documents": GREY})


@st.cache_data(max_entries=256, show_spinner="Placing the query on the map…")
def placed_query(path: str, emb_id: int, proj_id: int | None, run_id: int, qid: str, text: str, _encode: Any,
                 _X: Any, _coords: Any) -> tuple[list[float], list[int]]:
    """(map position, rows of its nearest documents): the mean map position of the query's PLACEMENT_K nearest
    documents under the map's model."""
    vector = np.asarray(_encode([text]))[0]
    pos, near = place_query(vector, _X, _coords, PLACEMENT_K)
    return pos.tolist(), near.tolist()


# --- the view -----------------------------------------------------------------------------------------------------


def _forget(key: str) -> None:
    """A new order starts at its first query."""
    st.session_state.pop(key, None)
    st.session_state.pop(f"_kept_{key}", None)


def _step(key: str, order: list[str], by: int) -> None:
    current = st.session_state.get(key)
    i = order.index(current) if current in order else 0
    st.session_state[key] = order[min(max(i + by, 0), len(order) - 1)]


def retrieval_map_view(ctx: AtlasContext) -> None:
    picked = pick_run(ctx, RETRIEVAL_RUN_KEY)
    if picked is None:
        return
    run, fit = picked
    rid, details, metrics = run.id, run.details, run.metrics
    methods_all = run_methods(run)
    m_key = retrieval_methods_key(rid)
    restore_widget(m_key, best_methods(metrics, run.baseline, methods_all))
    st.session_state[m_key] = [m for m in st.session_state[m_key] if m in methods_all][:MAX_METHODS]
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    methods = c1.multiselect("Methods", methods_all, key=m_key, max_selections=MAX_METHODS,
                             help="Each method's top 10 is drawn with its own marker: filled where the document is "
                                  "relevant (a hit), open where it is not (a miss).")
    if not methods:
        st.caption("Pick at least one method.")
        return
    order_key, q_key = RETRIEVAL_ORDER_KEY, retrieval_query_key(rid)
    restore_widget(order_key)
    restore_widget(q_key)
    if st.session_state.get(order_key) not in ORDERS:
        st.session_state[order_key] = ORDERS[0]
    c2.selectbox("Step through queries", ORDERS, key=order_key, on_change=_forget, args=(q_key,),
                 help="methods disagree most: the first two methods' nDCG@10 differ most; worst first: lowest mean "
                      "nDCG@10 of the chosen methods; run order: as the run stored them.")
    order_name = st.session_state[order_key]
    if order_name == "methods disagree most" and len(methods) < 2:
        st.caption("“methods disagree most” needs two methods: queries are shown worst first.")
        order_name = "worst first"
    ordered = query_order(details, methods, order_name)
    qids = [q for q, _ in ordered]
    if not qids:
        st.caption("This run keeps no queries.")
        return
    value = dict(ordered)
    texts = details.get("queries", {})
    if st.session_state.get(q_key) not in qids:
        st.session_state[q_key] = qids[0]
    disagree = order_name == "methods disagree most"
    what = f"Δ {methods[1]} − {methods[0]}" if disagree else "mean nDCG@10"

    def label(q: str) -> str:
        return f"{q} · {what} {value[q]:{'+' if disagree else ''}.3f} · {short_text(texts.get(q, ''), 70)}"

    q1, q2, q3 = st.columns([6, 1, 1], vertical_alignment="bottom")
    qid = q1.selectbox("Query", qids, format_func=label, key=q_key)
    keep_widgets(m_key, order_key, q_key)
    pos = qids.index(qid)
    q2.button("◀ Previous", key="atlas_rmap_prev", on_click=_step, args=(q_key, qids, -1), disabled=pos == 0,
              width="stretch")
    q3.button("Next ▶", key="atlas_rmap_next", on_click=_step, args=(q_key, qids, 1),
              disabled=pos == len(qids) - 1, width="stretch")

    rows = fit.rows
    relevant = relevant_rows(details, qid, rows)
    n_rel = details.get("n_relevant", {}).get(qid, len(relevant))
    st.markdown(f"**Query {display_text(qid)}** ({pos + 1} of {len(qids)}, {order_name}): "
                f"{display_text(short_text(texts.get(qid, ''), 400))}")
    marks = [method_marks(details, m, qid, rows) for m in methods]
    cols = st.columns(len(marks))
    for col, mk in zip(cols, marks):
        delta = None if mk is marks[0] else f"{mk.ndcg - marks[0].ndcg:+.3f} vs {display_text(marks[0].method)}"
        col.metric(f"nDCG@10 · {display_text(mk.method)}", f"{mk.ndcg:.3f}", delta=delta,
                   help=f"{len(mk.hits)} relevant in its top 10")
    st.caption(f"{n_rel:,} relevant document(s) ({len(relevant):,} judged ones kept by the run and found in the "
               f"corpus, ringed in green) · ✓ marks a relevant document in the lists below.")

    if ctx.coords is None:
        st.info("Compute the map first (the map above offers it): the query and each method's top 10 are drawn "
                "on it.")
    else:
        _draw_map(ctx, rid, details, qid, rows, relevant, marks, query_is_document(run, qid))

    st.markdown("**Top 10 per method** (click a row to focus the document on the Atlas)")
    per_row = 2
    for start in range(0, len(methods), per_row):
        cols = st.columns(per_row)
        for col, m in zip(cols, methods[start:start + per_row]):
            with col:
                _ranked_list(ctx, rid, details, m, qid, rows)
    run_judging(run, qid, methods, scope=JudgeScope(ctx.session_id, ctx.corpus.id), rows=rows, texts=ctx.texts,
                key="atlas-rmap-judge")


def _draw_map(ctx: AtlasContext, rid: int, details: dict, qid: str, rows: dict[str, int], relevant: list[int],
              marks: list, labels_run: bool) -> None:
    by_label = False
    if ctx.labels is not None:
        restore_widget("atlas_rmap_by_label")
        by_label = st.toggle("Colour documents by label", key="atlas_rmap_by_label",
                             help="Off: documents in grey, so the marks stand out.")
        keep_widgets("atlas_rmap_by_label")
    highlights = [Highlight("relevant", relevant, symbol="circle-open", size=17, colour=RELEVANT_COLOUR,
                            line_colour=RELEVANT_COLOUR, hover=[snippet(ctx.texts[i]) for i in relevant])]
    for i, mk in enumerate(marks):
        symbol, colour = METHOD_STYLES[i % len(METHOD_STYLES)]
        size = max(7, 13 - 2 * i)
        highlights.append(Highlight(f"{mk.method}: miss", mk.misses, symbol=f"{symbol}-open", size=size,
                                    colour=colour, line_colour=colour,
                                    hover=[snippet(ctx.texts[r]) for r in mk.misses]))
        highlights.append(Highlight(f"{mk.method}: hit", mk.hits, symbol=symbol, size=size, colour=colour,
                                    line_colour="#111111", hover=[snippet(ctx.texts[r]) for r in mk.hits]))
    query_row = rows.get(str(qid)) if labels_run else None
    placed = None
    if labels_run and query_row is not None:
        highlights.append(Highlight("query", [query_row], symbol="star", size=20, colour=QUERY_COLOUR,
                                    line_colour="#FFFFFF", hover=[snippet(ctx.texts[query_row])]))
        how = "The query is a document of this corpus: the ★ is its own place on the map."
    elif labels_run:
        how = "The query document is not in this corpus: it is not drawn."
    else:
        text = details.get("queries", {}).get(qid, "")
        try:
            placed = placed_query(ctx.ws.path, ctx.emb_id, ctx.proj_id, rid, str(qid), text, ctx.encode, ctx.X,
                                  ctx.coords)
            how = (f"The ★ is placed at the mean map position of the query's {PLACEMENT_K} nearest documents under "
                   f"{display_text(ctx.model)} (cosine in the embedding space; not a projection of the query "
                   "itself).")
        except UserError as exc:     # imported vectors without a query encoder
            how = f"The query is not drawn: {display_text(exc)}."
    spots = [(f"query {qid} (placed)", tuple(placed[0]), QUERY_COLOUR)] if placed is not None else []
    draw_map(ctx.coords, background_colour(ctx, by_label), key="atlas_rmap_map", texts=ctx.texts,
             labels=ctx.shown_labels, highlights=highlights, placed=spots, height=600,
             revision=ctx.revision(f"rmap-{rid}"), on_click=ctx.set_focus)
    st.caption(how + " Green rings: relevant documents; each method rings its top 10 in its own colour and shape "
                     "(thick: a hit, thin: a miss). Click a document to focus it.")


def _ranked_list(ctx: AtlasContext, rid: int, details: dict, method: str, qid: str, rows: dict[str, int]) -> None:
    ranked = ranked_rows(details, method, qid, rows)
    marks = ["✓" if r["relevant"] else "" for r in ranked]
    st.markdown(f"**{display_text(method)}** — nDCG@10 "
                f"{details.get('per_query', {}).get(method, {}).get(qid, 0.0):.3f} · {marks.count('✓')} of "
                f"{len(ranked)} relevant")
    if not ranked:
        st.caption("No stored ranking for this query.")
        return
    docs = details.get("docs", {})
    frame = pd.DataFrame({
        "rank": [r["rank"] for r in ranked],
        "✓": marks,
        "label": [None if r["row"] is None or ctx.shown_labels is None else str(ctx.shown_labels[r["row"]])
                  for r in ranked],
        "text": [short_text(ctx.texts[r["row"]] if r["row"] is not None else docs.get(r["doc_id"], ""), 200)
                 for r in ranked],
        "score": [r["score"] for r in ranked],
        "doc_id": [r["doc_id"] for r in ranked]})
    if ctx.shown_labels is None:
        frame = frame.drop(columns="label")
    key = f"atlas_rmap_list_{rid}_{method}_{qid}"
    row_of = [r["row"] for r in ranked]

    st.dataframe(frame, key=key, on_select=focus_on_pick(key, row_of, ctx.set_focus), selection_mode="single-row",
                 hide_index=True, width="stretch",
                 column_config={"rank": st.column_config.NumberColumn("rank", width="small"),
                                "✓": st.column_config.TextColumn("✓", width="small",
                                                                 help="✓: judged relevant to the query"),
                                "text": st.column_config.TextColumn("text", width="large"),
                                "score": st.column_config.NumberColumn("score", format="%.3f", width="small")})
