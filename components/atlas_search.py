"""The Atlas's search: a query row (semantic: the corpus's model embeds the query; keyword: full-text search) whose
hits are marked on the map, and the "🔎 Search hits" tab that lists them."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from components.atlas_context import AtlasContext
from components.data import semantic_search
from components.state import focus_on_pick
from embedlab.errors import UserError
from embedlab.text_display import display_text, marked_to_markdown, marked_to_plain, short_text
from embedlab.workspace import CorpusInfo, Workspace

QUERY_KEY, MODE_KEY = "atlas_query", "atlas_search_mode"
SEMANTIC, KEYWORD = "Semantic", "Keyword"
N_SEMANTIC, N_KEYWORD = 25, 50


@dataclass
class Search:
    query: str = ""
    mode: str = SEMANTIC
    hits: list[dict] = field(default_factory=list)   # idx, score, label (as named), text


def search_row(ws: Workspace, corpus: CorpusInfo, emb_id: int, model: str, shown_labels, names: dict,
               texts) -> Search:
    """The search box and mode; the hits of the query (an error is shown, and no hits)."""
    s1, s2 = st.columns([5, 2], vertical_alignment="bottom")
    query = s1.text_input("Search", key=QUERY_KEY, placeholder="Search the corpus, then press Enter",
                          label_visibility="collapsed")
    mode = s2.segmented_control("Search mode", [SEMANTIC, KEYWORD], default=SEMANTIC, key=MODE_KEY, required=True,
                                label_visibility="collapsed")
    search = Search(query, mode)
    if not query.strip():
        return search
    try:
        if mode == SEMANTIC:
            idx, scores = semantic_search(corpus, emb_id, model, query.strip(), N_SEMANTIC)
            search.hits = [{"idx": i, "score": round(s, 4), "label": None if shown_labels is None else shown_labels[i],
                            "text": short_text(texts[i], 200)} for i, s in zip(idx, scores)]
        else:
            search.hits = [{"idx": h["idx"], "score": round(h["score"], 3),
                            "label": None if h["label"] is None else names.get(str(h["label"])) or h["label"],
                            "text": marked_to_plain(h["snippet"])}
                           for h in ws.keyword_search(corpus.id, query, N_KEYWORD)]
    except UserError as exc:
        st.error(display_text(exc))
    return search


def hits_view(ctx: AtlasContext, search: Search) -> None:
    """The hits as a table (click one to focus it) and a button that selects them all."""
    if not search.query.strip():
        st.caption("Type a query above: **Semantic** embeds it with the corpus's model and finds the nearest "
                   "documents; **Keyword** uses full-text search (matches shown in « »).")
        return
    if not search.hits:
        st.caption("No hits.")
        return
    if search.mode == KEYWORD:
        best = ctx.ws.keyword_search(ctx.corpus.id, search.query, 1)
        if best:
            st.markdown(f"Best match, #{best[0]['idx']}: {marked_to_markdown(best[0]['snippet'])}")
    key = f"atlas-hits-{search.mode}-{abs(hash(search.query))}"
    idxs = [h["idx"] for h in search.hits]
    st.dataframe(pd.DataFrame(search.hits), key=key, on_select=focus_on_pick(key, idxs, ctx.set_focus),
                 selection_mode="single-row", hide_index=True, width="stretch",
                 column_config={"idx": st.column_config.NumberColumn("doc", format="%d", width="small"),
                                "score": st.column_config.NumberColumn(
                                    "cosine" if search.mode == SEMANTIC else "bm25", format="%.3f", width="small"),
                                "text": st.column_config.TextColumn("text", width="large")})
    st.button(f"Select these {len(search.hits)} hits on the map", key="atlas_hits_select",
              on_click=lambda: ctx.set_selection(idxs))
