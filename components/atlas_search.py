"""The Atlas's search: a query row (semantic: the corpus's model embeds the query; keyword: full-text search) whose
hits are marked on the map, and the "🔎 Search hits" tab that lists them, each one judged in place for the typed
query (relevant / partly / not, by a click or with the keyboard: `components.judge_buttons`)."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from components.atlas_context import AtlasContext
from components.data import semantic_search
from components.judge_buttons import JudgeItem, JudgeScope, judge_list
from components.state import focus_on_pick
from embedlab.errors import UserError
from embedlab.judgments import Query
from embedlab.text_display import display_text, marked_to_markdown, marked_to_plain, short_text
from embedlab.workspace import CorpusInfo, Workspace

QUERY_KEY, MODE_KEY = "atlas_query", "atlas_search_mode"
SEMANTIC, KEYWORD = "Semantic", "Keyword"
N_SEMANTIC, N_KEYWORD = 25, 50
HITS_LIST = "atlas-hits"          # the hits' judge list


@dataclass
class Search:
    query: str = ""
    mode: str = SEMANTIC
    hits: list[dict] = field(default_factory=list)   # idx, score, label (as named), text


def search_row(ws: Workspace, corpus: CorpusInfo, emb_id: int, model: str, shown_labels, names: dict,
               texts) -> Search:
    """The search box and mode; the hits of the query (an error is shown, and no hits). Semantic search is offered
    only when the model can encode a query (imported vectors need their query encoder: the reason is shown)."""
    no_query = ws.query_problem(corpus, model)
    modes = [KEYWORD] if no_query else [SEMANTIC, KEYWORD]
    if st.session_state.get(MODE_KEY) not in (None, *modes):
        st.session_state[MODE_KEY] = KEYWORD
    s1, s2 = st.columns([5, 2], vertical_alignment="bottom")
    query = s1.text_input("Search", key=QUERY_KEY, placeholder="Search the corpus, then press Enter",
                          label_visibility="collapsed")
    mode = s2.segmented_control("Search mode", modes, default=modes[0], key=MODE_KEY, required=True,
                                label_visibility="collapsed",
                                help=display_text(f"Semantic search is off: {no_query}") if no_query else None)
    if no_query:
        st.caption(f"Semantic search is off: {display_text(no_query)}")
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


def hit_items(ctx: AtlasContext, search: Search) -> list[JudgeItem]:
    """The hits as a judge list: the typed text is the query (the same judgments in both search modes)."""
    try:
        query = Query.typed(search.query)
    except UserError as exc:
        st.caption(f"These hits cannot be judged: {display_text(exc)}")
        return []
    target = JudgeScope(ctx.session_id, ctx.corpus.id).target(query)
    what = "cosine" if search.mode == SEMANTIC else "bm25"
    return [JudgeItem(target, int(h["idx"]), f"**{n}.** #{int(h['idx'])} · {what} {h['score']:.3f}"
                      + (f" · *{display_text(h['label'])}*" if h.get("label") is not None else ""), str(h["text"]))
            for n, h in enumerate(search.hits, start=1)]


def hits_view(ctx: AtlasContext, search: Search) -> None:
    """The hits to judge (relevant / partly / not, a click each or the keyboard; Focus moves the map to one), the
    same hits as a table (click one to focus it) and a button that selects them all."""
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
    judge_list(hit_items(ctx, search), key=HITS_LIST, what="Hit", on_focus=ctx.set_focus)
    with st.expander(f"The {len(search.hits)} hits as a table (click a row to focus it)"):
        _hits_table(ctx, search, key, idxs)
    st.button(f"Select these {len(search.hits)} hits on the map", key="atlas_hits_select",
              on_click=lambda: ctx.set_selection(idxs))


def _hits_table(ctx: AtlasContext, search: Search, key: str, idxs: list[int]) -> None:
    st.dataframe(pd.DataFrame(search.hits), key=key, on_select=focus_on_pick(key, idxs, ctx.set_focus),
                 selection_mode="single-row", hide_index=True, width="stretch",
                 column_config={"idx": st.column_config.NumberColumn("doc", format="%d", width="small"),
                                "score": st.column_config.NumberColumn(
                                    "cosine" if search.mode == SEMANTIC else "bm25", format="%.3f", width="small"),
                                "text": st.column_config.TextColumn("text", width="large")})
