"""Atlas tab "Diagnostics": how healthy is each embedding space of the corpus? RankMe, hubness, anti-hubs,
anisotropy and PCA dimensions for every model side by side (`embedlab.diagnostics.diagnose`), and the current
model's hubs on the map: points sized and coloured by N_10, how often a document is among the others' top-10.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from components.atlas_context import AtlasContext
from components.data import diagnostics_for, k_occurrence_for
from components.map_view import draw_map
from components.state import focus_on_pick
from embedlab.diagnostics import hub_order
from embedlab.map_colours import numeric_colour
from embedlab.map_figure import Highlight
from embedlab.text_display import display_text, short_text, snippet

AUTO_MAX_DOCS = 20_000       # above: computed on request (100k documents take about 90 s per model)
SECONDS_PER_100K = 90
N_HUBS = 20

# DESIGN's names, as `diagnostics --json` writes them, with what each one says.
COLUMNS = {
    "rankme": ("RankMe", ("Effective rank (Garrido et al., 2023): exp of the entropy of the normalised singular "
               "values of the L2-normalised embedding (not centred). How many dimensions the space really uses; "
               "at most the dimension.")),
    "hubness_skew@10": ("hubness skew@10", ("Hubness (Radovanović et al., 2010): skewness of N_10, the number of "
                        "other documents whose exact cosine top-10 contains a document. Near 0: every document is "
                        "a neighbour about equally often; large: a few hubs are everyone's neighbour.")),
    "anti_hub_fraction@10": ("anti-hub share", ("Share of documents in no other document's top-10 (N_10 = 0): "
                             "nearest-neighbour search never returns them for a similar document.")),
    "max_k_occurrence@10": ("max k-occurrence", ("The largest N_10: in how many top-10 lists the biggest hub "
                            "appears.")),
    "mean_cosine": ("mean cosine", ("Mean cosine over all pairs of distinct documents. Near 0: isotropic; high: "
                    "every vector points the same way (anisotropy), so cosines are compressed into a narrow "
                    "band.")),
    "pca_dims_90": ("PCA dims for 90 %", ("Principal components (centred) needed to explain 90 % of the "
                    "variance: the intrinsic dimension a linear view sees.")),
}
FORMATS = {"rankme": "%.1f", "hubness_skew@10": "%.2f", "anti_hub_fraction@10": "%.3f",
           "max_k_occurrence@10": "%d", "mean_cosine": "%.3f", "pca_dims_90": "%d"}


def diagnostics_view(ctx: AtlasContext) -> None:
    st.caption("How healthy is each embedding of this corpus: RankMe (effective rank), hubness, anti-hubs, mean "
               "cosine (anisotropy) and PCA dimensions, one row per model; hover a column name for what it "
               "measures. Hubs are documents that turn up in many other documents' top-10 whatever they are "
               "about; anti-hubs in none.")
    metas = {}
    for m in ctx.models:
        meta = ctx.ws.embedding(ctx.corpus, m)
        if meta is not None:
            metas[m] = meta
    if ctx.n < 12:
        st.caption("Diagnostics need at least 12 documents.")
        return
    go_key = f"_atlas_diag_go_{ctx.corpus.id}"
    if ctx.n > AUTO_MAX_DOCS and not st.session_state.get(go_key):
        per = SECONDS_PER_100K * (ctx.n / 100_000) ** 2
        st.caption(f"With {ctx.n:,} documents the exact top-10 of every document takes about "
                   f"{max(1, round(per))} s per model ({len(metas)} model(s)); the result is kept on this server.")
        st.button("Compute the diagnostics", key="atlas_diag_compute",
                  on_click=st.session_state.__setitem__, args=(go_key, True))
        return

    rows = []
    bar = st.progress(0.0, text="diagnostics")
    for i, (m, meta) in enumerate(metas.items()):
        bar.progress(i / max(1, len(metas)), text=f"diagnosing {display_text(m)} ({i + 1}/{len(metas)})")
        with st.spinner(f"Diagnosing {display_text(m)}: effective rank, exact top-10 of every document, PCA…"):
            try:
                rows.append(diagnostics_for(int(meta.id), m))
            except Exception as exc:  # noqa: BLE001 - one bad embedding must not hide the others
                st.warning(display_text(f"{m}: {exc}"))
    bar.empty()
    if rows:
        frame = pd.DataFrame(rows)[["model", "n_docs", "dim", *COLUMNS]]
        config = {key: st.column_config.NumberColumn(title, help=help_text, format=FORMATS[key])
                  for key, (title, help_text) in COLUMNS.items()}
        config.update(model=st.column_config.TextColumn("model"), n_docs=st.column_config.NumberColumn(
            "documents", format="%d"), dim=st.column_config.NumberColumn("dim", format="%d"))
        st.dataframe(frame, key="atlas_diag_table", hide_index=True, width="stretch", column_config=config)
        st.caption("Also from the command line: `python -m embedlab diagnostics --session S --corpus C "
                   "[--model M] [--json OUT]`.")

    st.markdown(f"#### Hubs of {display_text(ctx.model)}")
    with st.spinner("Counting how often each document is a top-10 neighbour…"):
        counts = k_occurrence_for(int(ctx.emb_id))
    _hubs(ctx, counts)


def _hubs(ctx: AtlasContext, counts: np.ndarray) -> None:
    n_anti = int((counts == 0).sum())
    c1, c2, c3 = st.columns(3)
    c1.metric("anti-hubs (N_10 = 0)", f"{n_anti:,}", help="Documents in no other document's top-10")
    c2.metric("anti-hub share", f"{n_anti / len(counts):.1%}")
    c3.metric("largest N_10", f"{int(counts.max()):,}", help="The biggest hub is in this many top-10 lists "
              "(10 on average)")
    if ctx.coords is None:
        st.caption("No map yet: compute it above to see where the hubs sit.")
    else:
        _hub_map(ctx, counts)
    order = hub_order(counts)[:N_HUBS]
    hubs = [int(i) for i in order]
    st.caption(f"The top {len(hubs)} hubs (click one to focus it):")
    frame = pd.DataFrame({"doc": hubs, "N_10": counts[order].astype(int),
                          "label": [None if ctx.shown_labels is None else str(ctx.shown_labels[i]) for i in hubs],
                          "text": [short_text(ctx.texts[i], 160) for i in hubs]})
    if ctx.shown_labels is None:
        frame = frame.drop(columns=["label"])

    st.dataframe(frame, key="atlas_diag_hubs", on_select=focus_on_pick("atlas_diag_hubs", hubs, ctx.set_focus),
                 selection_mode="single-row", hide_index=True,
                 width="stretch", height=min(420, 38 + 35 * len(frame)),
                 column_config={"doc": st.column_config.NumberColumn(format="%d", width="small"),
                                "N_10": st.column_config.NumberColumn(format="%d", width="small"),
                                "text": st.column_config.TextColumn(width="large")})


def _hub_map(ctx: AtlasContext, counts: np.ndarray) -> None:
    """The tab's own map with points sized and coloured by N_10 (hubs big and yellow, drawn on top)."""
    highlights = []
    if ctx.focus is not None:
        highlights.append(Highlight("focus", [int(ctx.focus)], symbol="star", size=20, colour="#111111",
                                    line_colour="#FFFFFF", hover=[snippet(ctx.texts[int(ctx.focus)])]))
    draw_map(ctx.coords, numeric_colour("N_10", counts), key="atlas_diag_map", texts=ctx.texts, height=600,
             revision=ctx.revision("diagnostics"), highlights=highlights, sizes=counts, on_click=ctx.set_focus)
    st.caption("Size and colour: N_10, how many other documents have this one in their top-10 (big and "
               "yellow: hubs; small and dark: anti-hubs).")
