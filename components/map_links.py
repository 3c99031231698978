"""From a lab's run to the same run on the Atlas: which of the session's corpora can show it, and a button that
opens the Atlas's evaluation tab with the run (and query or detector) already picked."""
from __future__ import annotations

from typing import Any, Mapping

import streamlit as st

from components.atlas_context import ATLAS_TAB_KEY


def corpora_showing_run(db: Any, path: str, run_id: int, created_at: str, session_id: int) -> list[str]:
    """Names of the session's corpora whose map can show retrieval run `run_id` (`embedlab.map_retrieval.fit_run`);
    recomputed when the session's corpora change."""
    from storage.corpora import list_corpora

    corpora = tuple((c.id, c.name, c.content_hash) for c in list_corpora(db, session_id))
    return _corpora_showing_run(path, run_id, created_at, corpora)


@st.cache_data(max_entries=64, show_spinner=False)
def _corpora_showing_run(path: str, run_id: int, created_at: str,
                         corpora: tuple[tuple[int, str, str], ...]) -> list[str]:
    from embedlab.map_retrieval import fit_run
    from storage import connect
    from storage.sessions import load_run

    db = connect(path)
    try:
        run = load_run(db, run_id)
        names = []
        for corpus_id, name, _ in corpora:
            ids = [r[0] for r in db.execute("SELECT doc_id FROM documents WHERE corpus_id = ? ORDER BY idx",
                                            [corpus_id])]
            if fit_run(run, corpus_id=corpus_id, corpus_name=name, doc_ids=ids).fits:
                names.append(name)
        return names
    finally:
        db.close()


def corpus_with_most_ood(db: Any, run: Mapping[str, Any]) -> str | None:
    """The stored corpus holding most of an OOD run's OOD test documents (the map where "why OOD" has most to
    show), or None when none of its corpora is stored any more."""
    from collections import Counter

    from embedlab.ood.run_reading import resolve_run_corpora

    d = run.get("details") or {}
    stored = resolve_run_corpora(db, dict(run))
    counts = Counter(int(cid) for (cid, _), ood in zip(d.get("test_idx") or [], d.get("is_ood") or [])
                     if ood and stored.get(int(cid)) is not None)
    if not counts:
        counts = Counter(int(cid) for cid, _ in d.get("test_idx") or [] if stored.get(int(cid)) is not None)
    return stored[counts.most_common(1)[0][0]].name if counts else None


def open_on_atlas_button(label: str, *, corpus: str, tab: str, state: Mapping[str, Any], key: str,
                         help: str | None = None) -> None:
    """A button that opens the Atlas on `corpus`, in `tab`, with the given widget values (the view's keys)."""
    if st.button(label, key=key, help=help):
        st.session_state.update({"atlas_corpus": corpus, ATLAS_TAB_KEY: tab, **state})
        st.switch_page("pages/atlas.py")
