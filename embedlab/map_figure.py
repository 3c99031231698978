"""The Atlas map as a Plotly figure, built for 100k documents without sampling, and what it costs to send.

Coordinates go out as float32 typed arrays (plotly serialises them as base64 `bdata`), `customdata` is the int32
document index, and per-point hover text is sent only up to HOVER_TEXT_MAX_POINTS documents. Every piece of
document text that reaches Plotly is escaped with `embedlab.text_display.html_text` (see `hover_texts`), because
Plotly renders a subset of HTML in hover labels and legends; names are escaped here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from embedlab.map_colours import ColourSpec, fold_categories
from embedlab.text_display import html_text

if TYPE_CHECKING:
    import plotly.graph_objects as go

HOVER_TEXT_MAX_POINTS = 20_000
UNSELECTED_COLOUR = "#C8C8C8"
UNSELECTED_OPACITY = 0.15
NO_VALUE_COLOUR = "#D0D0D0"        # documents without a value on a numeric colour (NaN)
NO_VALUE = object()                # the split's marker for them
# marker symbols that Scatter3d can draw; others fall back to a diamond
_SYMBOLS_3D = {"circle", "circle-open", "cross", "diamond", "diamond-open", "square", "square-open", "x"}


@dataclass(frozen=True)
class Highlight:
    """Documents drawn on top of the map with their own marker (search hits, the focus, its neighbours)."""
    name: str
    indices: Sequence[int]
    symbol: str = "diamond"
    size: int = 11
    colour: str = "#111111"
    line_colour: str = "#FFFFFF"
    hover: Sequence[str] | None = None  # escaped text per index (few points, so always affordable)


def focus_window(coords: np.ndarray, indices: Sequence[int], *, pad: float = 0.25,
                 min_span: float = 0.12) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Axis ranges ((x0, x1), (y0, y1)) framing `indices` on a 2-D map: their bounding box, padded by `pad` of
    its size and at least `min_span` of the whole map's extent wide and high. None for 3-D or no indices.

    Streamlit redraws a chart whose figure changed from scratch (the user's zoom is lost), so after a
    click the page frames the focus and its neighbourhood instead of jumping back to the whole map."""
    coords = np.asarray(coords)
    idx = np.asarray(list(indices), dtype=np.int64)
    if coords.ndim != 2 or coords.shape[1] != 2 or idx.size == 0:
        return None
    full_lo, full_hi = coords.min(axis=0).astype(float), coords.max(axis=0).astype(float)
    lo, hi = coords[idx].min(axis=0).astype(float), coords[idx].max(axis=0).astype(float)
    centre, half = (lo + hi) / 2, (hi - lo) / 2 * (1 + pad)
    half = np.maximum(half, (full_hi - full_lo) * min_span / 2)
    half = np.maximum(half, 1e-6)
    half[:] = half.max()  # square window: the map keeps its aspect
    return (float(centre[0] - half[0]), float(centre[0] + half[0])), (float(centre[1] - half[1]),
                                                                       float(centre[1] + half[1]))


def map_revision(*parts: Any) -> str:
    """Plotly's `uirevision` of a map: constant for one corpus, model and map (pass their ids), so updates of
    colours, highlights or selection keep the user's view, and new when any of them changes.

    Note: Streamlit (1.67) derives a chart's element id from its whole figure, so a figure that changed is
    mounted as a new chart and the view resets whatever the uirevision; only a figure identical to the one
    on screen keeps the element (and so the zoom). See pages/atlas.py for how the page keeps the figure
    identical where it can."""
    return "map:" + ":".join(str(p) for p in parts)


def robust_ranges(coords: np.ndarray, *, lower: float = 0.5, upper: float = 99.5, margin: float = 0.08,
                  min_gain: float = 1.5) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Axis ranges ((x0, x1), (y0, y1)) that frame the bulk of a 2-D map (the `lower`-`upper` percentiles,
    padded by `margin` of their span on each side) when a few outliers would otherwise squeeze it into a blob
    (a TF-IDF map, say): None unless framing the bulk enlarges it at least `min_gain` times on some axis.
    The outliers stay on the map: zooming out or Plotly's autoscale shows them."""
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 2 or coords.shape[0] < 20:
        return None
    finite = coords[np.isfinite(coords).all(axis=1)]
    if finite.shape[0] < 20:
        return None
    lo, hi = np.percentile(finite, [lower, upper], axis=0)
    span = np.maximum(hi - lo, 1e-9)
    lo, hi = lo - margin * span, hi + margin * span
    full = np.maximum(finite.max(axis=0) - finite.min(axis=0), 1e-9)
    if not ((full / (hi - lo)) >= min_gain).any():
        return None
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def marker_size(n: int) -> float:
    return 7 if n <= 2_000 else 5 if n <= 20_000 else 3 if n <= 100_000 else 2


def build_map_figure(coords: np.ndarray, colour: ColourSpec, *, hover: Sequence[str] | None = None,
                     labels: Sequence[Any] | None = None, selected: Sequence[int] | None = None,
                     highlights: Sequence[Highlight] = (), height: int = 620, uirevision: str | None = None,
                     hover_max_points: int = HOVER_TEXT_MAX_POINTS,
                     window: tuple[tuple[float, float], tuple[float, float]] | None = None,
                     robust_axes: bool = True) -> "go.Figure":
    """A WebGL scatter (Scatter3d for 3 columns) of the map, coloured by `colour`.

    Categorical: one trace per category (legend); numeric: a shared colour axis (colour bar), one trace
    per label so hover can name the label without per-point text. `hover` (escaped strings, one per
    document, see `hover_texts`) is used only up to `hover_max_points` documents; above, hover shows
    the index and the trace's name. `selected` document indices keep their colour, the rest are greyed
    (2-D); `highlights` are drawn last, on top. `window` ((x0, x1), (y0, y1)) sets the initial view (2-D);
    without it, `robust_axes` frames the bulk of the points when outliers would squeeze it (`robust_ranges`).
    `uirevision` (see `map_revision`) keeps the user's view across updates of the same chart.
    """
    import plotly.graph_objects as go

    coords = np.ascontiguousarray(coords, dtype=np.float32)
    n, dims = coords.shape
    if dims not in (2, 3):
        raise ValueError(f"a map has 2 or 3 columns, got {dims}")
    three_d = dims == 3
    use_hover = hover is not None and n <= hover_max_points
    sel_mask = None
    if selected is not None and len(selected) and not three_d:
        sel_mask = np.zeros(n, dtype=bool)
        sel_mask[np.asarray(selected, dtype=np.int64)] = True
    size = marker_size(n)

    if colour.kind == "numeric":
        values = np.asarray(colour.values, dtype=np.float32)
        finite = np.isfinite(values)
        lo = float(values[finite].min()) if finite.any() else 0.0
        hi = float(values[finite].max()) if finite.any() else 1.0
        values = np.where(finite, values, lo).astype(np.float32)
        if labels is not None:
            groups, group_names = fold_categories(labels)
        else:
            groups, group_names = np.full(n, colour.name, dtype=object), [colour.name]
        split = [(name, np.flatnonzero((groups == name) & finite)) for name in group_names]
        missing = np.flatnonzero(~finite)     # no value (an untested document, a blank cell): grey, in the legend
        if missing.size:
            split.append((NO_VALUE, missing))
    else:
        values, lo, hi = None, 0.0, 1.0
        split = [(name, np.flatnonzero(colour.values == name)) for name in colour.categories]
    colours = colour.colour_of() if colour.kind == "categorical" else {}
    value_name = html_text(colour.name)

    traces = []
    for name, rows in split:
        if rows.size == 0:
            continue
        rows32 = rows.astype(np.int32)
        marker: dict[str, Any] = {"size": size if not three_d else max(1.5, size - 3), "opacity": 0.85}
        no_value = name is NO_VALUE
        if no_value:
            name = f"no {colour.name}"
            marker.update(color=NO_VALUE_COLOUR, opacity=0.5)
            value_part = ""
        elif values is not None:
            marker.update(color=values[rows], coloraxis="coloraxis")
            value_part = f"<br>{value_name}: %{{marker.color:.4g}}"
        else:
            marker["color"] = colours[name]
            value_part = ""
        kwargs: dict[str, Any] = dict(name=html_text(name), customdata=rows32, marker=marker,
                                      mode="markers", showlegend=values is None or no_value,
                                      legendgroup=html_text(name))
        if use_hover:
            kwargs["hovertext"] = [hover[i] for i in rows]
            kwargs["hovertemplate"] = ("<b>#%{customdata}</b> · %{fullData.name}<br>%{hovertext}" + value_part
                                       + "<extra></extra>")
        else:
            kwargs["hovertemplate"] = "<b>#%{customdata}</b> · %{fullData.name}" + value_part + "<extra></extra>"
        if three_d:
            traces.append(go.Scatter3d(x=coords[rows, 0], y=coords[rows, 1], z=coords[rows, 2], **kwargs))
        else:
            if sel_mask is not None:
                kwargs["selectedpoints"] = np.flatnonzero(sel_mask[rows]).tolist()
                kwargs["unselected"] = {"marker": {"opacity": UNSELECTED_OPACITY, "color": UNSELECTED_COLOUR}}
            traces.append(go.Scattergl(x=coords[rows, 0], y=coords[rows, 1], **kwargs))

    extra = list(highlights)
    if three_d and selected is not None and len(selected):
        extra.insert(0, Highlight("selection", selected, symbol="circle", size=4, colour="#111111",
                                  line_colour="#111111"))
    for hl in extra:
        raw = np.asarray(list(hl.indices), dtype=np.int64)
        valid = (raw >= 0) & (raw < n)
        idx = raw[valid]
        if idx.size == 0:
            continue
        marker = {"size": hl.size if not three_d else max(3, hl.size - 5), "color": hl.colour,
                  "symbol": hl.symbol, "line": {"width": 1.5, "color": hl.line_colour}, "opacity": 1.0}
        kwargs = dict(name=html_text(hl.name), customdata=idx.astype(np.int32), mode="markers", marker=marker,
                      showlegend=True, legendgroup=f"highlight-{hl.name}")
        head = f"<b>{html_text(hl.name)}</b> #%{{customdata}}"
        texts = None
        if hl.hover is not None:
            texts = [t for t, ok in zip(hl.hover, valid) if ok]
        elif hover is not None:
            texts = [hover[i] for i in idx]
        if texts is not None:
            kwargs["hovertext"] = texts
            kwargs["hovertemplate"] = head + "<br>%{hovertext}<extra></extra>"
        else:
            kwargs["hovertemplate"] = head + "<extra></extra>"
        if three_d:
            if hl.symbol not in _SYMBOLS_3D:
                marker["symbol"] = "diamond"
            traces.append(go.Scatter3d(x=coords[idx, 0], y=coords[idx, 1], z=coords[idx, 2], **kwargs))
        else:
            if sel_mask is not None:
                kwargs["selectedpoints"] = list(range(idx.size))  # highlights never grey out
            traces.append(go.Scattergl(x=coords[idx, 0], y=coords[idx, 1], **kwargs))

    fig = go.Figure(traces)
    axis = dict(showticklabels=False, showgrid=three_d, zeroline=False, title=dict(text=""), showline=False)
    if values is None:  # categories: the legend names them, on the right, under the colour's name
        legend = dict(itemsizing="constant", title=dict(text=value_name), bgcolor="rgba(0,0,0,0)",
                      font=dict(size=11))
    else:  # a colour bar on the right says what the colour is; highlights' legend goes in one row below the map
        legend = dict(itemsizing="constant", orientation="h", x=0, xanchor="left", y=-0.02, yanchor="top",
                      bgcolor="rgba(0,0,0,0)", font=dict(size=11))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=32, b=0 if values is None else 28),
                      hovermode="closest", legend=legend, uirevision=uirevision or "map",
                      hoverlabel=dict(align="left", namelength=-1))
    if three_d:
        fig.update_layout(scene=dict(xaxis=axis, yaxis=axis, zaxis=axis, aspectmode="data",
                                     uirevision=uirevision or "map"))
    else:
        fig.update_xaxes(**axis)
        fig.update_yaxes(**axis, scaleanchor="x", scaleratio=1)  # one unit is as long across as up
        if window is None and robust_axes:
            window = robust_ranges(coords)
        if window is not None:
            fig.update_xaxes(range=list(window[0]))
            fig.update_yaxes(range=list(window[1]))
    if values is not None:
        fig.update_layout(coloraxis=dict(colorscale="Viridis", cmin=lo, cmax=hi,
                                         colorbar=dict(title=dict(text=value_name), thickness=12, len=0.8)))
    return fig


def map_payload_bytes(fig) -> int:
    """Bytes of the figure's JSON: what Streamlit sends to the browser for it."""
    import plotly.io

    return len(plotly.io.to_json(fig, validate=False).encode())


def payload_caption(n: int, n_bytes: int, *, hover: bool) -> str:
    mb = n_bytes / 1e6
    note = "hover snippets" if hover else f"hover shows index and group (snippets only up to " \
                                          f"{HOVER_TEXT_MAX_POINTS:,} documents)"
    return f"map: {n:,} points, {mb:.2f} MB sent · {note}"
