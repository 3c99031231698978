"""The neighbour panel: the focused document shown literally, and its k nearest neighbours in the original
embedding space, each with its cosine, label, a flag when the map puts it far away, and enough of its text to
read (the full text one click away). The Focus button moves the focus to a neighbour."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import streamlit as st

from embedlab.nearest_documents import neighbour_rows
from embedlab.text_display import display_text

FULL_TEXT_CHARS = 20_000  # a popover shows at most this much of one document


def neighbour_panel(*, X: np.ndarray, coords: np.ndarray | None, focus: int, doc: dict,
                    texts: Sequence[str], labels: Sequence[Any] | None, on_focus: Callable[[int], None],
                    on_clear: Callable[[], None] | None = None, key: str = "atlas-nb",
                    height: int = 620) -> list[dict]:
    """Render the panel for document `focus` (`doc` as from `load_documents`, its label as shown); return the
    neighbour rows (see `neighbour_rows`)."""
    head = f"**Document #{focus}**"
    if doc.get("label") is not None:
        head += f" · label *{display_text(doc['label'])}*"
    cols = st.columns([6, 1], vertical_alignment="center")
    cols[0].markdown(head)
    if on_clear is not None:
        cols[1].button("✕", key=f"{key}-clear", help="Clear the focus", on_click=on_clear)
    with st.container(height=150, border=True):
        st.text(doc.get("text", ""))
    meta = {"doc_id": doc.get("doc_id"), **(doc.get("meta") or {})}
    st.caption(display_text(" · ".join(f"{k}: {v}" for k, v in meta.items() if v not in (None, ""))[:300]))

    k = st.slider("Neighbours (k)", 5, 50, 10, key=f"{key}-k")
    rows = neighbour_rows(X, coords, focus, k=k, labels=labels, texts=texts)
    n_far = sum(r["far on map"] for r in rows)
    if n_far:
        st.caption(f"⚠ {n_far} of {len(rows)} neighbours lie far away on the map (farther than 90 % of all "
                   "documents): the map tore their neighbourhood apart.")
    else:
        st.caption("Nearest in the original embedding space (cosine), best first.")
    with st.container(height=height, border=False):
        for r in rows:
            neighbour_card(r, texts=texts, on_focus=on_focus, key=f"{key}-{focus}")
    return rows


def neighbour_card(row: dict, *, texts: Sequence[str], on_focus: Callable[[int], None], key: str) -> None:
    """One neighbour: rank, cosine, label and far-on-map flag with a Focus button; its text wrapped, and the full
    text behind a popover when it was cut."""
    idx = int(row["idx"])
    with st.container(border=True):
        line = f"**{row['rank']}.** cosine **{row['cosine']:.3f}**"
        if row.get("label") is not None:
            line += f" · *{display_text(row['label'])}*"
        if row.get("far on map"):
            line += " · :orange[⚠ far on map]"
        line += f" · #{idx}"
        head, button = st.columns([4, 1.4], vertical_alignment="center")
        head.markdown(line, help="Far on the map although near in the original space" if row.get("far on map")
                      else None)
        button.button("Focus", key=f"{key}-focus-{idx}", on_click=on_focus, args=(idx,), width="stretch",
                      help=f"Move the focus to document #{idx}")
        st.markdown(display_text(row.get("text", "")))
        if row.get("cut"):
            with st.popover("Full text"):
                full = texts[idx]
                st.text(full if len(full) <= FULL_TEXT_CHARS else full[:FULL_TEXT_CHARS] + " …")
