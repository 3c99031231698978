"""The Atlas's clusters: HDBSCAN on the map or k-means on the embedding, with keyword labels; their settings start
from the defaults of the corpus's size, and the "🧩 Clusters" tab lists them (click one to select it)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from components.atlas_colour import CLUSTER
from components.atlas_context import AtlasContext
from components.atlas_state import COLOUR_KEY
from components.data import clusters_for
from components.state import picked_row
from embedlab.clusters import cluster_table, default_min_cluster_size
from embedlab.workspace import CorpusInfo

METHOD_KEY, K_KEY, MIN_KEY, ASSIGN_KEY = "atlas_cl_method", "atlas_cl_k", "atlas_cl_min", "atlas_cl_assign"
CLUSTER_KEYS = (METHOD_KEY, K_KEY, MIN_KEY, ASSIGN_KEY)
SCOPE_KEY = "atlas_cl_scope"     # the corpus the settings are of
HDBSCAN_MAX_DOCS = 20_000        # HDBSCAN (sklearn) takes minutes on 100k points of a dense map; k-means seconds


def settle_cluster_settings(corpus_id: int, n: int) -> None:
    """Cluster settings start from the defaults of this corpus's size (a smaller corpus seen first left a smallest
    cluster of 5 documents: 289 clusters on AG News)."""
    ss = st.session_state
    if ss.get(SCOPE_KEY) != corpus_id:
        ss.update({METHOD_KEY: "hdbscan" if n <= HDBSCAN_MAX_DOCS else "kmeans", K_KEY: 10,
                   MIN_KEY: default_min_cluster_size(n), ASSIGN_KEY: True})
        ss[SCOPE_KEY] = corpus_id


def clusters_on_screen(corpus: CorpusInfo, emb_id: int, proj_id: int | None) -> tuple[np.ndarray, dict[int, str]]:
    """The clusters of the current settings: (cluster id per document, -1 noise; keywords per cluster)."""
    ss = st.session_state
    return clusters_for(corpus, emb_id, proj_id, ss[METHOD_KEY], int(ss[K_KEY]), int(ss[MIN_KEY]),
                        bool(ss[ASSIGN_KEY]))


def clusters_view(ctx: AtlasContext) -> None:
    """The settings, and the clusters as a table: click a cluster to select its documents on the map."""
    ss, n = st.session_state, ctx.n
    c1, c2, c3, c4 = st.columns([2, 2, 2, 2], vertical_alignment="bottom")
    c1.segmented_control("Method", ["hdbscan", "kmeans"], key=METHOD_KEY, required=True,
                         help="HDBSCAN finds the islands of the map (noise allowed); k-means partitions the "
                              "embedding space into k groups.")
    if ss[METHOD_KEY] == "hdbscan" and n > HDBSCAN_MAX_DOCS:
        st.caption(f"HDBSCAN on {n:,} points can take minutes (once: the result is cached).")
    if ss[METHOD_KEY] == "kmeans":
        c2.slider("k", 2, 50, key=K_KEY)
    else:
        c2.number_input("Smallest cluster", 2, max(2, n), key=MIN_KEY,
                        help=f"Default for {n:,} documents: {default_min_cluster_size(n):,} (1.5 %).")
        c3.toggle("Noise joins the nearest cluster", key=ASSIGN_KEY,
                  help="HDBSCAN leaves the thin shores between dense areas of the map as noise; with this "
                       "on, a noise point close to a cluster (within 3 times the usual spacing of "
                       "clustered points) joins it.")
    c4.button("Colour the map by cluster", key="atlas_cl_colour", on_click=lambda: ss.update({COLOUR_KEY: CLUSTER}))
    ids, keywords = ctx.clusters()
    table = cluster_table(ids, keywords)
    noise = sum(r["size"] for r in table if r["cluster"] == -1)
    st.caption(f"{sum(r['cluster'] >= 0 for r in table)} clusters"
               + (f", {noise:,} document{'s' if noise != 1 else ''} as noise" if noise else "")
               + ". Click a cluster to select its documents on the map.")
    key = f"atlas-cl-table-{ss[METHOD_KEY]}-{int(ss[K_KEY])}-{int(ss[MIN_KEY])}-{bool(ss[ASSIGN_KEY])}"
    cl_ids = [r["cluster"] for r in table]

    def pick() -> None:
        row = picked_row(key)
        if row is not None:
            ctx.set_selection(np.flatnonzero(ids == cl_ids[row]))

    st.dataframe(pd.DataFrame(table), key=key, on_select=pick, selection_mode="single-row",
                 hide_index=True, width="stretch", height=min(420, 38 + 35 * len(table)),
                 column_config={"size": st.column_config.ProgressColumn(
                     "size", min_value=0, max_value=max([r["size"] for r in table] or [1]), format="%d")})
