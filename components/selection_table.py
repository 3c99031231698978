"""The selected documents as a table (text, label, metadata) with CSV and JSONL downloads and a bookmark form;
and the session's bookmarks, filtered by tag. Clicking a row focuses that document."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import pandas as pd
import streamlit as st

from components.atlas_context import AtlasContext
from embedlab.document_export import bookmark_documents, selection_frame, to_csv_bytes, to_jsonl_bytes
from embedlab.text_display import display_text, short_text
from embedlab.workspace import Workspace

MAX_TABLE_ROWS = 5_000


def _picked(key: str, idxs: Sequence[int], on_focus: Callable[[int], None]) -> None:
    state = st.session_state.get(key)
    rows = list(state.selection.rows) if state is not None else []
    if rows:
        on_focus(int(idxs[rows[0]]))


def selection_table(idxs: Sequence[int], *, ws: Workspace, session_id: int, corpus_id: int, corpus_name: str,
                    on_focus: Callable[[int], None], key: str = "atlas-sel",
                    label_names: Mapping[str, str] | None = None) -> None:
    """The selected documents: table (click a row to focus it), downloads, bookmark form.

    The table shows the first MAX_TABLE_ROWS documents; the downloads hold all and are built only when
    clicked (on their own connection, off the script thread)."""
    n = len(idxs)
    shown = ws.documents(corpus_id, list(idxs[:MAX_TABLE_ROWS]))
    frame = selection_frame(shown)
    if not frame.empty:
        frame["text"] = frame["text"].map(lambda t: short_text(t, 300))
        if label_names and "label" in frame.columns:
            frame["label"] = frame["label"].map(lambda v: v if v is None else label_names.get(str(v)) or v)
    table_key = f"{key}-table-{n}-{hash(tuple(d['idx'] for d in shown[:50]))}"
    shown_idx = [int(d["idx"]) for d in shown]
    st.dataframe(frame, key=table_key, on_select=lambda: _picked(table_key, shown_idx, on_focus),
                 selection_mode="single-row", hide_index=True, width="stretch", height=min(400, 38 + 35 * n),
                 column_config={"idx": st.column_config.NumberColumn("doc", format="%d", width="small"),
                                "text": st.column_config.TextColumn("text", width="large")})
    if n > MAX_TABLE_ROWS:
        st.caption(f"Showing the first {MAX_TABLE_ROWS:,} of {n:,} selected documents; the downloads hold all.")
    all_idx = [int(i) for i in idxs]

    def all_docs() -> list[dict]:
        with Workspace.open(ws.path) as own:
            return own.documents(corpus_id, all_idx)

    c1, c2, c3 = st.columns([1, 1, 4], vertical_alignment="bottom")
    stem = f"{corpus_name}-selection-{n}"
    c1.download_button("⬇ CSV", lambda: to_csv_bytes(all_docs()), file_name=f"{stem}.csv", mime="text/csv",
                       key=f"{key}-csv", on_click="ignore")
    c2.download_button("⬇ JSONL", lambda: to_jsonl_bytes(all_docs()), file_name=f"{stem}.jsonl",
                       mime="application/jsonl", key=f"{key}-jsonl", on_click="ignore")
    with c3.popover(f"🔖 Bookmark {n:,} document{'s' if n != 1 else ''}"):
        bookmark_form(ws, session_id, corpus_id, all_idx, key=f"{key}-bm")


def bookmark_form(ws: Workspace, session_id: int, corpus_id: int, idxs: Sequence[int], *, key: str) -> None:
    with st.form(key, clear_on_submit=True, border=False):
        tag = st.text_input("Tag", max_chars=100, placeholder="e.g. mislabelled")
        note = st.text_area("Note", max_chars=2000, height=80)
        if st.form_submit_button("Save bookmark", type="primary"):
            count = ws.add_bookmarks(session_id, corpus_id, idxs, tag=tag, note=note)
            st.toast(f"Bookmarked {count} document{'s' if count != 1 else ''}"
                     + (f" as {display_text(repr(tag.strip()))}" if tag.strip() else ""))


def bookmarks_panel(*, ws: Workspace, session_id: int, corpus_id: int, texts: Sequence[str], labels: Sequence | None,
                    on_focus: Callable[[int], None], key: str = "atlas-bookmarks") -> list[dict]:
    """The bookmarks of this corpus in this session, filtered by tag; click one to focus it."""
    tags = ws.bookmark_tags(session_id, corpus_id)
    if not tags:
        st.caption("No bookmarks yet: select documents on the map (or focus one) and bookmark them with a tag.")
        return []
    all_tags = "(all tags)"
    c1, c2 = st.columns([2, 3], vertical_alignment="bottom")
    picked = c1.selectbox("Filter by tag", [all_tags, *tags], key=f"{key}-tag",
                          format_func=lambda t: "(no tag)" if t == "" else t)
    marks = ws.bookmarks(session_id, corpus_id, tag=None if picked == all_tags else picked)
    rows = [{"idx": b["idx"], "tag": b["tag"], "note": b["note"],
             "label": None if labels is None else labels[b["idx"]],
             "text": short_text(texts[b["idx"]], 200)} for b in marks if 0 <= b["idx"] < len(texts)]
    table_key = f"{key}-table-{picked}-{len(rows)}"
    idxs = [r["idx"] for r in rows]
    st.dataframe(pd.DataFrame(rows), key=table_key, on_select=lambda: _picked(table_key, idxs, on_focus),
                 selection_mode="single-row", hide_index=True, width="stretch",
                 column_config={"idx": st.column_config.NumberColumn("doc", format="%d", width="small")})
    c2.download_button("⬇ Bookmarks (JSONL)", to_jsonl_bytes(bookmark_documents(marks, texts, labels)),
                       file_name="bookmarks.jsonl", key=f"{key}-dl", on_click="ignore")
    with st.expander("Remove a bookmark"):
        options = [(r["idx"], r["tag"]) for r in rows]
        if options:
            gone = st.selectbox("Bookmark", options, key=f"{key}-rm",
                                format_func=lambda o: f"#{o[0]} · {o[1] or '(no tag)'}")
            if st.button("Remove", key=f"{key}-rm-btn"):
                ws.delete_bookmark(session_id, corpus_id, gone[0], gone[1])
                st.rerun()
    return rows


def selection_view(ctx: AtlasContext) -> None:
    """The Atlas's "☑️ Selection" tab."""
    if not ctx.selected:
        st.caption("Nothing selected: use the box or lasso tool of the map (top right of the map), "
                   "or select a cluster or the search hits.")
    else:
        selection_table(ctx.selected, ws=ctx.ws, session_id=ctx.session_id, corpus_id=ctx.corpus.id,
                        corpus_name=ctx.corpus.name, on_focus=ctx.set_focus, label_names=ctx.label_names)


def bookmarks_view(ctx: AtlasContext) -> None:
    """The Atlas's "🔖 Bookmarks" tab."""
    bookmarks_panel(ws=ctx.ws, session_id=ctx.session_id, corpus_id=ctx.corpus.id, texts=ctx.texts,
                    labels=ctx.shown_labels, on_focus=ctx.set_focus)
