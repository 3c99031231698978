"""The Atlas map: a Plotly WebGL scatter with click, box and lasso selection mapped back to document indices.

The figure itself is built by `embedlab.map_figure.build_map_figure` (pure, tested); this widget renders it and
turns Plotly selection events into calls of `on_select(indices)` (box or lasso) or `on_click(index)`
(a single clicked point). Both run as widget callbacks, before the script, so the rerun that follows
already draws the new state.
"""
from __future__ import annotations

import functools
import hashlib
from typing import Callable

import numpy as np
import streamlit as st

from embedlab.map_figure import HOVER_TEXT_MAX_POINTS, payload_caption
from embedlab.selection import interpret_selection

PLOTLY_CONFIG = {"scrollZoom": True, "displaylogo": False, "modeBarButtonsToRemove": ["toImage"]}


def _dispatch(key: str, on_select: Callable[[np.ndarray], None] | None,
              on_click: Callable[[int], None] | None) -> None:
    action = interpret_selection(st.session_state.get(key))
    if action is None:
        return
    kind, indices = action
    if kind == "click" and on_click is not None:
        on_click(int(indices[0]))
    elif on_select is not None:
        on_select(indices)


def figure_digest(fig) -> tuple[str, int]:
    """(digest, bytes) of the figure's JSON: what Streamlit sends, and what its chart's identity derives from."""
    import plotly.io

    raw = plotly.io.to_json(fig, validate=False).encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest(), len(raw)


def shown_digest(key: str) -> str | None:
    """The digest of the figure that chart `key` showed on the last run (None before)."""
    return st.session_state.get(f"_{key}_digest")


def atlas_map(fig, *, key: str, n_points: int, on_select: Callable[[np.ndarray], None] | None = None,
              on_click: Callable[[int], None] | None = None, hover_snippets: bool = True,
              show_payload: bool = True) -> int:
    """Render the map; return the bytes of its JSON (what reaches the browser) and show them in a caption.

    Streamlit (1.67) mounts a chart whose figure changed as a new chart: the user's zoom and Plotly's own
    selection outline go, whatever the figure's `uirevision`. A figure identical to the last one keeps the
    chart; `shown_digest(key)` lets a page check that before it changes what it draws."""
    three_d = bool(fig.data) and fig.data[0].type == "scatter3d"
    modes = ("points",) if three_d else ("points", "box", "lasso")
    st.plotly_chart(fig, key=key, on_select=functools.partial(_dispatch, key, on_select, on_click),
                    selection_mode=modes, config=PLOTLY_CONFIG, width="stretch")
    digest, n_bytes = figure_digest(fig)
    st.session_state[f"_{key}_digest"] = digest
    if show_payload:
        st.caption(payload_caption(n_points, n_bytes, hover=hover_snippets and n_points <= HOVER_TEXT_MAX_POINTS))
    return n_bytes
