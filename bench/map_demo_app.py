"""One map for the browser tests and bench/map_scale.py: `?n=` points in `?k=` clusters drawn by the WebGL map
(`?renderer=scatter`, the default) or by the Plotly figure the Atlas used before (`?renderer=plotly`), a "Colour by"
radio, a focus number input, the last click and selection as text, and the moment the script finished (epoch ms) so
a bench can time the first frame from there.

Run it as `streamlit run bench/map_demo_app.py` from the repository root."""
from __future__ import annotations

import time

import numpy as np
import streamlit as st

from components.atlas_map import atlas_map
from components.scatter_map import scatter_map
from embedlab.map_colours import categorical_colour, numeric_colour
from embedlab.map_figure import Highlight, build_map_figure
from embedlab.scatter_layer import layer_of

n = int(st.query_params.get("n", 2000))
k = int(st.query_params.get("k", 8))
renderer = st.query_params.get("renderer", "scatter")


@st.cache_resource
def points(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6.0, size=(k, 2))
    labels = rng.integers(0, k, size=n)
    return (centres[labels] + rng.normal(size=(n, 2))).astype(np.float32), labels


@st.cache_resource
def colours(n: int, k: int, by: str):
    """The colour spec of each choice, computed once (the Atlas caches its colours the same way)."""
    coords, labels = points(n, k)
    names = np.array([f"c{v}" for v in range(k)], dtype=object)
    if by == "cluster":
        return categorical_colour("cluster", names[labels])
    if by == "x":
        return numeric_colour("x", coords[:, 0])
    return categorical_colour("parity", np.where(labels % 2 == 0, "even", "odd").astype(object))


@st.cache_resource
def texts(n: int, k: int) -> list[str] | None:
    _, labels = points(n, k)
    return [f"point {i} of cluster {v}" for i, v in enumerate(labels)] if n <= 100_000 else None


with_texts = st.query_params.get("texts", "1") != "0"      # ?texts=0: no hover snippets (what they cost)


coords, labels = points(n, k)
by = st.radio("Colour by", ["cluster", "x", "parity"], horizontal=True, key="colour")
focus = st.number_input("Focus", min_value=-1, max_value=n - 1, value=-1, key="focus_input")
focus = None if focus < 0 else int(focus)
picked = st.session_state.get("picked", [])
spec = colours(n, k, by)
if renderer == "plotly":
    highlights = [Highlight("focus", [focus], symbol="star", size=20)] if focus is not None else []
    fig = build_map_figure(coords, spec, selected=picked or None, highlights=highlights, uirevision=f"demo-{n}")
    atlas_map(fig, key="demo_plotly", n_points=n, on_select=lambda ids: st.session_state.__setitem__(
        "picked", [int(i) for i in ids]), on_click=lambda i: st.session_state.__setitem__("clicked", i))
else:
    layer = layer_of(spec)
    layer.focus = focus if focus is not None else st.session_state.get("clicked")
    layer.selected = picked
    scatter_map(coords, layer, key="demo", revision=f"demo-{n}-{k}-{int(with_texts)}", hover=texts(n, k) if with_texts else None,
                on_click=lambda i: st.session_state.__setitem__("clicked", i),
                on_select=lambda ids: st.session_state.__setitem__("picked", ids))
st.tabs(["one", "two"])
st.write(f"focus={st.session_state.get('clicked')} picked={len(picked)}")
st.caption(f"script-end={time.time() * 1000:.0f}")
