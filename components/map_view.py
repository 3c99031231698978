"""Every map of the product through one call: a 2-D map is drawn by the WebGL scatter (`components/scatter_map.py`),
a 3-D map by Plotly (`components/atlas_map.py`, which says so under the map). The inputs are the Atlas's own: a
`ColourSpec`, the selection, and `Highlight`s (search hits, neighbours, relevant documents, a method's hits and
misses, the focus) which become rings in their colour on the WebGL map, named in its legend.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from components.atlas_map import atlas_map
from components.scatter_map import scatter_map
from embedlab.map_colours import ColourSpec
from embedlab.map_figure import Highlight, build_map_figure, marker_size
from embedlab.scatter_layer import FOCUS_COLOUR, Mark, layer_of, with_emphasis, with_sizes
from embedlab.text_display import hover_texts, html_text

_SHAPES = {"square": "square", "diamond": "diamond", "cross": "diamond", "x": "diamond"}


def _shape(symbol: str) -> str:
    return _SHAPES.get(symbol.removesuffix("-open"), "circle")


def draw_map(coords: np.ndarray, colour: ColourSpec, *, key: str, revision: str, texts: Sequence[str] | None = None,
             labels: Sequence | None = None, selected: Sequence[int] | None = None,
             highlights: Sequence[Highlight] = (), placed: Sequence[tuple[str, tuple[float, float], str]] = (),
             sizes: np.ndarray | None = None, numeric: dict | None = None, zoom_to: Sequence[int] | None = None,
             tags: tuple[np.ndarray, Sequence[str]] | None = None,
             height: int = 620,
             on_click: Callable[[int], None] | None = None,
             on_select: Callable[[list[int]], None] | None = None) -> None:
    """Draw a map of `coords` coloured by `colour`. `texts` are the documents' raw texts (hover snippets);
    `selected` documents keep their colour and the others fade; `highlights` are ringed; `placed` are
    (name, (x, y), colour) positions that are not documents (a placed query); `sizes` (e.g. N_10) scale the points
    (2-D); `numeric` passes `diverging` / `value_range` to a numeric colour; `zoom_to` moves the view to those
    documents whenever they change (a new focus); `tags` (one group number per document, the groups' names) name
    each document's group in its hover text (ID / OOD test, a cluster). `texts` must stay the same for one
    `revision` (they travel with the coordinates, once)."""
    coords = np.asarray(coords)
    if coords.ndim == 2 and coords.shape[1] == 3:
        _plotly_3d(coords, colour, key=key, revision=revision, texts=texts, labels=labels, selected=selected,
                   highlights=highlights, placed=placed, numeric=numeric, height=height, on_click=on_click,
                   on_select=on_select)
        return
    n = len(coords)
    layer = layer_of(colour, **(numeric or {})) if colour.kind == "numeric" else layer_of(colour)
    layer.point_size = float(max(2, marker_size(n) - 1))
    if sizes is not None:
        with_sizes(layer, sizes)
    elif selected:
        with_emphasis(layer, selected, n)
    layer.selected = list(selected or [])
    layer.zoom_to = list(zoom_to) if zoom_to else None
    if tags is not None:
        layer.tags, layer.tag_names = np.asarray(tags[0], dtype=np.uint16), list(tags[1])
    for h in highlights:
        if h.symbol == "star" and len(h.indices) == 1:
            layer.focus = int(h.indices[0])       # the cross: red for the focus, the view's own colour otherwise
            layer.focus_colour = FOCUS_COLOUR if h.name == "focus" else h.colour
            layer.legend.append((f"★ {h.name}", layer.focus_colour))
            continue
        layer.marks.extend(Mark(int(i), h.colour, shape=_shape(h.symbol), width=1.5 if h.symbol.endswith("-open")
                                else 2.5) for i in h.indices)
        if len(h.indices):
            layer.legend.append((f"◯ {h.name} ({len(h.indices):,})", h.colour))
    for name, position, mark_colour in placed:
        layer.marks.append(Mark(-1, mark_colour, shape="diamond", radius=0.035, width=3, position=position))
        layer.legend.append((f"◇ {name}", mark_colour))
    scatter_map(coords, layer, key=key, revision=revision, height=height, hover=texts, on_click=on_click,
                on_select=on_select)


def _colour_axis(colour: ColourSpec, numeric: dict) -> dict:
    """The 3-D map's colour axis for `numeric`'s `value_range` and `diverging` (as the WebGL map's bins)."""
    values = np.asarray(colour.values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    lo, hi = numeric.get("value_range") or ((float(finite.min()), float(finite.max())) if finite.size else (0, 1))
    if not numeric.get("diverging"):
        return {"cmin": lo, "cmax": hi}
    edge = max(abs(lo), abs(hi)) or 1.0
    return {"colorscale": "RdBu", "cmin": -edge, "cmax": edge, "cmid": 0}


def _plotly_3d(coords: np.ndarray, colour: ColourSpec, *, key: str, revision: str, texts, labels, selected,
               highlights, placed, numeric, height: int, on_click, on_select) -> None:
    hover = hover_texts(texts) if texts is not None else None
    fig = build_map_figure(coords, colour, hover=hover, labels=labels, selected=selected, highlights=highlights,
                           height=height, uirevision=revision)
    if colour.kind == "numeric" and numeric and ("value_range" in numeric or numeric.get("diverging")):
        fig.update_layout(coloraxis=_colour_axis(colour, numeric))
    for name, position, mark_colour in placed:     # not a document: no index, so a click on it selects nothing
        fig.add_trace(go.Scatter3d(x=[position[0]], y=[position[1]], z=[position[2]], mode="markers",
                                   name=html_text(name), hovertemplate=f"<b>{html_text(name)}</b><extra></extra>",
                                   marker={"symbol": "diamond", "size": 8, "color": mark_colour,
                                           "line": {"width": 1.5, "color": "#FFFFFF"}}))
    atlas_map(fig, key=key, n_points=len(coords), on_click=on_click, on_select=on_select,
              hover_snippets=hover is not None)
    st.caption("3-D maps are drawn with Plotly (rotate by dragging); the 2-D maps use the WebGL map, which holds "
               "millions of points.")
