"""Atlas tab "⚖️ Compare": the map on screen beside the map of a second embedding of the corpus (or a second stored
map of the same one), with linked selections; for two models, how far their spaces agree (linear CKA, neighbour
overlap), where they disagree most, and one document's nearest neighbours under both, side by side."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from components.atlas_context import AtlasContext
from components.atlas_map_settings import describe_map
from components.atlas_state import fall_back
from components.data import (label_colour_for, per_document_disagreement, shared_matrix,
                             space_agreement)
from components.map_view import draw_map
from components.state import picked_row
from embedlab.compare import disagreement_order, neighbour_lists
from embedlab.embedding.embedders import available_models
from embedlab.map_colours import ColourSpec, numeric_colour
from embedlab.map_figure import map_revision
from embedlab.text_display import display_text, short_text

WITH_KEY, COLOUR_KEY, FULL_KEY, DOC_KEY = "atlas_cmp_with", "atlas_cmp_colour", "atlas_cmp_full", "atlas_cmp_doc"
AUTO_MAX_DOCS = 20_000     # above: the per-document agreement waits for a button (minutes)
N_DISAGREE = 30
MODEL, MAP = "model: ", "map: "


def compare_view(ctx: AtlasContext) -> None:
    others = [m for m in ctx.models if m != ctx.model]
    stored_maps = [m for m in ctx.ws.matrices(ctx.corpus, "projection")
                   if m.model == ctx.model and m.id != ctx.proj_id]
    options = [f"{MODEL}{m}" for m in others] + [f"{MAP}{describe_map(m.params)} #{m.id}" for m in stored_maps]
    if not options:
        st.caption("Compare needs a second embedding of this corpus (or a second stored map).")
    else:
        fall_back(WITH_KEY, options, lambda old, new: f"Nothing to compare with as {old} here: comparing with {new}.")
        p1, p2 = st.columns([3, 2], vertical_alignment="bottom")
        with_what = p1.selectbox("Compare with", options, key=WITH_KEY)
        colour_modes = ["neighbour overlap", "rank displacement", "the map's colour"]
        if ctx.labels is not None:
            colour_modes.insert(0, "label")
        fall_back(COLOUR_KEY, colour_modes,
                  lambda old, new: f"No colour {old} to compare by here: colouring both maps by {new}.")
        cmp_mode = p2.selectbox("Colour both maps by", colour_modes, key=COLOUR_KEY,
                                help="label: one colour per label, as on every map; neighbour overlap and "
                                     "rank displacement: how much the two models agree on each document's "
                                     "neighbours (two models only)")
    _embed_buttons(ctx)
    if not options:
        return
    if ctx.coords is None:
        st.caption("Compute the map first.")
        return
    if with_what.startswith(MODEL):
        other = with_what.removeprefix(MODEL)
        emb_b = ctx.ws.embedding(ctx.corpus, other)
        agreement = _agreement(ctx, emb_b.id)
        map_b = ctx.ws.projection(ctx.corpus.id, other, **ctx.map_params)
        title_b = f"{other} · {describe_map(ctx.map_params)}"
        rev_b = map_revision("cmp-b", ctx.corpus.id, other, map_b.id if map_b is not None else None)
    else:
        emb_b, agreement, other = None, None, ctx.model
        map_b = next(m for m in stored_maps if m.id == int(with_what.rsplit("#", 1)[1]))
        title_b = f"{ctx.model} · {describe_map(map_b.params)}"
        rev_b = map_revision("cmp-b", ctx.corpus.id, ctx.model, map_b.id)
    colour = _colour(ctx, cmp_mode, agreement)
    _maps(ctx, colour, cmp_mode, map_b, other, title_b, rev_b)
    low_idx = _disagreements(ctx, agreement, with_what) if agreement is not None else []
    if emb_b is not None:
        doc = ctx.focus if ctx.focus is not None else st.session_state.get(DOC_KEY)
        if doc is None and low_idx and ctx.n > 1:
            doc = low_idx[0]
        if doc is not None and 0 <= doc < ctx.n:
            side_by_side(ctx, int(doc), emb_b.id, other)


def _embed_buttons(ctx: AtlasContext) -> None:
    """Offer to embed the corpus with the offered models it has no embedding of."""
    not_embedded = [m for m in available_models() if m not in ctx.models]
    if not not_embedded:
        return
    e1, e2 = st.columns([3, 1], vertical_alignment="bottom")
    e1.caption(f"Embed this corpus with {display_text(', '.join(not_embedded))} to compare models.")
    for m in not_embedded:
        params = {"corpus_id": ctx.corpus.id, "model": m}
        if not ctx.ws.active_job("embed", params) and e2.button(f"Embed with {display_text(m)}",
                                                                key=f"atlas-embed-{m}"):
            ctx.ws.submit("embed", params, session_id=ctx.session_id)
            st.rerun()


def _agreement(ctx: AtlasContext, emb_b: int) -> dict | None:
    """The two spaces' agreement as metrics; the per-document one (None above AUTO_MAX_DOCS until asked for)."""
    cka, mean_ov, sample = space_agreement(ctx.emb_id, emb_b)
    m1, m2, m3 = st.columns([1, 1, 3])
    m1.metric("Linear CKA", f"{cka:.3f}", help="Similarity of the two spaces (Kornblith et al. 2019), "
                                               "1 = the same up to rotation and scale")
    m2.metric("Neighbour overlap@10", f"{mean_ov:.0%}",
              help="Share of a document's 10 nearest neighbours that both models agree on")
    m3.caption("Estimated on a sample of 2,000 documents." if sample else "Over all documents.")
    if ctx.n <= AUTO_MAX_DOCS or st.session_state.get(FULL_KEY) == (ctx.emb_id, emb_b):
        return per_document_disagreement(ctx.emb_id, emb_b)
    if st.button(f"Compute the per-document agreement for all {ctx.n:,} documents (minutes)",
                 key="atlas_cmp_full_btn"):
        st.session_state[FULL_KEY] = (ctx.emb_id, emb_b)
        st.rerun()
    return None


def _colour(ctx: AtlasContext, mode: str, agreement: dict | None) -> ColourSpec:
    if mode == "label":
        return label_colour_for(ctx.corpus, ctx.names_key)
    if mode == "neighbour overlap" and agreement is not None:
        return numeric_colour("neighbour overlap@10", agreement["overlap"])
    if mode == "rank displacement" and agreement is not None:
        return numeric_colour("rank displacement", agreement["displacement"])
    if mode != "the map's colour":
        st.caption(f"“{mode}” compares two models' neighbours: the maps show the map's colour.")
    return ctx.colour


def _maps(ctx: AtlasContext, colour: ColourSpec, mode: str, map_b, other: str, title_b: str, rev_b: str) -> None:
    """The map on screen and the other one, side by side, in the same colours, selections linked."""
    a, b = st.columns(2)
    with a:
        st.markdown(f"**{display_text(ctx.model)}** · {display_text(describe_map(ctx.proj_params))}")
        draw_map(ctx.coords, colour, key="atlas_cmp_a", texts=ctx.texts, labels=ctx.shown_labels,
                 revision=map_revision("cmp-a", ctx.corpus.id, ctx.model, ctx.proj_id), selected=ctx.selected,
                 highlights=ctx.highlights([]), height=460, on_select=ctx.set_selection, on_click=ctx.set_focus)
    with b:
        st.markdown(f"**{display_text(title_b)}**")
        if map_b is None:
            params = {"corpus_id": ctx.corpus.id, "model": other, **ctx.map_params}
            if ctx.ws.active_job("project", params):
                st.caption("Computing this map…")
            elif st.button(f"Compute the map of {display_text(other)}", key="atlas_cmp_compute"):
                ctx.ws.submit("project", params, session_id=ctx.session_id)
                st.rerun()
        else:
            draw_map(shared_matrix(map_b.id), colour, key="atlas_cmp_b", texts=ctx.texts, labels=ctx.shown_labels,
                     revision=rev_b, selected=ctx.selected, highlights=ctx.highlights([]), height=460,
                     on_select=ctx.set_selection, on_click=ctx.set_focus)
    st.caption("Selections are linked: select in either map (shift + drag) and the same documents stay coloured "
               "in both, the rest fade.")


def _disagreements(ctx: AtlasContext, agreement: dict, with_what: str) -> list[int]:
    """The documents whose neighbours move most between the two models (click one to compare its lists); their
    rows, worst first."""
    order = disagreement_order(agreement["displacement"], agreement["overlap"], agreement["score"])[:N_DISAGREE]
    low = [{"idx": int(i), "displacement": float(agreement["displacement"][i]),
            "overlap@10": float(agreement["overlap"][i]),
            "label": None if ctx.shown_labels is None else ctx.shown_labels[i],
            "text": short_text(ctx.texts[i], 200)} for i in order]
    st.markdown("**Where the models disagree most**: ranked by how far each document's 10 nearest "
                "neighbours move between the two models (mean rank displacement within the top 50; "
                "1 = none of them is within the other model's top 50). Click a row to compare its "
                "two neighbour lists.")
    key = f"atlas-cmp-low-{ctx.emb_id}-{with_what}"
    low_idx = [r["idx"] for r in low]

    def pick() -> None:
        row = picked_row(key)
        if row is not None:
            st.session_state[DOC_KEY] = low_idx[row]
            ctx.set_focus(low_idx[row])

    st.dataframe(pd.DataFrame(low), key=key, on_select=pick, selection_mode="single-row", hide_index=True,
                 width="stretch", height=320,
                 column_config={"idx": st.column_config.NumberColumn("doc", format="%d", width="small"),
                                "displacement": st.column_config.ProgressColumn(
                                    "rank displacement", min_value=0.0, max_value=1.0, format="%.2f"),
                                "overlap@10": st.column_config.ProgressColumn(
                                    "overlap@10", min_value=0.0, max_value=1.0, format="%.1f"),
                                "text": st.column_config.TextColumn("text", width="large")})
    return low_idx


def side_by_side(ctx: AtlasContext, doc: int, emb_b_id: int, name_b: str) -> None:
    """The 10 nearest neighbours of `doc` under both models, side by side (best first); ✓ marks one that the
    other model has among its 10 too."""
    rows = neighbour_lists(ctx.X, shared_matrix(emb_b_id), doc, k=10)
    labels = ctx.shown_labels
    st.markdown(f"**Document #{doc}**" + (f" · *{display_text(labels[doc])}*"
                                          if labels is not None and labels[doc] is not None else "")
                + f": {display_text(short_text(ctx.texts[doc], 300))}")

    def one_side(prefix: str) -> pd.DataFrame:
        return pd.DataFrame({
            "rank": [r["rank"] for r in rows],
            "both": ["✓" if r[f"{prefix}_shared"] else "" for r in rows],
            "cosine": [r[f"{prefix}_cosine"] for r in rows],
            "label": [None if labels is None else labels[r[f"{prefix}_idx"]] for r in rows],
            "text": [short_text(ctx.texts[r[f"{prefix}_idx"]], 200) for r in rows],
            "doc": [r[f"{prefix}_idx"] for r in rows]})

    config = {"both": st.column_config.TextColumn("both", width="small",
                                                  help="✓: the other model has it among its 10 nearest too"),
              "cosine": st.column_config.NumberColumn("cosine", format="%.3f", width="small"),
              "text": st.column_config.TextColumn("text", width="large"),
              "doc": st.column_config.NumberColumn("doc", format="%d", width="small")}
    left_col, right_col = st.columns(2)
    for col, prefix, name in ((left_col, "a", ctx.model), (right_col, "b", name_b)):
        with col:
            st.markdown(f"Nearest under **{display_text(name)}**")
            st.dataframe(one_side(prefix), hide_index=True, width="stretch", column_config=config,
                         column_order=("both", "cosine", "label", "text", "doc"),
                         key=f"atlas-cmp-lists-{prefix}-{doc}-{emb_b_id}")
