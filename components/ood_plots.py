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
SNIPPET_CHARS = 140


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


def hover_text(text: str | None, label: str | None, score: float, ood: bool) -> str:
    """One hover label: truth, label and score, then the snippet; everything from the document escaped."""
    text = " ".join((text or "").split())
    if len(text) > SNIPPET_CHARS:
        text = text[:SNIPPET_CHARS - 1] + "…"
    head = ("OOD" if ood else "ID") + (f" · {html_text(label)}" if label is not None else "")
    return f"<b>{head}</b> · score {score:.4g}<br>{html_text(text)}"


def score_colour_range(values: np.ndarray) -> tuple[float, float]:
    """The colour scale of OOD scores: their 2nd to 98th percentile (a few extreme scores do not wash out the rest)."""
    lo, hi = (np.quantile(values, [0.02, 0.98]) if len(values) else (0.0, 1.0))
    if hi <= lo:
        lo, hi = float(values.min(initial=0.0)), float(values.max(initial=1.0)) + 1e-9
    return lo, hi


def score_map_figure(coords: np.ndarray, test_rows: Sequence[int], scores: Sequence[float],
                     is_ood: Sequence[bool], hover: Sequence[str] | None = None) -> go.Figure:
    """The corpus map: documents outside the test set in grey, test documents coloured by OOD score
    (circles ID, diamonds OOD)."""
    coords = np.asarray(coords)[:, :2]
    rows = np.asarray(test_rows, dtype=np.int64)
    values = np.asarray(scores, dtype=float)
    flags = np.asarray(is_ood, dtype=bool)
    rest = np.setdiff1d(np.arange(len(coords)), rows)
    lo, hi = score_colour_range(values)
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=coords[rest, 0], y=coords[rest, 1], mode="markers", name="not tested",
                               marker=dict(size=4, color="#D0D0D0", opacity=0.5), hoverinfo="skip"))
    for flag, name, symbol in ((False, "ID test", "circle"), (True, "OOD test", "diamond")):
        sel = flags == flag
        if not sel.any():
            continue
        fig.add_trace(go.Scattergl(
            x=coords[rows[sel], 0], y=coords[rows[sel], 1], mode="markers", name=name,
            text=None if hover is None else [hover[i] for i in np.flatnonzero(sel)],
            hovertemplate="%{text}<extra></extra>" if hover is not None else f"{name}<extra></extra>",
            marker=dict(size=7, symbol=symbol, color=values[sel], colorscale="Viridis", cmin=lo, cmax=hi,
                        line=dict(width=0.5, color="#333333"),
                        colorbar=dict(title="OOD score", thickness=12) if not flag or not (~flags).any() else None,
                        showscale=not flag or not (~flags).any())))
    fig.update_layout(height=560, margin=dict(l=0, r=0, t=10, b=0), legend=dict(orientation="h", y=-0.05),
                      xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"))
    return fig


def document_table(rows: list[dict[str, Any]], *, key: str, empty: str = "None.") -> None:
    """Documents with their score, truth and label; texts shown literally."""
    if not rows:
        st.caption(empty)
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key=key,
                 column_config={"score": st.column_config.NumberColumn("score", format="%.4g"),
                                "text": st.column_config.TextColumn("text", width="large")})


FLAGGED_COLOUR = "#D62728"


def score_layer_figure(coords: np.ndarray, test_rows: Sequence[int], scores: Sequence[float],
                       is_ood: Sequence[bool], threshold: float, *, hover: Sequence[str] | None = None,
                       focus: int | None = None, uirevision: str | None = None, height: int = 560) -> go.Figure:
    """The Atlas map with an OOD score layer: documents outside the run's test set grey, test documents coloured
    by score (circles ID, diamonds OOD), those flagged at `threshold` (score ≥ threshold) ringed in red, the
    focused document a star. 2-D or 3-D like the map; every trace carries the document row as customdata (clicks
    focus it). `hover`: escaped text per document (row), or None."""
    coords = np.asarray(coords, dtype=np.float32)
    three_d = coords.shape[1] == 3
    rows = np.asarray(test_rows, dtype=np.int64)
    values = np.asarray(scores, dtype=float)
    flags = np.asarray(is_ood, dtype=bool)
    rest = np.setdiff1d(np.arange(len(coords)), rows)
    lo, hi = score_colour_range(values)
    trace = go.Scatter3d if three_d else go.Scattergl

    def points(idx: np.ndarray, **kwargs) -> go.Scatter3d | go.Scattergl:
        xyz = dict(x=coords[idx, 0], y=coords[idx, 1])
        if three_d:
            xyz["z"] = coords[idx, 2]
        text = None if hover is None else [hover[i] for i in idx]
        return trace(**xyz, customdata=idx.astype(np.int32), hovertext=text, mode="markers", **kwargs)

    def template(head: str, with_score: bool) -> str:
        score = " · score %{marker.color:.4g}" if with_score else ""
        body = "<br>%{hovertext}" if hover is not None else ""
        return f"<b>#%{{customdata}}</b> · {head}{score}{body}<extra></extra>"

    size = 3 if three_d else 5
    fig = go.Figure()
    fig.add_trace(points(rest, name="not tested", marker=dict(size=size, color="#C8C8C8", opacity=0.6),
                         hovertemplate=template("not tested", False)))
    for flag, name, symbol in ((False, "ID test", "circle"), (True, "OOD test", "diamond")):
        sel = flags == flag
        if not sel.any():
            continue
        fig.add_trace(points(rows[sel], name=name, hovertemplate=template(name, True),
                             marker=dict(size=size + 2, symbol=symbol, color=values[sel], coloraxis="coloraxis",
                                         line=dict(width=0.5, color="#333333"))))
    flagged = values >= threshold
    if flagged.any():
        order = np.flatnonzero(flagged)
        fig.add_trace(points(rows[order], name=f"flagged (score ≥ {threshold:.4g})",
                             hovertemplate=template("flagged", False),
                             marker=dict(size=size + 6, symbol="circle-open", color=FLAGGED_COLOUR,
                                         line=dict(width=1.5, color=FLAGGED_COLOUR))))
    if focus is not None and 0 <= focus < len(coords):
        fig.add_trace(points(np.asarray([focus]), name="focus", hovertemplate=template("focus", False),
                             marker=dict(size=(10 if three_d else 18), symbol="diamond" if three_d else "star",
                                         color="#111111", line=dict(width=1.5, color="#FFFFFF"))))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=10, b=0), uirevision=uirevision or "ood-layer",
                      coloraxis=dict(colorscale="Viridis", cmin=float(lo), cmax=float(hi),
                                     colorbar=dict(title="OOD score", thickness=12)),
                      legend=dict(orientation="h", x=0, y=-0.02, yanchor="top", font=dict(size=11)),
                      hovermode="closest")
    if three_d:
        axis = dict(showticklabels=False, title=dict(text=""))
        fig.update_layout(scene=dict(xaxis=axis, yaxis=axis, zaxis=axis))
    else:
        fig.update_layout(xaxis=dict(visible=False), yaxis=dict(visible=False))
    return fig


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
