"""A retrieval run's comparison table (the cells are `embedlab.run_tables.retrieval_table`'s, as in the report: the
best of each ranked column bold and ★, significance against the baseline ▲/▼ and †), and trade-off scatter plots
of the same metrics."""
from __future__ import annotations

import math
from typing import Mapping

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from embedlab.formatting import as_number
from embedlab.metric_directions import RETRIEVAL
from embedlab.run_tables import MetricTable, legend
from embedlab.run_tables import metric_table as table_of
from embedlab.text_display import display_text, html_text


def table_frame(table: MetricTable) -> pd.DataFrame:
    """An engine table as a DataFrame (one row per method)."""
    return pd.DataFrame(table.rows, columns=table.columns)


def bold_best(table: MetricTable):
    """A pandas Styler function making the starred cells of `table` bold."""
    def style(frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame("", index=frame.index, columns=frame.columns)
        for r, c in table.best:
            out.iloc[r, c] = "font-weight: bold"
        return out
    return style


def metric_cells(metrics: Mapping[str, Mapping[str, float]], *,
                 higher_is_better: Mapping[str, bool | None] = RETRIEVAL,
                 significance: Mapping[str, Mapping[str, float | None]] | None = None,
                 baseline: str | None = None) -> pd.DataFrame:
    """The table as text, one row per method (see `embedlab.run_tables.metric_table`)."""
    return table_frame(table_of(metrics, higher_is_better, significance=significance, baseline=baseline))


def metric_table(metrics: dict, *, higher_is_better: Mapping[str, bool | None] = RETRIEVAL,
                 significance: dict | None = None, baseline: str | None = None, key: str | None = None) -> None:
    """Render the comparison table (best values bold and ★) with a legend line."""
    table = table_of(metrics, higher_is_better, significance=significance, baseline=baseline)
    st.dataframe(table_frame(table).style.apply(bold_best(table), axis=None), hide_index=True, width="stretch",
                 key=key)
    st.caption(display_text(legend(significance=bool(significance), baseline=baseline)))


# one colour per method, by its position in the run (the same in both trade-off plots and the router panel)
METHOD_COLOURS = ["#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1", "#FF9DA7",
                  "#9C755F", "#79706E", "#1F77B4", "#D62728"]
# the pixel geometry that label placement assumes: a plot in half of the page's width at 1280-1440 px (a wider plot
# only spreads the points further apart; label offsets are in pixels)
PLOT_HEIGHT = 420
PLOT_MARGIN = dict(l=60, r=20, t=44, b=50)
ASSUMED_PLOT_WIDTH = 380
CHAR_PX, LINE_PX, MARKER_PX = 6.6, 15.0, 7.0


def method_colours(names) -> dict[str, str]:
    return {n: METHOD_COLOURS[i % len(METHOD_COLOURS)] for i, n in enumerate(names)}


def tradeoff_figure(metrics: Mapping[str, Mapping[str, float]], *, x: str, y: str = "ndcg@10",
                    x_title: str | None = None, y_title: str | None = None, log_x: bool = True,
                    baseline: str | None = None) -> go.Figure:
    """One point per method, quality (y) against a cost (x, log scale), each point in its method's colour and
    named by a label placed where it overlaps no other label or point (`place_labels`), joined to its point by a
    thin line when it had to move away; methods on (nearly) the same spot share one label."""
    colours = method_colours(metrics)
    points = [(m, as_number(v.get(x)), as_number(v.get(y))) for m, v in metrics.items()]
    points = [(m, xv, yv) for m, xv, yv in points if xv is not None and yv is not None]
    if log_x:
        positive = [xv for _, xv, _ in points if xv > 0]
        floor = min(positive) / 2 if positive else 1e-3
        points = [(m, max(xv, floor), yv) for m, xv, yv in points]
    names = [p[0] for p in points]
    xs = [math.log10(p[1]) if log_x else p[1] for p in points]
    ys = [p[2] for p in points]
    xaxis = dict(title=x_title or x, type="log" if log_x else "linear")
    yaxis = dict(title=y_title or y)
    fig = go.Figure()
    if points:
        x_range = _padded(xs, 0.12, 0.1 if log_x else 1e-9)
        y_range = _padded(ys, 0.16, 0.02)
        xaxis["range"], yaxis["range"] = x_range, y_range
        plot_w = ASSUMED_PLOT_WIDTH
        plot_h = PLOT_HEIGHT - PLOT_MARGIN["t"] - PLOT_MARGIN["b"]
        px = [(v - x_range[0]) / (x_range[1] - x_range[0]) * plot_w for v in xs]
        py = [(v - y_range[0]) / (y_range[1] - y_range[0]) * plot_h for v in ys]
        groups, offsets = place_labels(names, px, py, width=plot_w, height=plot_h)
        for m, xv, yv in points:
            fig.add_trace(go.Scatter(
                x=[xv], y=[yv], mode="markers", name=html_text(m), customdata=[html_text(m)],
                marker=dict(size=16 if m == baseline else 12, color=colours[m], symbol="star" if m == baseline
                            else "circle", line=dict(width=1, color="white")),
                hovertemplate="<b>%{customdata}</b>" + (" (baseline)" if m == baseline else "") + "<br>"
                + (x_title or x) + ": %{x:.4g}<br>" + (y_title or y) + ": %{y:.4f}<extra></extra>"))
        for members, offset in zip(groups, offsets):
            first = members[0]
            text = label_text([names[i] for i in members], colours)
            (dx, dy), moved = offset
            note = dict(x=xs[first], y=ys[first], text=text, font=dict(size=11, color="#31333F"),
                        bgcolor="rgba(255,255,255,0.85)", borderpad=1)
            if moved:
                note.update(showarrow=True, ax=dx, ay=-dy, arrowhead=0, arrowwidth=1,
                            arrowcolor=colours[names[first]], standoff=MARKER_PX)
            else:
                note.update(showarrow=False, xshift=dx, yshift=dy)
            fig.add_annotation(**note)
    fig.update_layout(height=PLOT_HEIGHT, margin=PLOT_MARGIN, showlegend=False,
                      title=f"{y_title or y} vs {x_title or x}", xaxis=xaxis, yaxis=yaxis)
    return fig


def _padded(values: list[float], share: float, least: float) -> list[float]:
    lo, hi = min(values), max(values)
    pad = max(share * (hi - lo), least)
    return [lo - pad, hi + pad]


def label_text(names: list[str], colours: Mapping[str, str] | None = None) -> str:
    """Names sharing one label, at most two a line, each after a dot in its method's colour (with `colours`), as
    Plotly text (names escaped)."""
    def one(name: str) -> str:
        shown = html_text(name)
        return f"<span style='color:{colours[name]}'>●</span> {shown}" if colours and name in colours else shown

    return "<br>".join(", ".join(one(n) for n in names[i:i + 2]) for i in range(0, len(names), 2))


def label_size(names: list[str]) -> tuple[float, float]:
    """Width and height in pixels of a label naming `names` (with their colour dots)."""
    lines = [", ".join(f"● {n}" for n in names[i:i + 2]) for i in range(0, len(names), 2)]
    return max(len(line) for line in lines) * CHAR_PX + 6, len(lines) * LINE_PX + 2


def place_labels(names: list[str], px: list[float], py: list[float], *, width: float, height: float,
                 together: float = MARKER_PX * 1.2) -> tuple[list[list[int]], list[tuple[tuple[float, float], bool]]]:
    """Where to print the names of scatter points (pixel coordinates, y up) so that no label covers another label
    or a point: points closer than `together` share one label (groups of indices); each group's label goes to
    the first free spot of a ring of candidates around its point, tried nearest first (above, below, right, left,
    then the diagonals, then further out). Crowded groups are placed first. Returns the groups and, per group,
    the label centre's offset from its point and whether it moved off the point's side (then a leader line
    joins them)."""
    groups: list[list[int]] = []
    for i in range(len(names)):
        home = next((g for g in groups if math.hypot(px[g[0]] - px[i], py[g[0]] - py[i]) < together), None)
        if home is None:
            groups.append([i])
        else:
            home.append(i)
    def crowd(g: list[int]) -> int:
        return sum(math.hypot(px[g[0]] - px[j], py[g[0]] - py[j]) < 90 for j in range(len(names)))

    markers = [(px[i] - MARKER_PX, py[i] - MARKER_PX, px[i] + MARKER_PX, py[i] + MARKER_PX) for i in range(len(names))]
    placed: list[tuple[float, float, float, float]] = []
    offsets: list[tuple[tuple[float, float], bool] | None] = [None] * len(groups)
    for gi in sorted(range(len(groups)), key=lambda g: -crowd(groups[g])):
        i = groups[gi][0]
        w, h = label_size([names[j] for j in groups[gi]])
        best, best_cost = None, math.inf
        for ring, (dx, dy) in _candidates(w, h):
            cx, cy = px[i] + dx, py[i] + dy
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
            cost = sum(_overlap(box, b) for b in placed) * 4 + sum(_overlap(box, m) for m in markers)
            cost += _outside(box, width, height) * 2
            cost += ring * 1e-3 + math.hypot(dx, dy) * 1e-6
            if cost < best_cost:     # off to a side or a corner: a leader line says whose label it is
                best, best_cost = ((dx, dy), ring > 0 or (dx != 0 and dy != 0), box), cost
            if cost < 1:                       # free: the nearest free spot wins
                break
        (dx, dy), moved, box = best
        placed.append(box)
        offsets[gi] = ((dx, dy), moved)
    return groups, offsets  # type: ignore[return-value]


def _candidates(w: float, h: float):
    """(ring, (dx, dy)) label-centre offsets around a point, nearest ring first."""
    gap = MARKER_PX + 3
    for ring, extra in enumerate((0, 14, 28, 44, 62, 84, 110)):
        yield ring, (0.0, gap + h / 2 + extra)                         # above
        yield ring, (0.0, -(gap + h / 2 + extra))                      # below
        yield ring, (gap + w / 2 + extra, 0.0)                         # right
        yield ring, (-(gap + w / 2 + extra), 0.0)                      # left
        for sx in (1, -1):
            for sy in (1, -1):
                yield ring, (sx * (w / 2 + 2 + extra * 0.7), sy * (gap + h / 2 + extra * 0.7))


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _outside(box: tuple[float, float, float, float], width: float, height: float) -> float:
    """Area of a label box beyond the plot (a little room is allowed above and to the sides)."""
    x0, y0, x1, y1 = box
    inside = _overlap(box, (-25.0, 0.0, width + 15.0, height + 20.0))
    return (x1 - x0) * (y1 - y0) - inside
