"""The Atlas's state in one place: the session-state keys of its view (corpus, model, colour, focus, selection, tab
and the tab's run), the view as a value (`AtlasView`), and the one way to put a view on the Atlas (`show_view`,
`open_atlas`), used by share links (the URL) and by the labs' "open on the Atlas" buttons alike.

The URL owns the view (`components.share_link`): a view comes from the URL or from a lab's button, is settled
against what exists (`settle_view`: a value that does not exist for the corpus gives way to the first choice, and a
toast says so), then the page's widgets draw from these keys and the URL follows them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import streamlit as st

from components.atlas_colour import colour_choices
from components.data import ood_brief, run_fit_for
from components.state import get_workspace, require_session
from embedlab.map_retrieval import ORDERS
from embedlab.text_display import display_text
from embedlab.workspace import CorpusInfo, Workspace

CORPUS_KEY = "atlas_corpus"
MODEL_KEY = "atlas_model"
COLOUR_KEY = "atlas_colour"
FOCUS_KEY = "atlas_focus"
SELECTION_KEY = "atlas_selection"
SCOPE_KEY = "atlas_scope"                        # (corpus id, model) the focus, selection and map settings are of
TAB_KEY = "atlas_tab"
RETRIEVAL_RUN_KEY, FAILURE_RUN_KEY, OOD_RUN_KEY = "atlas_rmap_run", "atlas_fail_run", "atlas_oodx_run"
RETRIEVAL_ORDER_KEY = "atlas_rmap_order"

# The Atlas's tabs (labels as shown); a link names one by its words, without the emoji (`tab_name`).
ATLAS_TABS = ["🔎 Search hits", "☑️ Selection", "🧩 Clusters", "🔖 Bookmarks", "✍️ Judgments", "📏 Quality",
              "⚖️ Compare", "🎯 Retrieval", "🗺️ Failure regions", "🗜️ Compression", "🚨 Why OOD", "🩺 Diagnostics"]
RETRIEVAL_TAB, FAILURE_TAB, OOD_TAB = "🎯 Retrieval", "🗺️ Failure regions", "🚨 Why OOD"
SEARCH_TAB, JUDGMENTS_TAB = "🔎 Search hits", "✍️ Judgments"
RUN_KEYS = {RETRIEVAL_TAB: RETRIEVAL_RUN_KEY, FAILURE_TAB: FAILURE_RUN_KEY, OOD_TAB: OOD_RUN_KEY}  # tab -> its run


def retrieval_methods_key(run_id: int) -> str:
    return f"atlas_rmap_methods_{run_id}"


def retrieval_query_key(run_id: int) -> str:
    return f"atlas_rmap_query_{run_id}"


def ood_detector_key(run_id: int) -> str:
    return f"atlas_oodx_detector_{run_id}"


def tab_name(label: str) -> str:
    """A tab's words without its emoji: "🗺️ Failure regions" -> "Failure regions"."""
    return label.split(" ", 1)[1] if " " in label else label


def tab_label(name: str | None) -> str | None:
    """The tab whose words are `name` (case-insensitive), or None."""
    wanted = (name or "").strip().casefold()
    return next((t for t in ATLAS_TABS if tab_name(t).casefold() == wanted), None)


@dataclass(frozen=True)
class AtlasView:
    """What the Atlas shows. A share link carries corpus to run; a lab's button may add the Retrieval tab's query
    and methods or the Why OOD tab's detector."""
    corpus: str | None = None
    model: str | None = None
    colour: str | None = None
    focus: int | None = None
    selection: tuple[int, ...] = ()
    tab: str | None = None             # by its words ("Failure regions")
    run: int | None = None             # the run of the tab (Retrieval, Failure regions, Why OOD)
    query: str | None = None           # Retrieval: the query placed on the map
    methods: tuple[str, ...] = ()      # Retrieval: the methods whose hits are shown
    order: str | None = None           # Retrieval: the order to step through the queries (default: disagreement)
    detector: str | None = None        # Why OOD: the detector whose score colours the map


# --- what changes the view ---------------------------------------------------------------------------------------


def set_focus(idx: int | None) -> None:
    st.session_state[FOCUS_KEY] = None if idx is None else int(idx)


def set_selection(indices: Iterable[int]) -> None:
    """Select documents (a box or lasso on a map, a table, a cluster, the hits, or clear): every map outlines
    them through its layer."""
    st.session_state[SELECTION_KEY] = [int(i) for i in indices]


select_on_map = set_selection     # the main map's box and lasso


def enter_corpus(corpus_id: int) -> None:
    """Another corpus: the focus and selection (rows of the old one) go; the map settings are rebuilt."""
    ss = st.session_state
    if (ss.get(SCOPE_KEY) or (None,))[0] != corpus_id:
        ss[FOCUS_KEY] = None
        ss[SELECTION_KEY] = []
        ss[SCOPE_KEY] = (corpus_id, None)


def _toast(message: str) -> None:
    st.toast(message, icon=":material/warning:")


def _quoted(value: Any) -> str:
    return f"“{display_text(value)}”"


def fall_back(key: str, options: Sequence[Any], say: Callable[[str, str], str], *, quoted: bool = True) -> None:
    """A value of widget `key` that is not among `options` gives way to the first option, never silently: a toast
    says `say(old, new)` (both shown as inert text, in quotes unless `quoted` is False). No value: nothing to do
    (the widget shows the first option)."""
    ss = st.session_state
    if key not in ss or ss[key] in options:
        return
    old = ss[key]
    if options:
        ss[key] = options[0]
        shown = _quoted if quoted else display_text
        _toast(say(shown(old), shown(options[0])))
    else:
        del ss[key]


def settle_corpus(corpora: Sequence[CorpusInfo]) -> CorpusInfo:
    """The corpus on screen: the one named (falling back to the first, visibly); another corpus than before clears
    the focus and selection."""
    names = [c.name for c in corpora]
    fall_back(CORPUS_KEY, names, lambda old, new: f"No corpus {old} in this session: showing {new}.")
    corpus = corpora[names.index(st.session_state.get(CORPUS_KEY, names[0]))]
    enter_corpus(corpus.id)
    return corpus


def settle_model(corpus: CorpusInfo, models: Sequence[str]) -> None:
    fall_back(MODEL_KEY, models, lambda old, new: f"{_quoted(corpus.name)} has no embedding by {old}: showing {new}.")


def settle_colour(corpus: CorpusInfo, options: Sequence[str]) -> None:
    fall_back(COLOUR_KEY, options, lambda old, new: f"{_quoted(corpus.name)} has no colour {old}: colouring by {new}.")


def runs_shown_on(tab: str, session_id: int, corpus: CorpusInfo) -> list[int]:
    """The session's runs that tab `tab` (one of `RUN_KEYS`) can show on this corpus, newest first: retrieval runs
    whose documents it holds, OOD runs that test some of its documents."""
    ws = get_workspace()
    if tab == OOD_TAB:
        return [int(r.id) for r in ws.runs(session_id, "ood") if ood_brief(r, corpus) is not None]
    return [int(r.id) for r in ws.runs(session_id, "retrieval") if run_fit_for(r.id, r.created_at, corpus).fits]


def settle_run(key: str, run_ids: Sequence[int], corpus: CorpusInfo) -> None:
    """A tab's run (widget `key`) that this corpus cannot show gives way to the latest that it can, visibly."""
    fall_back(key, run_ids, lambda old, new: f"Run #{old} has nothing to show on {_quoted(corpus.name)}: showing "
                                             f"run #{new}.", quoted=False)


def settle_view(ws: Workspace, session_id: int) -> None:
    """Make the view's values exist for this session and corpus (before anything reads them: the URL, the page):
    a corpus, model, colour or tab's run that does not exist gives way to the first one, a focus or selection
    beyond the corpus's documents goes; each with a toast."""
    ss = st.session_state
    corpora = ws.corpora(session_id)
    if not corpora:
        return
    corpus = settle_corpus(corpora)
    models = ws.embedded_models(corpus)
    if models:
        settle_model(corpus, models)
        settle_colour(corpus, colour_choices(session_id, corpus))
    tab = ss.get(TAB_KEY)
    if tab in RUN_KEYS and RUN_KEYS[tab] in ss:
        settle_run(RUN_KEYS[tab], runs_shown_on(tab, session_id, corpus), corpus)
    focus = ss.get(FOCUS_KEY)
    if focus is not None and not 0 <= focus < corpus.n_docs:
        ss[FOCUS_KEY] = None
        _toast(f"{_quoted(corpus.name)} has no document #{focus} ({corpus.n_docs:,} documents): no focus.")
    selection = ss.get(SELECTION_KEY) or []
    kept = [i for i in selection if 0 <= i < corpus.n_docs]
    if len(kept) < len(selection):
        ss[SELECTION_KEY] = kept
        _toast(f"{len(selection) - len(kept):,} selected documents are beyond {_quoted(corpus.name)}'s "
               f"{corpus.n_docs:,}: left out.")


def show_view(ws: Workspace, session_id: int, view: AtlasView, *, whole: bool = False) -> None:
    """Put `view` on the Atlas's state, then settle it (`settle_view`). With `whole` (the URL's view: Back and
    Forward restore it exactly) a field the view leaves empty is emptied too: no focus, no selection, the first
    tab; otherwise it stays as it is."""
    ss = st.session_state
    for key, value in ((CORPUS_KEY, view.corpus), (MODEL_KEY, view.model), (COLOUR_KEY, view.colour)):
        if value:
            ss[key] = value
    corpus = next((c for c in ws.corpora(session_id) if c.name == view.corpus), None) if view.corpus else None
    if corpus is not None:
        enter_corpus(corpus.id)
        if whole or view.focus is not None:
            ss[FOCUS_KEY] = view.focus
        if whole or view.selection:
            set_selection(view.selection)
    tab = tab_label(view.tab)
    if view.tab and tab is None:
        shown = tab_name(ss.get(TAB_KEY) or ATLAS_TABS[0])
        _toast(f"The Atlas has no tab {_quoted(view.tab)}: showing {_quoted(shown)}.")
    elif tab is not None:
        ss[TAB_KEY] = tab
    elif whole:
        ss[TAB_KEY] = ATLAS_TABS[0]
    if tab in RUN_KEYS and view.run is not None:
        ss[RUN_KEYS[tab]] = int(view.run)
        if view.methods:
            ss[retrieval_methods_key(view.run)] = list(view.methods)
        if view.query is not None:
            ss[RETRIEVAL_ORDER_KEY] = view.order if view.order in ORDERS else ORDERS[0]
            ss[retrieval_query_key(view.run)] = view.query
        if view.detector:
            ss[ood_detector_key(view.run)] = view.detector
    settle_view(ws, session_id)


def view_on_screen(ws: Workspace, session_id: int) -> AtlasView | None:
    """The view the Atlas's state holds (None when it names no corpus of the session)."""
    ss = st.session_state
    corpus = next((c for c in ws.corpora(session_id) if c.name == ss.get(CORPUS_KEY)), None)
    if corpus is None:
        return None
    same = (ss.get(SCOPE_KEY) or (None,))[0] == corpus.id
    focus = ss.get(FOCUS_KEY) if same else None
    tab = ss.get(TAB_KEY)
    run = ss.get(RUN_KEYS[tab]) if tab in RUN_KEYS else None
    return AtlasView(corpus=corpus.name, model=ss.get(MODEL_KEY), colour=ss.get(COLOUR_KEY),
                     focus=int(focus) if focus is not None else None,
                     selection=tuple(int(i) for i in (ss.get(SELECTION_KEY) or ())) if same else (),
                     tab=tab_name(tab) if tab in ATLAS_TABS[1:] else None,
                     run=int(run) if isinstance(run, int) else None)


def open_atlas(view: AtlasView) -> None:
    """Show `view` (of the current session) on the Atlas page; the address bar follows it there."""
    session_id, _ = require_session()
    show_view(get_workspace(), session_id, view)
    st.switch_page("pages/atlas.py")
