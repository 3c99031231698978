"""The Atlas's main map with its marks (search hits, the focus and its neighbours), the offer to compute a map not
stored yet, the focused document's neighbour panel beside it, and the "📏 Quality" tab (how faithful the map is)."""
from __future__ import annotations

from typing import Callable, Sequence

import streamlit as st

from components.atlas_context import AtlasContext
from components.atlas_map_settings import describe_map
from components.atlas_state import select_on_map
from components.data import map_quality, neighbour_index
from components.judge_buttons import JudgeScope
from components.map_view import draw_map
from components.neighbour_panel import neighbour_panel
from components.selection_table import bookmark_form
from embedlab.map_figure import Highlight, map_revision
from embedlab.map_quality import quality_verdict
from embedlab.text_display import display_text, snippet

ZOOM_KEY = "atlas_zoom_focus"
MAP_KEY = "atlas_map"


def highlighter(texts: Sequence[str], hits: Sequence[int], focus: int | None) -> Callable[[Sequence[int]], list]:
    """The marks of every map of the corpus: the search hits, the focus, and the neighbours given."""
    def few_hover(indices) -> list[str]:
        return [snippet(texts[i]) for i in indices]

    def highlights(neighbours: Sequence[int]) -> list[Highlight]:
        out = []
        if hits:
            out.append(Highlight("search hits", list(hits), symbol="diamond", size=11, colour="#FFB000",
                                 line_colour="#222222", hover=few_hover(hits)))
        if neighbours:
            out.append(Highlight("neighbours", list(neighbours), symbol="circle-open", size=13, colour="#111111",
                                 line_colour="#111111", hover=few_hover(neighbours)))
        if focus is not None:
            out.append(Highlight("focus", [focus], symbol="star", size=20, colour="#111111", line_colour="#FFFFFF",
                                 hover=few_hover([focus])))
        return out
    return highlights


def focus_column(ctx: AtlasContext) -> list[dict]:
    """The focused document and its nearest neighbours (or how to focus one); the neighbour rows shown."""
    if ctx.focus is None:
        st.markdown("**Neighbours**")
        st.caption("Click a point on the map (or a row in any table below) to see its nearest neighbours in the "
                   "original embedding space. Box or lasso select (toolbar) to pick many documents.")
        return []
    doc = ctx.ws.documents(ctx.corpus.id, [ctx.focus])[0]
    label = doc.get("label")
    doc = {**doc, "label": None if label is None else ctx.label_names.get(str(label)) or label}
    rows = neighbour_panel(X=ctx.X, coords=ctx.coords, focus=ctx.focus, doc=doc, texts=ctx.texts,
                           labels=ctx.shown_labels, on_focus=ctx.set_focus, on_clear=lambda: ctx.set_focus(None),
                           judging=JudgeScope(ctx.session_id, ctx.corpus.id),
                           index=neighbour_index(ctx.emb_id, len(ctx.X)))
    with st.popover("🔖 Bookmark this document", width="stretch"):
        bookmark_form(ctx.ws, ctx.session_id, ctx.corpus.id, [ctx.focus], key="atlas-bm-focus")
    return rows


def no_map_yet(ctx: AtlasContext) -> None:
    """Say that no map of these settings is stored; offer to compute it (or say it is being computed)."""
    params = {"corpus_id": ctx.corpus.id, "model": ctx.model, **ctx.map_params}
    with st.container(border=True, height=400):
        st.markdown(f"**No map yet** for {display_text(ctx.model)} with {display_text(describe_map(ctx.map_params))}.")
        if ctx.ws.active_job("project", params) is not None:
            st.caption("Computing the map… it appears here when done.")
        else:
            st.caption("A map of a few thousand documents takes seconds; of 100k, a few minutes (UMAP).")
            if st.button("Compute map", type="primary", key="atlas_compute"):
                ctx.ws.submit("project", params, session_id=ctx.session_id)
                st.rerun()
        stored = [m for m in ctx.ws.matrices(ctx.corpus, "projection") if m.model == ctx.model]
        if stored:
            st.caption("Other maps stored for this model (other settings, or an older engine version): "
                       + display_text("; ".join(describe_map(m.params) for m in stored)))


def main_map(ctx: AtlasContext, neighbour_rows: list[dict], hover: Sequence[str] | None) -> None:
    """The map: coloured as chosen, the selection shown, the search hits, focus and its neighbours ringed; with
    "Zoom to focus" the view moves to a newly focused document and its neighbours (otherwise the user's zoom stays).
    `hover` (escaped text) is used by the 3-D (Plotly) map only; the WebGL map shows the raw snippets."""
    ss = st.session_state
    near = [r["idx"] for r in neighbour_rows if not r["far on map"]]
    zoom = [ctx.focus, *near] if ctx.focus is not None and ss.get(ZOOM_KEY, True) else None
    draw_map(ctx.coords, ctx.colour, key=MAP_KEY, revision=map_revision(ctx.corpus.id, ctx.model, ctx.proj_id),
             texts=ctx.texts, labels=ctx.shown_labels, selected=list(ctx.selected),
             highlights=ctx.highlights([r["idx"] for r in neighbour_rows]), zoom_to=zoom, height=640,
             on_click=ctx.set_focus, on_select=select_on_map)
    c1, c2, c3 = st.columns([2, 4, 1.4], vertical_alignment="center")
    if ctx.coords.shape[1] == 2:
        c1.toggle("Zoom to focus", value=True, key=ZOOM_KEY,
                  help="When a document is focused, the map moves to it and its neighbours; otherwise your zoom "
                       "and pan stay as they are.")
    if ctx.selected:
        c2.caption(f"{len(ctx.selected):,} documents selected (see the Selection tab); the rest are faded.")
        c3.button("Clear selection", key="atlas_clear_sel", on_click=lambda: ctx.set_selection([]))


def quality_view(ctx: AtlasContext) -> None:
    """Trustworthiness and kNN overlap@10 of the map on screen, with a verdict."""
    if ctx.coords is None:
        st.caption("Compute the map first.")
        return
    trust, overlap, sample = map_quality(ctx.emb_id, ctx.proj_id)
    q1, q2, q3 = st.columns([1, 1, 3])
    q1.metric("Trustworthiness", f"{trust:.3f}", help="1 means the map invents no neighbours "
                                                     "(scikit-learn, k=10, cosine in the original space)")
    q2.metric("kNN overlap@10", f"{overlap:.0%}", help="Share of each document's 10 nearest neighbours "
                                                       "(original space) that are among its 10 nearest on the map")
    q3.info(quality_verdict(trust, overlap))
    st.caption(f"Measured on a random sample of {sample:,} documents · map: "
               f"{display_text(describe_map(ctx.proj_params))}")
