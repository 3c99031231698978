"""The neighbour panel: the focused document shown literally, and its k nearest neighbours in the original
embedding space with cosine scores; neighbours that the map puts far away are flagged. Clicking a
neighbour moves the focus to it."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from embedlab.nearest_documents import neighbour_rows
from embedlab.text_display import escape_markdown

FOCUS_KEY = "atlas_focus"


def _picked(key: str, rows: list[dict], on_focus: Callable[[int], None]) -> None:
    state = st.session_state.get(key)
    picked = list(state.selection.rows) if state is not None else []
    if picked:
        on_focus(int(rows[picked[0]]["idx"]))


def neighbour_panel(*, X: np.ndarray, coords: np.ndarray | None, focus: int, doc: dict,
                    texts: Sequence[str], labels: Sequence[Any] | None, on_focus: Callable[[int], None],
                    on_clear: Callable[[], None] | None = None, key: str = "atlas-nb") -> list[dict]:
    """Render the panel for document `focus` (`doc` as from `load_documents`); return the neighbour rows."""
    head = f"**Document #{focus}**"
    if doc.get("label") is not None:
        head += f" · label *{escape_markdown(str(doc['label']))}*"
    cols = st.columns([6, 1], vertical_alignment="center")
    cols[0].markdown(head)
    if on_clear is not None:
        cols[1].button("✕", key=f"{key}-clear", help="Clear the focus", on_click=on_clear)
    with st.container(height=180, border=True):
        st.text(doc.get("text", ""))
    meta = {"doc_id": doc.get("doc_id"), **(doc.get("meta") or {})}
    st.caption(" · ".join(f"{k}: {v}" for k, v in meta.items() if v not in (None, ""))[:300])

    k = st.slider("Neighbours (k)", 5, 50, 10, key=f"{key}-k")
    rows = neighbour_rows(X, coords, focus, k=k, labels=labels, texts=texts)
    n_far = sum(r["far on map"] for r in rows)
    table_key = f"{key}-table-{focus}-{k}"
    frame = pd.DataFrame(rows, columns=["rank", "idx", "cosine", "label", "far on map", "text"])
    frame["far on map"] = frame["far on map"].map({True: "⚠ far", False: ""})
    st.dataframe(frame, key=table_key, on_select=lambda: _picked(table_key, rows, on_focus),
                 selection_mode="single-row", hide_index=True, width="stretch",
                 height=min(420, 38 + 35 * len(rows)),
                 column_order=("cosine", "far on map", "label", "text", "idx") if n_far else
                 ("cosine", "label", "text", "idx"),
                 column_config={
                     "idx": st.column_config.NumberColumn("doc", width="small", format="%d"),
                     "cosine": st.column_config.NumberColumn("cosine", format="%.3f", width="small"),
                     "label": st.column_config.TextColumn("label", width="small"),
                     "far on map": st.column_config.TextColumn("map", width="small",
                                                               help="Far on the 2-D map although near in the "
                                                                    "original space"),
                     "text": st.column_config.TextColumn("text", width="large"),
                 })
    if n_far:
        st.caption(f"⚠ {n_far} of {len(rows)} neighbours lie far away on the map (farther than 90 % of all "
                   "documents): the map tore their neighbourhood apart. Click a row to move the focus.")
    else:
        st.caption("Nearest in the original embedding space (cosine). Click a row to move the focus.")
    return rows
