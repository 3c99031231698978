"""A comparison table of methods × metrics that marks each column's best value (★, bold) and the significance of
each method against a baseline (▲/▼ better/worse, † p < 0.05); and trade-off scatter plots of the same metrics."""
from __future__ import annotations

import math
from typing import Mapping

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

BEST = "★"
SIGNIFICANT = "†"
ALPHA = 0.05

RETRIEVAL_COLUMNS = {          # metric -> higher is better
    "ndcg@10": True, "recall@10": True, "recall@100": True, "mrr@10": True, "map@100": True,
    "ms_per_query": False, "index_bytes": False, "build_s": False,
}


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def best_marks(metrics: Mapping[str, Mapping[str, float]], higher_is_better: Mapping[str, bool]) -> dict[str, set[str]]:
    """{column: methods holding the best value of that column} (ties: all of them; columns with fewer than two
    numbers get no mark, since there is nothing to be best against)."""
    marks: dict[str, set[str]] = {}
    for col, higher in higher_is_better.items():
        values = {m: _number(vals.get(col)) for m, vals in metrics.items()}
        values = {m: v for m, v in values.items() if v is not None}
        if len(values) < 2:
            continue
        best = max(values.values()) if higher else min(values.values())
        marks[col] = {m for m, v in values.items() if math.isclose(v, best, rel_tol=1e-9, abs_tol=1e-12)}
    return marks


def format_bytes(n: float | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GB"


def _format(col: str, value: float | None) -> str:
    if value is None:
        return "—"
    if col == "index_bytes":
        return format_bytes(value)
    if col == "ms_per_query":
        return f"{value:.3f}" if value < 10 else f"{value:,.1f}"
    if col == "build_s":
        return f"{value:.2f}"
    return f"{value:.4f}"


def significance_mark(value: float | None, base: float | None, p_value: float | None, higher: bool) -> str:
    """▲ or ▼ for better or worse than the baseline, with † when p < ALPHA; '' when there is no test."""
    if value is None or base is None or p_value is None:
        return ""
    if math.isclose(value, base, rel_tol=1e-12, abs_tol=1e-12):
        return "="
    better = (value > base) == higher
    return ("▲" if better else "▼") + (SIGNIFICANT if p_value < ALPHA else "")


def metric_cells(metrics: Mapping[str, Mapping[str, float]], *, higher_is_better: Mapping[str, bool],
                 significance: Mapping[str, Mapping[str, float | None]] | None = None,
                 baseline: str | None = None) -> pd.DataFrame:
    """The table as text, one row per method: values formatted, the best of each column suffixed with ★, tested
    metrics with ▲/▼(†) against the baseline; the baseline's row is labelled."""
    marks = best_marks(metrics, higher_is_better)
    columns = [c for c in higher_is_better if any(c in vals for vals in metrics.values())]
    base_vals = metrics.get(baseline, {}) if baseline else {}
    rows = []
    for method, vals in metrics.items():
        row = {"method": f"{method} (baseline)" if method == baseline else method}
        for col in columns:
            value = _number(vals.get(col))
            cell = _format(col, value)
            if significance and method != baseline:
                p = (significance.get(method) or {}).get(col)
                if col in (significance.get(method) or {}):
                    sig = significance_mark(value, _number(base_vals.get(col)), p, higher_is_better[col])
                    cell += f" {sig}" if sig else ""
            if method in marks.get(col, set()):
                cell += f" {BEST}"
            row[col] = cell
        rows.append(row)
    return pd.DataFrame(rows, columns=["method", *columns])


def metric_table(metrics: dict, *, higher_is_better: dict[str, bool] | None = None,
                 significance: dict | None = None, baseline: str | None = None, key: str | None = None) -> None:
    """Render the comparison table (best values bold and ★) with a legend line."""
    higher_is_better = higher_is_better or RETRIEVAL_COLUMNS
    cells = metric_cells(metrics, higher_is_better=higher_is_better, significance=significance, baseline=baseline)
    marks = best_marks(metrics, higher_is_better)
    methods = list(metrics)

    def bold(frame: pd.DataFrame) -> pd.DataFrame:
        style = pd.DataFrame("", index=frame.index, columns=frame.columns)
        for col, best in marks.items():
            if col in style.columns:
                for i, m in enumerate(methods):
                    if m in best:
                        style.iloc[i, style.columns.get_loc(col)] = "font-weight: bold"
        return style

    st.dataframe(cells.style.apply(bold, axis=None), hide_index=True, width="stretch", key=key)
    legend = f"{BEST} best in its column (bold)"
    if significance:
        legend += (f" · ▲/▼ better/worse than the baseline {baseline!r}, {SIGNIFICANT} p < {ALPHA} "
                   "(paired two-sided t-test over queries, ranx)")
    st.caption(legend + " · ms/query: median of single-query searches · index size as held in memory")


def tradeoff_figure(metrics: Mapping[str, Mapping[str, float]], *, x: str, y: str = "ndcg@10",
                    x_title: str | None = None, y_title: str | None = None, log_x: bool = True,
                    baseline: str | None = None) -> go.Figure:
    """One labelled point per method: quality (y) against a cost (x, log scale)."""
    points = [(m, _number(v.get(x)), _number(v.get(y))) for m, v in metrics.items()]
    points = [(m, xv, yv) for m, xv, yv in points if xv is not None and yv is not None]
    if log_x:
        positive = [xv for _, xv, _ in points if xv > 0]
        floor = min(positive) / 2 if positive else 1e-3
        points = [(m, max(xv, floor), yv) for m, xv, yv in points]
    xs = [math.log10(p[1]) if log_x else p[1] for p in points]
    ys = [p[2] for p in points]
    labels, positions = point_labels([p[0] for p in points], xs, ys)
    fig = go.Figure(go.Scatter(
        x=[p[1] for p in points], y=ys, text=labels, customdata=[p[0] for p in points],
        mode="markers+text", textposition=positions, cliponaxis=False,
        marker=dict(size=12, symbol=["star" if p[0] == baseline else "circle" for p in points]),
        hovertemplate="%{customdata}<br>" + (x_title or x) + ": %{x:.4g}<br>" + (y_title or y)
        + ": %{y:.4f}<extra></extra>"))
    xaxis = dict(title=x_title or x, type="log" if log_x else "linear")
    if xs:
        pad = max(0.15 * (max(xs) - min(xs)), 0.1 if log_x else 1e-9)
        xaxis["range"] = [min(xs) - pad, max(xs) + pad]
    fig.update_layout(height=380, margin=dict(l=0, r=10, t=40, b=0), showlegend=False,
                      title=f"{y_title or y} vs {x_title or x}", xaxis=xaxis, yaxis=dict(title=y_title or y))
    return fig


def point_labels(names: list[str], xs: list[float], ys: list[float], *, near: float = 0.03,
                 crowded: float = 0.15) -> tuple[list[str], list[str]]:
    """Text labels and their positions for scatter points: methods lying (nearly) on top of each other share one
    label, on the first of them; a label whose point sits close beside an already labelled one goes below its
    point instead of above, so that names do not print over each other."""
    def span(v: list[float]) -> float:
        return (max(v) - min(v)) or 1.0

    sx, sy = span(xs), span(ys)
    labels, positions = [""] * len(names), ["top center"] * len(names)
    placed: list[int] = []
    for i in range(len(names)):
        dx = [abs(xs[i] - xs[j]) / sx for j in placed]
        dy = [abs(ys[i] - ys[j]) / sy for j in placed]
        home = next((j for j, a, b in zip(placed, dx, dy) if a < near and b < near), None)
        if home is not None:
            labels[home] += f", {names[i]}"
            continue
        taken = {positions[j] for j, a, b in zip(placed, dx, dy) if a < crowded and b < 2 * near}
        positions[i] = "bottom center" if "top center" in taken else "top center"
        labels[i] = names[i]
        placed.append(i)
    return labels, positions
