"""Atlas view "🚨 Why OOD" (issue 14, item 4): a stored OOD run's scores as a colour layer on this corpus's map, a
threshold linked to the score histogram and the confusion counts, and, for the focused document, why it scores
as it does: its nearest training documents, its nearest class means and every detector's reading.

The computations are in `embedlab.ood.explain`; this module reads the run through caches keyed by the database
path and the run id, and draws. Widget keys start with `atlas_oodx_`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from components.atlas_context import AtlasContext
from components.ood_plots import score_histogram, score_layer_figure, threshold_control
from components.state import focus_on_pick
from embedlab.errors import UserError
from embedlab.text_display import display_text, html_text, short_text

KEY = "atlas_oodx_"
TABLE_LIMIT = 50
K_NEAREST = 10


# --- cached reads ----------------------------------------------------------------------------------------------


@st.cache_data(max_entries=64, show_spinner=False)
def run_on_corpus(path: str, run_id: int, corpus_id: int, content_hash: str) -> dict[str, Any] | None:
    """What the view needs of a run to colour this corpus (None when the run tests none of its documents):
    its params, metrics, scores, truth and test labels, and the test positions and rows on this corpus."""
    from embedlab.ood.explain import run_corpora, rows_tested_on
    from storage import connect
    from storage.sessions import load_run

    conn = connect(path)
    try:
        run = load_run(conn, run_id)
        stored = run_corpora(conn, run)
        positions, rows = rows_tested_on(run, stored, corpus_id)
    finally:
        conn.close()
    d = run.get("details") or {}
    if not len(positions) or not d.get("scores"):
        return None
    return {"id": int(run["id"]), "params": run["params"], "metrics": run["metrics"], "created_at": run["created_at"],
            "scores": {m: np.asarray(v, dtype=np.float64) for m, v in d["scores"].items()},
            "is_ood": np.asarray(d.get("is_ood") or [], dtype=bool), "test_labels": d.get("test_labels"),
            "positions": positions, "rows": rows}


@st.cache_resource(max_entries=4, show_spinner=False)
def run_training(path: str, run_id: int):
    """The run's training set and test set rebuilt in its space, with the ID reference of the verdict (kept as a
    resource: the vectors are read-only and not copied per rerun)."""
    from embedlab.ood.explain import class_means, id_reference, load_run_training
    from storage import connect
    from storage.sessions import load_run

    conn = connect(path)
    try:
        run = load_run(conn, run_id)
        training = load_run_training(conn, run)
    finally:
        conn.close()
    _, means = class_means(training.vectors, training.labels)
    return training, id_reference(training, run["details"]["is_ood"], means)


@st.cache_data(max_entries=256, show_spinner=False)
def explanation(path: str, run_id: int, position: int):
    """`embedlab.ood.explain.explain` of one test document, with the training corpus and whether the rebuilt test
    set is the run's."""
    from embedlab.ood.explain import explain
    from storage import connect
    from storage.sessions import load_run

    training, reference = run_training(path, run_id)
    conn = connect(path)
    try:
        run = load_run(conn, run_id)
    finally:
        conn.close()
    return (explain(training, run, position, k=K_NEAREST, reference=reference), int(training.id_corpus.id),
            training.id_corpus.name, training.matches_run)


def ood_colour_layers(db: Any, path: str, session_id: int, corpus_id: int,
                      content_hash: str) -> dict[str, tuple[int, str]]:
    """The Atlas's "Colour by" choices from OOD runs: for every run of the session that tests documents of this
    corpus, its name -> (run id, its best detector by AUROC); `ood_colour_values` gives the values of one."""
    from storage.sessions import list_runs

    layers = {}
    for r in list_runs(db, session_id, "ood"):
        best = _best_detector_on(path, int(r["id"]), int(corpus_id), content_hash)
        if best is not None:
            layers[f"OOD score: run #{r['id']} · {best}"] = (int(r["id"]), best)
    return layers


@st.cache_data(max_entries=256, show_spinner=False)
def _best_detector_on(path: str, run_id: int, corpus_id: int, content_hash: str) -> str | None:
    """The run's best detector (AUROC) when it tests documents of this corpus, else None (a small cached answer:
    every Atlas rerun asks it for every OOD run of the session)."""
    brief = run_on_corpus(path, run_id, corpus_id, content_hash)
    if brief is None:
        return None
    return max(brief["scores"], key=lambda m: brief["metrics"].get(m, {}).get("auroc") or 0)


def ood_colour_values(path: str, run_id: int, method: str, corpus_id: int, content_hash: str,
                      n_docs: int) -> np.ndarray:
    """Detector `method`'s score of run `run_id` per document of the corpus, NaN where the run tests none."""
    brief = run_on_corpus(path, run_id, corpus_id, content_hash)
    values = np.full(n_docs, np.nan, dtype=np.float32)
    ok = brief["rows"] < n_docs
    values[brief["rows"][ok]] = brief["scores"][method][brief["positions"][ok]]
    return values


# --- the view --------------------------------------------------------------------------------------------------


def ood_explain_view(ctx: AtlasContext) -> None:
    from storage.sessions import list_runs

    runs = {r["id"]: r for r in list_runs(ctx.db, ctx.session_id, "ood")}
    briefs = {rid: run_on_corpus(ctx.db_path, int(rid), int(ctx.corpus.id), ctx.corpus.content_hash)
              for rid in runs}
    usable = [rid for rid, b in briefs.items() if b is not None]
    if not usable:
        st.caption(f"No OOD run tests documents of **{display_text(ctx.corpus.name)}** yet. On the OOD page, "
                   "pick this corpus as the in-distribution set and mark some of its labels as OOD (or test on a "
                   "held-out share), or pick it as the corpus to test on, then press Run comparison.")
        return

    def describe(rid: int) -> str:
        p = briefs[rid]["params"]
        what = {"holdout": "held-out documents", "corpus": f"vs {p.get('test_corpus', 'a corpus')}",
                "corpora": f"{p.get('id_test_corpus', '?')} vs {p.get('test_corpus', 'OOD labels')}"}
        ood = p.get("ood_labels") or []
        return (f"#{rid} · trained on {p.get('corpus', '?')} · {what.get(p.get('test'), p.get('test'))}"
                + (f" · OOD labels {', '.join(map(str, ood[:3]))}{'…' if len(ood) > 3 else ''}" if ood else "")
                + f" · {p.get('model', '?')} · {str(briefs[rid]['created_at'])[:16]}")

    top = st.columns([3, 2])
    run_id = top[0].selectbox("OOD run", usable, format_func=describe, key=f"{KEY}run",
                              help="Runs whose test set includes documents of this corpus, latest first.")
    brief = briefs[run_id]
    metrics = brief["metrics"]
    methods = sorted(brief["scores"], key=lambda m: -(metrics.get(m, {}).get("auroc") or 0))

    def with_auroc(m: str) -> str:
        a = metrics.get(m, {}).get("auroc")
        return f"{m} (AUROC {a:.3f})" if isinstance(a, (int, float)) else m

    method = top[1].selectbox("Detector", methods, format_func=with_auroc, key=f"{KEY}detector_{run_id}",
                              help="Ordered by AUROC (best first); the colours, threshold and counts follow it.")
    scores, is_ood = brief["scores"][method], brief["is_ood"]
    threshold, counts = threshold_control(scores, is_ood, method, key=f"{KEY}threshold_{run_id}_{method}")

    positions, rows = brief["positions"], brief["rows"]
    here = scores[positions]
    n_flagged_here = int((here >= threshold).sum())
    st.caption(f"Counts over the run's {len(scores):,} test documents; {len(positions):,} of them are documents of "
               f"this corpus, {n_flagged_here:,} flagged at this threshold (ringed in red on the map).")
    run_model = brief["params"].get("model")
    if run_model and run_model != ctx.model:
        st.caption(f"The run's space is {display_text(run_model)}; the map is drawn with {display_text(ctx.model)}. "
                   f"Scores and neighbours below are the run's ({display_text(run_model)}).")

    left, right = st.columns([3, 2])
    with left:
        if ctx.coords is None:
            st.info("No map of this corpus yet: compute it above to see the score layer.")
        else:
            hover = ctx.hover
            fig = score_layer_figure(ctx.coords, rows, here, is_ood[positions], threshold, hover=hover,
                                     focus=ctx.focus, uirevision=ctx.revision("ood_explain"))
            from components.atlas_map import atlas_map

            atlas_map(fig, key=f"{KEY}map", n_points=ctx.n, on_select=ctx.set_selection, on_click=ctx.set_focus,
                      hover_snippets=hover is not None, show_payload=False)
            st.caption("Click a point to focus it (explained below); box or lasso select to select documents.")
    with right:
        st.plotly_chart(score_histogram(scores, is_ood, threshold=threshold,
                                        title=f"{html_text(method)} scores, all test documents"),
                        width="stretch", key=f"{KEY}hist")

    st.subheader("Why is this OOD?")
    names = _label_names(ctx)
    where = {int(r): int(p) for p, r in zip(positions, rows)}
    position = where.get(ctx.focus) if ctx.focus is not None else None
    if position is None:
        if ctx.focus is None:
            st.caption("Focus a test document of the run (click a coloured point on the map, or a row below) to "
                       "see its nearest training documents, its nearest classes and every detector's reading.")
        else:
            st.caption(f"Document #{ctx.focus} is not a test document of run #{run_id} (it trained the detectors "
                       "or was left out): focus a coloured point, or a row below.")
        _flagged_table(ctx, brief, method, threshold, names)
        return
    _explain_panel(ctx, brief, method, threshold, position, names)
    with st.expander("Top flagged documents of this corpus"):
        _flagged_table(ctx, brief, method, threshold, names)


def _label_names(ctx: AtlasContext) -> dict[str, str]:
    """Raw label → the label as the Atlas names it (the user's label names for this corpus)."""
    if ctx.labels is None or ctx.shown_labels is None:
        return {}
    return {str(a): str(b) for a, b in zip(ctx.labels, ctx.shown_labels)}


def _shown(names: dict[str, str], label: Any) -> str:
    return "—" if label is None else names.get(str(label), str(label))


def _flagged_table(ctx: AtlasContext, brief: dict, method: str, threshold: float,
                   names: dict[str, str]) -> None:
    """This corpus's test documents flagged at the threshold, highest score first; a click focuses one."""
    positions, rows = brief["positions"], brief["rows"]
    scores, is_ood = brief["scores"][method][positions], brief["is_ood"][positions]
    labels = brief["test_labels"] or [None] * len(brief["is_ood"])
    order = [i for i in np.argsort(-scores, kind="stable") if scores[i] >= threshold][:TABLE_LIMIT]
    if not order:
        st.caption("No document of this corpus is flagged at this threshold.")
        return
    idxs = [int(rows[i]) for i in order]
    frame = pd.DataFrame({"doc": idxs, "score": [float(scores[i]) for i in order],
                          "truth": ["OOD" if is_ood[i] else "ID" for i in order],
                          "label": [_shown(names, labels[positions[i]]) for i in order],
                          "text": [short_text(ctx.texts[r], 160) for r in idxs]})
    key = f"{KEY}flagged_{brief['id']}_{method}"

    pick = focus_on_pick(key, idxs, ctx.set_focus)
    st.caption(f"Top flagged documents by {display_text(method)} ({len(order)} shown): click a row to focus it.")
    st.dataframe(frame, key=key, on_select=pick, selection_mode="single-row", hide_index=True, width="stretch",
                 column_config={"doc": st.column_config.NumberColumn("doc", format="%d", width="small"),
                                "score": st.column_config.NumberColumn("score", format="%.4g"),
                                "text": st.column_config.TextColumn("text", width="large")})


def _explain_panel(ctx: AtlasContext, brief: dict, method: str, threshold: float, position: int,
                   names: dict[str, str]) -> None:
    row = int(ctx.focus)
    score = float(brief["scores"][method][position])
    truth = "OOD" if brief["is_ood"][position] else "ID"
    labels = brief["test_labels"] or [None] * len(brief["is_ood"])
    state = "flagged" if score >= threshold else "accepted"
    st.markdown(f"**#{row}** · {display_text(ctx.doc_ids[row])} · tested as **{truth}** · label "
                f"**{display_text(_shown(names, labels[position]))}** · {display_text(method)} score **{score:.4g}**, "
                f"{state} at the threshold {threshold:.4g}")
    st.text(short_text(ctx.texts[row], 400))
    try:
        with st.spinner("Rebuilding the run's training set…"):
            found, train_corpus_id, train_corpus_name, matches = explanation(ctx.db_path, int(brief["id"]),
                                                                               int(position))
    except UserError as exc:
        st.warning(f"Cannot rebuild this run's training set: {display_text(exc)}")
        return
    if not matches:
        st.warning("The corpora of this run changed since it ran: its training set cannot be rebuilt exactly, so "
                   "the neighbours below may differ from what the detectors saw.")
    (st.warning if score >= threshold else st.info)(display_text(found.verdict))

    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Every detector of the run**")
        st.dataframe(pd.DataFrame([{"detector": r.detector, "AUROC": r.auroc, "score": r.score,
                                    "ID percentile": r.id_percentile, "FPR95 threshold": r.threshold,
                                    "flagged": "yes" if r.flagged else "no"} for r in found.readings]),
                     hide_index=True, width="stretch", key=f"{KEY}detectors",
                     column_config={"AUROC": st.column_config.NumberColumn(format="%.3f"),
                                    "score": st.column_config.NumberColumn(format="%.4g"),
                                    "ID percentile": st.column_config.NumberColumn(format="%.1f %%"),
                                    "FPR95 threshold": st.column_config.NumberColumn(format="%.4g")})
        st.caption("ID percentile: share of the run's ID test documents scoring at or below this one. Flagged: "
                   "score ≥ the detector's FPR95 threshold (95 % of ID test documents accepted).")
    with right:
        st.markdown("**Nearest class means**")
        if found.classes:
            st.dataframe(pd.DataFrame([{"rank": i + 1, "class": _shown(names, c) if train_corpus_id == ctx.corpus.id
                                        else c, "cosine distance": d} for i, (c, d) in enumerate(found.classes)]),
                         hide_index=True, width="stretch", key=f"{KEY}classes",
                         column_config={"cosine distance": st.column_config.NumberColumn(format="%.3f")})
            ref = found.reference
            if ref.class_distance is not None:
                st.caption(f"Class means of the L2-normalised training vectors, renormalised. 95 % of the run's "
                           f"{ref.n:,} ID test documents are within {ref.class_distance:.3f} of one.")
        else:
            st.caption("The training set has no labels, so no class means.")

    st.markdown(f"**{K_NEAREST} nearest training documents** (in {display_text(train_corpus_name)}, "
                f"{display_text(brief['params'].get('model', ctx.model))} space)")
    same = train_corpus_id == ctx.corpus.id
    neighbour_rows = [n["row"] for n in found.neighbours]
    if same:
        texts = [ctx.texts[r] for r in neighbour_rows]
    else:
        from storage.corpora import load_documents

        texts = [d["text"] for d in load_documents(ctx.db, train_corpus_id, neighbour_rows)]
    frame = pd.DataFrame({"rank": [n["rank"] for n in found.neighbours], "doc": neighbour_rows,
                          "label": [_shown(names, n["label"]) if same else ("—" if n["label"] is None else
                                                                          str(n["label"])) for n in found.neighbours],
                          "cosine": [n["cosine"] for n in found.neighbours],
                          "text": [short_text(t, 160) for t in texts]})
    key = f"{KEY}nearest_{brief['id']}_{row}"

    st.dataframe(frame, key=key, on_select=focus_on_pick(key, neighbour_rows, ctx.set_focus) if same else "ignore",
                 selection_mode="single-row",
                 hide_index=True, width="stretch",
                 column_config={"doc": st.column_config.NumberColumn("doc", format="%d", width="small"),
                                "cosine": st.column_config.NumberColumn("cosine", format="%.3f"),
                                "text": st.column_config.TextColumn("text", width="large")})
    st.caption(f"Reference: 95 % of ID test documents have a training document at cosine ≥ "
               f"{found.reference.top_similarity:.3f}." + (" Click a row to focus it." if same else ""))
