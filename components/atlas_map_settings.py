"""The Atlas's ⚙️ Map settings: method, dimensions, n_neighbors, min_dist and seed of the map on screen.

Their values are rebuilt from what is stored (`settle_map_settings`), never taken from a browser tab that may hold
only the widgets' defaults (a reload during a job)."""
from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from components.atlas_state import SCOPE_KEY
from embedlab.workspace import CorpusInfo, Workspace

MAP_KEYS = ("atlas_method", "atlas_dims", "atlas_nn", "atlas_md", "atlas_seed")
METHODS = ["umap", "pca", "tsne"]
DIMS = ["2-D", "3-D"]
NN_RANGE, MD_RANGE, SEED_RANGE = (2, 100), (0.0, 0.99), (0, 2**31 - 1)


def projection_kwargs() -> dict[str, Any]:
    """The map on screen's parameters, as `Workspace.projection` and a "project" job take them."""
    ss = st.session_state
    return {"method": ss["atlas_method"], "n_components": int(ss["atlas_dims"][0]),
            "n_neighbors": int(ss["atlas_nn"]), "min_dist": float(ss["atlas_md"]), "seed": int(ss["atlas_seed"])}


def describe_map(params: dict) -> str:
    text = f"{params.get('method', '?')} {params.get('n_components', 2)}-D"
    if params.get("method") == "umap":
        text += f" · n_neighbors {params.get('n_neighbors')} · min_dist {params.get('min_dist')}"
    if params.get("seed") is not None and params.get("method") != "pca":
        text += f" · seed {params.get('seed')}"
    return text


def _clamp(value, lo, hi, cast):
    try:
        return min(max(cast(value), lo), hi)
    except (TypeError, ValueError):
        return None


def map_settings_of(params: dict) -> dict:
    """The Map settings widgets' values for a map's (or a projection job's) parameters; defaults fill gaps."""
    method = params.get("method") if params.get("method") in METHODS else "umap"
    dims = params.get("n_components", 2)
    seed = params.get("seed")
    return {"atlas_method": method, "atlas_dims": f"{dims}-D" if f"{dims}-D" in DIMS else "2-D",
            "atlas_nn": _clamp(params.get("n_neighbors", 15), *NN_RANGE, int) or 15,
            "atlas_md": round(_clamp(params.get("min_dist", 0.1), *MD_RANGE, float) or 0.0, 2),
            "atlas_seed": 42 if seed is None else (_clamp(seed, *SEED_RANGE, int) or 0)}


def valid_map_setting(key: str, value) -> bool:
    if key == "atlas_method":
        return value in METHODS
    if key == "atlas_dims":
        return value in DIMS
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    lo, hi = {"atlas_nn": NN_RANGE, "atlas_md": MD_RANGE, "atlas_seed": SEED_RANGE}[key]
    return lo <= value <= hi


def reference_map_settings(ws: Workspace, corpus: CorpusInfo, model: str, session_id: int) -> dict:
    """What the Map settings show when they must be rebuilt: the map being computed for this corpus and model
    (this session's latest running projection job), else the latest stored map, else UMAP 2-D defaults."""
    running = [j for j in ws.map_jobs(session_id)
               if j.active and j.params.get("corpus_id") == corpus.id and j.params.get("model") == model]
    if running:
        return map_settings_of(max(running, key=lambda j: j.id).params)
    stored = [m for m in ws.matrices(corpus, "projection") if m.model == model]
    return map_settings_of(stored[-1].params if stored else {})


def settle_map_settings(ws: Workspace, corpus: CorpusInfo, model: str, session_id: int) -> None:
    """Rebuild the Map settings for a new corpus or model, or wherever a value is missing or invalid (a browser
    tab reloaded while a map was computing can send the widgets' defaults: no method, None dimensions); then
    set every value again, so that each run tells the browser the values (a fresh tab shows them, not the
    widgets' defaults, when the popover opens)."""
    ss = st.session_state
    scope = (corpus.id, model)
    new_scope = ss.get(SCOPE_KEY) != scope
    bad = [k for k in MAP_KEYS if new_scope or not valid_map_setting(k, ss.get(k))]
    if bad:
        ref = reference_map_settings(ws, corpus, model, session_id)
        for k in bad:
            ss[k] = ref[k]
    ss[SCOPE_KEY] = scope
    for k in MAP_KEYS:
        ss[k] = ss[k]


def map_settings_popover(where) -> dict[str, Any]:
    """The ⚙️ Map settings popover in container `where`; returns `projection_kwargs()`."""
    with where.popover("⚙️ Map settings", width="stretch"):
        st.segmented_control("Method", METHODS, key="atlas_method", required=True)
        st.segmented_control("Dimensions", DIMS, key="atlas_dims", required=True)
        umap_on = st.session_state["atlas_method"] == "umap"
        st.slider("n_neighbors", *NN_RANGE, key="atlas_nn", disabled=not umap_on,
                  help="UMAP: larger values favour the global structure, smaller ones local detail.")
        st.slider("min_dist", *MD_RANGE, step=0.01, key="atlas_md", disabled=not umap_on,
                  help="UMAP: how tightly points may pack together.")
        st.number_input("Seed", *SEED_RANGE, step=1, key="atlas_seed",
                        disabled=st.session_state["atlas_method"] == "pca",
                        help="The same seed gives the same map (UMAP then runs single-threaded).")
    return projection_kwargs()
