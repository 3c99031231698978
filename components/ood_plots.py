"""Widgets and figures of the OOD page: the results table, ROC curves, score histograms, the score map and the
document lists. Document text reaches Plotly only HTML-escaped, and tables only through st.dataframe."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from components.metric_table import bold_best, table_frame
from embedlab.ood.run_reading import confusion_at, id_quantile_threshold
from embedlab.run_tables import BEST, ood_table
from embedlab.text_display import display_text, html_text

ID_COLOUR, OOD_COLOUR = "#4E79A7", "#E15759"


def results_frame(metrics: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per method, by AUROC: the five metrics as text with the best of each column starred, and AUROC's
    bootstrap interval (`embedlab.run_tables.ood_table`, as in the report)."""
    return table_frame(ood_table(metrics))


def results_table(metrics: dict[str, dict[str, Any]], *, key: str | None = None) -> None:
    """The metrics of a run, the best value per column starred and bold, AUROC with its 95 % bootstrap interval."""
    table = ood_table(metrics)
    if not table.rows:
        st.caption("This run has no metrics.")
        return
    st.dataframe(table_frame(table).style.apply(bold_best(table), axis=None), hide_index=True, width="stretch",
                 key=key)
    st.caption(f"{BEST} best in its column. FPR95: OOD accepted when 95 % of ID is accepted (Hendrycks, KNN); "
               "FPR95 OpenOOD: ID flagged when 95 % of OOD is caught. The AUROC interval is a stratified "
               "bootstrap over the test set.")


def roc_figure(roc: dict[str, dict[str, list[float]]], metrics: dict[str, dict[str, Any]], *,
               highlight: str | None = None, point: tuple[float, float] | None = None) -> go.Figure:
    """ROC curves of every method overlaid (OOD positive); the highlighted one thicker, with the threshold's
    operating point."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="#AAAAAA", width=1),
                             name="chance", hoverinfo="skip", showlegend=False))
    order = sorted(roc, key=lambda m: -(metrics.get(m, {}).get("auroc") or 0))
    for method in order:
        auroc = metrics.get(method, {}).get("auroc")
        shown = html_text(method)
        name = f"{shown} ({auroc:.3f})" if isinstance(auroc, (int, float)) else shown
        fig.add_trace(go.Scatter(x=roc[method]["fpr"], y=roc[method]["tpr"], mode="lines", name=name,
                                 line=dict(width=3.5 if method == highlight else 1.6),
                                 hovertemplate=f"{shown}<br>FPR %{{x:.3f}}<br>TPR %{{y:.3f}}<extra></extra>"))
    if point is not None:
        fig.add_trace(go.Scatter(x=[point[0]], y=[point[1]], mode="markers", name="threshold",
                                 marker=dict(size=12, color="black", symbol="x"),
                                 hovertemplate="threshold: FPR %{x:.3f}, TPR %{y:.3f}<extra></extra>"))
    fig.update_layout(height=380, margin=dict(l=0, r=0, t=30, b=0), title="ROC (OOD positive)",
                      xaxis=dict(title="FPR (ID flagged)", range=[0, 1]),
                      yaxis=dict(title="TPR (OOD caught)", range=[0, 1.02]), legend=dict(font=dict(size=11)))
    return fig


def _histogram_traces(scores: np.ndarray, is_ood: np.ndarray, *, show_legend: bool = True,
                      bins: int = 40) -> list[go.Histogram]:
    lo, hi = float(np.min(scores)), float(np.max(scores))
    size = (hi - lo) / bins if hi > lo else 1.0
    xbins = dict(start=lo, end=hi + size, size=size)
    return [go.Histogram(x=scores[~is_ood], name="ID", marker_color=ID_COLOUR, opacity=0.6, xbins=xbins,
                         histnorm="probability", showlegend=show_legend, legendgroup="ID"),
            go.Histogram(x=scores[is_ood], name="OOD", marker_color=OOD_COLOUR, opacity=0.6, xbins=xbins,
                         histnorm="probability", showlegend=show_legend, legendgroup="OOD")]


def score_histogram(scores: Sequence[float], is_ood: Sequence[bool], *, threshold: float | None = None,
                    title: str = "") -> go.Figure:
    """ID and OOD score distributions overlaid (each normalised to its own count), with the threshold; `title` is
    Plotly text (escape data in it with `html_text`)."""
    scores, is_ood = np.asarray(scores, dtype=float), np.asarray(is_ood, dtype=bool)
    fig = go.Figure(_histogram_traces(scores, is_ood))
    if threshold is not None:
        fig.add_vline(x=threshold, line=dict(color="black", dash="dash", width=1.5))
    fig.update_layout(barmode="overlay", height=380, margin=dict(l=0, r=0, t=30, b=0), title=title,
                      xaxis_title="score (higher = more OOD)", yaxis_title="share of its group")
    return fig


def histogram_grid(scores: dict[str, Sequence[float]], is_ood: Sequence[bool], *, columns: int = 3) -> go.Figure:
    """One small ID-vs-OOD histogram per method."""
    names = list(scores)
    rows = max(1, math.ceil(len(names) / columns))
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=[html_text(n) for n in names],
                        vertical_spacing=0.12 if rows > 1 else 0.2)
    flags = np.asarray(is_ood, dtype=bool)
    for i, name in enumerate(names):
        for trace in _histogram_traces(np.asarray(scores[name], dtype=float), flags, show_legend=i == 0):
            fig.add_trace(trace, row=i // columns + 1, col=i % columns + 1)
    fig.update_layout(barmode="overlay", height=230 * rows, margin=dict(l=0, r=0, t=40, b=0))
    return fig


def score_colour_range(values: np.ndarray) -> tuple[float, float]:
    """The colour scale of OOD scores: their 2nd to 98th percentile (a few extreme scores do not wash out the rest)."""
    lo, hi = (np.quantile(values, [0.02, 0.98]) if len(values) else (0.0, 1.0))
    if hi <= lo:
        lo, hi = float(values.min(initial=0.0)), float(values.max(initial=1.0)) + 1e-9
    return lo, hi


def document_table(rows: list[dict[str, Any]], *, key: str, empty: str = "None.") -> None:
    """Documents with their score, truth and label; texts shown literally."""
    if not rows:
        st.caption(empty)
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key=key,
                 column_config={"score": st.column_config.NumberColumn("score", format="%.4g"),
                                "text": st.column_config.TextColumn("text", width="large")})


FLAGGED_COLOUR = "#D62728"


def threshold_control(scores: np.ndarray, is_ood: np.ndarray, method: str, *, key: str) -> tuple[float, dict]:
    """The threshold slider (starting at the FPR95 point) and the confusion counts at it, as six metrics;
    returns (threshold, counts)."""
    lo, hi = float(scores.min()), float(scores.max())
    default = min(max(id_quantile_threshold(scores, is_ood), lo), hi)
    if hi > lo:
        threshold = st.slider("Threshold: flag as OOD when score ≥", lo, hi, default, (hi - lo) / 500,
                              format="%.4g", key=key,
                              help="Starts where 95 % of ID documents are accepted (the FPR95 operating point).")
    else:
        threshold = lo
        st.caption(f"Every test document has the same {display_text(method)} score ({lo:.4g}).")
    counts = confusion_at(scores, is_ood, threshold)
    cells = st.columns(6)
    cells[0].metric("OOD caught (TPR)", f"{counts['tpr']:.1%}")
    cells[1].metric("ID flagged (FPR)", f"{counts['fpr']:.1%}")
    cells[2].metric("TP · OOD flagged", f"{counts['tp']:,}")
    cells[3].metric("FP · ID flagged", f"{counts['fp']:,}")
    cells[4].metric("TN · ID accepted", f"{counts['tn']:,}")
    cells[5].metric("FN · OOD missed", f"{counts['fn']:,}")
    return threshold, counts
