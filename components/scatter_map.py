"""The WebGL map: a scatter plot of up to millions of points inside Streamlit, drawn by regl-scatterplot through custom
components v2; the payloads and the JavaScript are in `embedlab/scatter_payload.py`.

Two elements per map, so that each change sends only what changed (DESIGN §8):
* the points element carries the coordinates as float32 bytes (and, up to `TEXTS_UP_TO` points, the hover
  snippets). Its data is the same on every rerun that keeps the map, so Streamlit does not send it again and the
  browser keeps its zoom and pan;
* the layer element carries one colour code per point (uint8), the palette and legend, emphasis or sizes, the
  selection to outline, the focus and marks: about one byte per point per colour change.
A click on a point returns its index (`click`), a box or lasso (shift + drag; the toolbar picks the shape) the
indices inside (`select`). Without WebGL the element shows a message instead of a blank map.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import streamlit as st

from embedlab.scatter_layer import ScatterLayer
from embedlab.scatter_payload import (LEGEND_CSS, LEGEND_HTML, MAP_CSS, MAP_HTML, layer_js, pack_layer, pack_points,
                                      points_js)

_points_element = st.components.v2.component("embedlab_map_points", html=MAP_HTML, css=MAP_CSS, js=points_js())
_layer_element = st.components.v2.component("embedlab_map_layer", html=LEGEND_HTML, css=LEGEND_CSS, js=layer_js())


@dataclass(frozen=True)
class MapEvent:
    """What the user did on the map in this run: a clicked point, or the indices of a box or lasso selection."""
    clicked: int | None = None
    selected: list[int] | None = None


@st.cache_data(max_entries=8, show_spinner=False)
def _points_bytes(revision: str, key: str, height: int, _coords: np.ndarray,
                  _hover: Sequence[str] | None) -> bytes:
    return pack_points(_coords, key=key, height=height, hover=_hover)


def scatter_map(coords: np.ndarray, layer: ScatterLayer, *, key: str, revision: str, height: int = 620,
                hover: Sequence[str] | None = None, on_click: Callable[[int], None] | None = None,
                on_select: Callable[[list[int]], None] | None = None) -> MapEvent:
    """Draw a 2-D map of `coords` with `layer` over it. `revision` names the coordinates (e.g. the stored map's id):
    while it is unchanged the coordinates are packed once and never sent again. `on_click(index)` and
    `on_select(indices)` run as callbacks, before the rerun that follows the user's action."""
    points_key, layer_key = f"{key}-points", f"{key}-layer"

    def clicked() -> None:
        value = st.session_state[points_key].get("click")
        if on_click is not None and value is not None:
            on_click(int(value))

    def selected() -> None:
        value = st.session_state[points_key].get("select")
        if on_select is not None and value is not None:
            on_select([int(i) for i in value])

    data = _points_bytes(revision, key, height, coords, hover)
    result = _points_element(key=points_key, data=data, height=height + 6, on_click_change=clicked,
                             on_select_change=selected)
    _layer_element(key=layer_key, data=pack_layer(layer, key=key, n=len(coords), coords=coords), height="content")
    click = result.get("click") if result is not None else None
    select = result.get("select") if result is not None else None
    return MapEvent(clicked=None if click is None else int(click),
                    selected=None if select is None else [int(i) for i in select])
