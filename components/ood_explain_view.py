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
from components.atlas_state import OOD_RUN_KEY, fall_back, ood_detector_key, settle_run
from components.data import ood_brief, ood_explanation
from components.map_view import draw_map
from components.ood_plots import FLAGGED_COLOUR, score_colour_range, score_histogram, threshold_control
from components.state import focus_on_pick
from embedlab.errors import UserError
from embedlab.map_colours import numeric_colour
from embedlab.map_figure import Highlight
from embedlab.text_display import display_text, html_text, short_text

KEY = "atlas_oodx_"
MAX_RINGS = 2_000      # flagged documents ringed on the map; above, the others are faded instead
TABLE_LIMIT = 50
K_NEAREST = 10


# --- the view --------------------------------------------------------------------------------------------------


def ood_explain_view(ctx: AtlasContext) -> None:
    runs = {r.id: r for r in ctx.ws.runs(ctx.session_id, "ood")}
    briefs = {rid: ood_brief(run, ctx.corpus) for rid, run in runs.items()}
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
    settle_run(OOD_RUN_KEY, usable, ctx.corpus)
    run_id = top[0].selectbox("OOD run", usable, format_func=describe, key=OOD_RUN_KEY,
                              help="Runs whose test set includes documents of this corpus, latest first.")
    brief = briefs[run_id]
    metrics = brief["metrics"]
    methods = sorted(brief["scores"], key=lambda m: -(metrics.get(m, {}).get("auroc") or 0))

    def with_auroc(m: str) -> str:
        a = metrics.get(m, {}).get("auroc")
        return f"{m} (AUROC {a:.3f})" if isinstance(a, (int, float)) else m

    fall_back(ood_detector_key(run_id), methods,
              lambda old, new: f"Run #{run_id} has no detector {old}: showing {new}.")
    method = top[1].selectbox("Detector", methods, format_func=with_auroc, key=ood_detector_key(run_id),
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
            score_map(ctx, rows, here, is_ood[positions], threshold, method)
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
            found, train_corpus_id, train_corpus_name, matches = ood_explanation(
                brief["id"], brief["created_at"], int(position), K_NEAREST)
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
                st.caption(f"Class means of the L2-normalised training vectors, renormalised. 95 % of "
                           f"{ref.population} are within {ref.class_distance:.3f} of one.")
        else:
            st.caption("The training set has no labels, so no class means.")

    st.markdown(f"**{K_NEAREST} nearest training documents** (in {display_text(train_corpus_name)}, "
                f"{display_text(brief['params'].get('model', ctx.model))} space)")
    same = train_corpus_id == ctx.corpus.id
    neighbour_rows = [n["row"] for n in found.neighbours]
    if same:
        texts = [ctx.texts[r] for r in neighbour_rows]
    else:
        texts = [d["text"] for d in ctx.ws.documents(train_corpus_id, neighbour_rows)]
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


def score_map(ctx: AtlasContext, rows: np.ndarray, scores: np.ndarray, is_ood: np.ndarray, threshold: float,
              method: str) -> None:
    """The map coloured by the detector's score on the run's test documents (the rest grey: not tested), the
    flagged ones (score ≥ threshold) ringed in red, or, when there are too many to ring, the rest faded."""
    rows = np.asarray(rows, dtype=np.int64)
    values = np.full(ctx.n, np.nan)
    values[rows] = scores
    flagged = rows[np.asarray(scores) >= threshold]
    kind = np.zeros(ctx.n, dtype=np.uint16)                               # 0 not tested, 1 ID test, 2 OOD test
    kind[rows] = np.where(np.asarray(is_ood, dtype=bool), 2, 1)
    ring = len(flagged) <= MAX_RINGS
    highlights = [Highlight(f"flagged (score ≥ {threshold:.4g})", flagged.tolist(), symbol="circle-open",
                            colour=FLAGGED_COLOUR)] if ring and len(flagged) else []
    if ctx.focus is not None:
        highlights.append(Highlight("focus", [int(ctx.focus)], symbol="star"))
    draw_map(ctx.coords, numeric_colour(f"{method} score", values), key=f"{KEY}map", texts=ctx.texts,
             tags=(kind, ["not tested", "ID test", "OOD test"]),
             numeric={"value_range": score_colour_range(scores), "missing_name": "not tested"},
             selected=None if ring else flagged.tolist(), highlights=highlights, height=560,
             revision=ctx.revision("ood_explain"), on_select=ctx.set_selection, on_click=ctx.set_focus)
    if not ring:
        st.caption(f"{len(flagged):,} flagged documents: drawn in full colour, the rest faded.")
