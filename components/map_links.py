"""From a lab's run to the same run on the Atlas: the Atlas view that shows it (on which of the session's corpora,
in which tab, with the run and its query or detector picked), and a button that opens it (`open_atlas`, the same
way a share link opens the Atlas)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import streamlit as st

from components.atlas_state import OOD_TAB, RETRIEVAL_TAB, AtlasView, open_atlas, tab_name
from components.data import corpora_showing_run
from components.state import get_workspace
from embedlab.runs import OODRun, RunHeader


def retrieval_on_atlas(run: RunHeader, *, methods: Sequence[str], query: str) -> AtlasView | None:
    """Query `query` of a retrieval run with `methods`' hits, on the first of the session's corpora whose map can
    show the run (`embedlab.map_retrieval.fit_run`); None when none can."""
    shown_on = corpora_showing_run(run.id, run.created_at, run.session_id)
    if not shown_on:
        return None
    return AtlasView(corpus=shown_on[0], tab=tab_name(RETRIEVAL_TAB), run=int(run.id),
                     methods=tuple(dict.fromkeys(methods)), query=str(query))


def corpus_with_most_ood(run: OODRun) -> str | None:
    """The stored corpus holding most of an OOD run's OOD test documents (the map where "why OOD" has most to
    show), or None when none of its corpora is stored any more."""
    stored = get_workspace().run_corpora(run)
    counts = Counter(int(cid) for (cid, _), ood in zip(run.test_idx, run.is_ood)
                     if ood and stored.get(int(cid)) is not None)
    if not counts:
        counts = Counter(int(cid) for cid, _ in run.test_idx if stored.get(int(cid)) is not None)
    return stored[counts.most_common(1)[0][0]].name if counts else None


def ood_on_atlas(run: OODRun, *, detector: str) -> AtlasView | None:
    """An OOD run's `detector` score as a colour layer on the corpus with most of its OOD test documents; None when
    none of its corpora is stored any more."""
    corpus = corpus_with_most_ood(run)
    if corpus is None:
        return None
    return AtlasView(corpus=corpus, tab=tab_name(OOD_TAB), run=int(run.id), detector=detector)


def open_on_atlas_button(label: str, view: AtlasView, *, key: str, help: str | None = None) -> None:
    """A button that opens the Atlas at `view`."""
    if st.button(label, key=key, help=help):
        open_atlas(view)
