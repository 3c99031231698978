"""Atlas view "Failure regions": where on the map a retrieval run fails. Each stored query counts in the cluster
holding most of its relevant documents; the view's map colours every cluster by the mean nDCG@10 of its queries
under one method (or by the difference between two), and a table lists the worst clusters; clicking one selects its
documents."""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from components.atlas_context import AtlasContext
from components.atlas_state import FAILURE_RUN_KEY
from components.retrieval_map_view import pick_run, run_methods
from components.map_view import draw_map
from components.state import keep_widgets, picked_row, restore_widget
from embedlab.map_colours import numeric_colour
from embedlab.map_retrieval import best_methods, cluster_scores, cluster_values, query_clusters, worst_clusters
from embedlab.text_display import display_text

MODES = ("mean nDCG@10", "difference B − A")
NO_QUERY = "no query / noise"
NO_QUERY_COLOUR = "#D0D0D0"
PICKED_KEY = "atlas_fail_picked"
RULE = ("A query counts in the cluster that holds most of its relevant documents found in the corpus (of those the "
        "run kept: at most 100 per query; noise left out, a tie goes to the lower cluster id); a query whose "
        "relevant documents are all noise or absent counts nowhere. Clusters follow the Clusters tab's settings.")


def cluster_digest(cluster_ids: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(cluster_ids, dtype=np.int64).tobytes(), digest_size=12).hexdigest()


@st.cache_data(max_entries=32, show_spinner="Aggregating nDCG@10 by cluster…")
def failure_table(path: str, run_id: int, created_at: str, corpus_id: int, emb_id: int, proj_id: int | None,
                  clusters: str, method: str, method_b: str | None, _details: Any, _rows: Any, _cluster_ids: Any,
                  _keywords: Any) -> tuple[dict[str, int], list[dict]]:
    """(cluster of each query, one row of scores per cluster) for a run, the clustering `clusters` (its digest)
    and one method (or two)."""
    assignment = query_clusters(_details, _rows, _cluster_ids)
    return assignment, cluster_scores(_details, assignment, _cluster_ids, _keywords, method, method_b)


def failure_regions_view(ctx: AtlasContext) -> None:
    chosen = pick_run(ctx, FAILURE_RUN_KEY)
    if chosen is None:
        return
    run, fit = chosen
    rid, details, metrics = run.id, run.details, run.metrics
    methods = run_methods(run)
    pair = best_methods(metrics, run.baseline, methods)
    mode_key, a_key, b_key = "atlas_fail_mode", f"atlas_fail_a_{rid}", f"atlas_fail_b_{rid}"
    restore_widget(mode_key, MODES[0])
    restore_widget(a_key, pair[0])
    restore_widget(b_key, pair[-1])
    if st.session_state.get(mode_key) not in MODES or len(methods) < 2:
        st.session_state[mode_key] = MODES[0]
    for key in (a_key, b_key):
        if st.session_state.get(key) not in methods:
            st.session_state.pop(key, None)
    c1, c2, c3 = st.columns([2, 2, 2], vertical_alignment="bottom")
    mode = c1.segmented_control("Colour clusters by", MODES if len(methods) > 1 else MODES[:1], key=mode_key,
                                required=True)
    difference = mode == MODES[1] and len(methods) > 1
    a = c2.selectbox("Method A" if difference else "Method", methods, key=a_key)
    b = c3.selectbox("Method B", methods, key=b_key) if difference else None
    keep_widgets(mode_key, a_key, b_key)

    cluster_ids, keywords = ctx.clusters()
    cluster_ids = np.asarray(cluster_ids)
    assignment, scores = failure_table(ctx.ws.path, rid, run.created_at, ctx.corpus.id, ctx.emb_id, ctx.proj_id,
                                       cluster_digest(cluster_ids), a, b, details, fit.rows, cluster_ids, keywords)
    n_queries = len(details.get("queries", {}))
    with_queries = [r for r in scores if r["queries"]]
    st.caption(f"{len(assignment):,} of {n_queries:,} queries counted in {len(with_queries):,} of {len(scores):,} "
               f"clusters. {RULE}")
    if not assignment:
        st.info("No query of this run has a relevant document in a cluster of this corpus: nothing to colour.")
        return
    means = _overall(details, assignment, a, b)
    m = st.columns(3 if difference else 2)
    m[0].metric("Queries counted", f"{len(assignment):,}")
    m[1].metric(f"mean nDCG@10 · {display_text(a)}", f"{means[0]:.3f}", help="over the queries counted in a cluster")
    if difference:
        m[2].metric(f"mean nDCG@10 · {display_text(b)}", f"{means[1]:.3f}",
                    delta=f"{means[1] - means[0]:+.3f} vs {display_text(a)}")

    digest = cluster_digest(cluster_ids)
    picked = st.session_state.get(PICKED_KEY)   # (clustering digest, cluster) picked in the table
    picked_rows = (np.flatnonzero(cluster_ids == picked[1]) if isinstance(picked, tuple) and picked[0] == digest
                   else np.zeros(0, dtype=np.int64))
    if ctx.coords is None:
        st.info("Compute the map first (the map above offers it): the clusters are coloured on it.")
    else:
        _draw_map(ctx, rid, cluster_ids, keywords, scores, a, b, difference, picked_rows)

    counts = [r["queries"] for r in with_queries]
    min_key = "atlas_fail_min_queries"
    restore_widget(min_key, int(min(3, max(counts))))
    st.session_state[min_key] = int(min(max(1, st.session_state[min_key]), max(counts)))
    t1, t2 = st.columns([2, 5], vertical_alignment="bottom")
    min_queries = t1.number_input("Clusters with at least this many queries", 1, max(counts), key=min_key)
    keep_widgets(min_key)
    table = worst_clusters(scores, difference=difference, min_queries=int(min_queries))
    t2.caption(f"**Worst clusters first** ({'where B falls furthest below A' if difference else 'lowest mean nDCG@10'}"
               f"): {len(table):,} clusters. Click a row to select its documents on the map.")
    _worst_table(ctx, rid, table, cluster_ids, a, b, difference)


def unpick(ctx: AtlasContext) -> None:
    """Forget the cluster picked in the table and clear the selection it made."""
    st.session_state.pop(PICKED_KEY, None)
    ctx.set_selection([])


def _overall(details: dict, assignment: dict[str, int], a: str, b: str | None) -> tuple[float, float]:
    per_query = details.get("per_query", {})
    qids = list(assignment)
    mean_a = float(np.mean([float(per_query.get(a, {}).get(q, 0.0)) for q in qids]))
    mean_b = float(np.mean([float(per_query.get(b, {}).get(q, 0.0)) for q in qids])) if b else 0.0
    return mean_a, mean_b


def _span(values: np.ndarray) -> tuple[float, float]:
    """A range centred on 0 that holds every difference (at least ±0.05)."""
    finite = values[np.isfinite(values)]
    span = max(0.05, float(np.abs(finite).max())) if finite.size else 1.0
    return -span, span


def _draw_map(ctx: AtlasContext, rid: int, cluster_ids: np.ndarray, keywords: dict[int, str], scores: list[dict],
              a: str, b: str | None, difference: bool, picked_rows: np.ndarray) -> None:
    values = cluster_values(cluster_ids, scores, difference=difference)
    name = f"nDCG@10 {b} − {a}" if difference else f"mean nDCG@10 · {a}"
    by_id = {r["cluster"]: r for r in scores}
    ids, groups = np.unique(cluster_ids, return_inverse=True)
    heads = [("noise" if c < 0 else f"cluster {c} · {keywords.get(c, '')} · "
              f"{by_id[c]['queries'] if c in by_id else 0} queries") for c in ids.tolist()]
    spec = numeric_colour(name, values)
    numeric = {"diverging": True, "value_range": _span(values)} if difference else {"value_range": (0.0, 1.0)}
    numeric["missing_name"] = NO_QUERY
    draw_map(ctx.coords, spec, key="atlas_fail_map", texts=ctx.texts, tags=(groups, heads), numeric=numeric, height=600,
             selected=picked_rows.tolist() if picked_rows.size else None, revision=ctx.revision(f"fail-{rid}"),
             on_click=ctx.set_focus)
    c1, c2 = st.columns([5, 1], vertical_alignment="center")
    c1.caption(("Red: clusters where B does worse than A, blue: better (B − A, centred on 0)" if difference else
                "Colour: the mean nDCG@10 of the queries counted in each cluster (0 to 1)")
               + "; grey: clusters without a query, and noise. Click a document to focus it.")
    if picked_rows.size:
        c2.button("Show all clusters", key="atlas_fail_unpick", on_click=unpick, args=(ctx,), width="stretch")


def _worst_table(ctx: AtlasContext, rid: int, table: list[dict], cluster_ids: np.ndarray, a: str, b: str | None,
                 difference: bool) -> None:
    frame = pd.DataFrame({
        "cluster": [r["cluster"] for r in table], "keywords": [r["keywords"] for r in table],
        "size": [r["size"] for r in table], "queries": [r["queries"] for r in table],
        f"nDCG@10 {a}": [r["mean_ndcg"] for r in table]})
    config = {"cluster": st.column_config.NumberColumn("cluster", format="%d", width="small"),
              "keywords": st.column_config.TextColumn("keywords", width="medium"),
              "size": st.column_config.NumberColumn("size (documents)", format="%d"),
              "queries": st.column_config.NumberColumn("queries", format="%d"),
              f"nDCG@10 {a}": st.column_config.ProgressColumn(f"mean nDCG@10 · {a}", min_value=0.0, max_value=1.0,
                                                              format="%.3f")}
    if difference:
        frame[f"nDCG@10 {b}"] = [r["mean_ndcg_b"] for r in table]
        frame["difference"] = [r["difference"] for r in table]
        config[f"nDCG@10 {b}"] = st.column_config.ProgressColumn(f"mean nDCG@10 · {b}", min_value=0.0,
                                                                 max_value=1.0, format="%.3f")
        config["difference"] = st.column_config.NumberColumn("B − A", format="%+.3f")
    order = ["cluster", "keywords", "size", "queries"] + (["difference"] if difference else []) + \
        [c for c in frame.columns if c.startswith("nDCG@10")]
    key = f"atlas_fail_table_{rid}_{a}_{b}_{len(table)}_{cluster_digest(cluster_ids)}"
    ids = [r["cluster"] for r in table]

    def pick() -> None:
        row = picked_row(key)
        if row is not None:
            st.session_state[PICKED_KEY] = (cluster_digest(cluster_ids), ids[row])
            ctx.set_selection(np.flatnonzero(cluster_ids == ids[row]).tolist())
        else:
            unpick(ctx)

    st.dataframe(frame, key=key, on_select=pick, selection_mode="single-row", hide_index=True, width="stretch",
                 height=min(420, 38 + 35 * max(1, len(frame))), column_config=config, column_order=order)
