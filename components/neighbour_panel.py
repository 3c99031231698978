"""The neighbour panel: the focused document shown literally, and its k nearest neighbours in the original
embedding space, each with its cosine, label, a flag when the map puts it far away, and enough of its text to
read (the full text one click away). The Focus button moves the focus to a neighbour. Given a `JudgeScope`, each
neighbour can be judged (relevant / partly / not, for the focused document as the query) by a click on its card or
with the keyboard (J/K move, 2/1/0 grade, X clears: `components.judge_buttons`)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import streamlit as st

from components.judge_buttons import (
    Grades,
    JudgeItem,
    JudgeScope,
    grades_for,
    judge_buttons,
    keyboard_bar,
    keys_here_button,
    owns_keys,
    set_cursor,
    take_keys,
)
from embedlab.ann import IvfIndex
from embedlab.judgments import Query
from embedlab.nearest_documents import neighbour_rows
from embedlab.text_display import display_text

FULL_TEXT_CHARS = 20_000  # a popover shows at most this much of one document
PANEL_KEY = "atlas-nb"    # the Atlas's panel: its widgets' prefix and its judge list's key


def neighbour_panel(*, X: np.ndarray, coords: np.ndarray | None, focus: int, doc: dict,
                    texts: Sequence[str], labels: Sequence[Any] | None, on_focus: Callable[[int], None],
                    on_clear: Callable[[], None] | None = None, key: str = PANEL_KEY,
                    height: int = 620, judging: JudgeScope | None = None,
                    index: IvfIndex | None = None) -> list[dict]:
    """Render the panel for document `focus` (`doc` as from `load_documents`, its label as shown); return the
    neighbour rows (see `neighbour_rows`). With `judging`, the neighbours are judged for the focused document, and
    the panel takes the page's keyboard unless another list took it. With `index` (a large corpus) the neighbours
    are approximate, and the panel says so."""
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
    rows = neighbour_rows(X, coords, focus, k=k, labels=labels, texts=texts, index=index)
    n_far = sum(r["far on map"] for r in rows)
    if index is not None:
        st.caption(f"≈ Approximate neighbours: {len(X):,} documents are searched through an index (the "
                   f"{index.params['nprobe']} of {index.params['nlist']:,} groups nearest to this document), which "
                   "may miss a true neighbour now and then.")
    if n_far:
        st.caption(f"⚠ {n_far} of {len(rows)} neighbours lie far away on the map (farther than 90 % of all "
                   "documents): the map tore their neighbourhood apart.")
    else:
        st.caption("Nearest in the original embedding space (cosine), best first.")
    items = judge_items(judging, focus, rows) if judging is not None else []
    grades = grades_for(items)
    cursor = None
    if items and owns_keys(key, default=True):
        cursor = keyboard_bar(items, grades, key=key, what="Neighbour")
    elif items:
        keys_here_button(key)
    with st.container(height=height, border=False):
        for n, r in enumerate(rows):
            judged = (items, n, grades, key) if items else None
            neighbour_card(r, texts=texts, on_focus=on_focus, key=f"{key}-{focus}", judged=judged,
                           cursor=cursor == n)
    return rows


def judge_items(scope: JudgeScope, focus: int, rows: Sequence[dict]) -> list[JudgeItem]:
    """The neighbours as a judge list: the focused document is the query."""
    target = scope.target(Query.document(focus))
    return [JudgeItem(target, int(r["idx"]), f"**{r['rank']}.** #{int(r['idx'])} · cosine {r['cosine']:.3f}",
                      str(r.get("text", ""))) for r in rows]


def neighbour_card(row: dict, *, texts: Sequence[str], on_focus: Callable[[int], None], key: str,
                   judged: tuple[Sequence[JudgeItem], int, Grades, str] | None = None, cursor: bool = False) -> None:
    """One neighbour: rank, cosine, label and far-on-map flag with a Focus button; its text wrapped, and the full
    text behind a popover when it was cut; with `judged` (the judge list, this card's place in it, the list's
    grades and its key) the grade buttons, marked when the keyboard's cursor is on it."""
    idx = int(row["idx"])
    with st.container(border=True, key=f"{key}-card-{idx}"):
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
        if judged is not None:
            items, n, grades, list_key = judged

            def here() -> None:
                take_keys(list_key)
                set_cursor(list_key, items, n)

            judge_buttons(items[n].target, idx, grades, key=f"{key}-judge-{idx}", on_click=here, cursor=cursor)
