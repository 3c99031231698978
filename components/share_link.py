"""Share links: a full URL that reopens the app on the same session, page and view.

The query string carries the session, the corpus, model and colour-by of the Atlas, the focused document,
the selection, the Atlas's tab and the run on screen (the Atlas's tab's, Retrieval's, OOD's), and the judge's name
(`?judge=`: the address bar remembers it; the link offered to others leaves it out, so nobody judges under
another's name); the page is the URL's path (`/atlas`). The URL owns the view: `app.py` calls `apply_share_link` on
every run, before the page draws, and whenever the URL is not the one this browser session last wrote (a first visit,
a link, Back or Forward in the browser) its values land in the pages' widget keys, the Atlas's through
`components.atlas_state.show_view` (a value that does not exist falls back with a toast). Then
`current_share_state` reads the settled view and `sync_url` writes it to the address bar (Streamlit pushes a history
entry for each change, so Back steps through the views). The pure half (`ShareState`, `build_link`, `parse_link`)
knows no Streamlit runtime and is what the round-trip test checks.
"""
from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import streamlit as st

from components.judge_name import JUDGE_KEY, set_judge
from components.session_picker import SESSION_KEY, select_session
from components.state import current_session, get_workspace
from embedlab.errors import UserError
from embedlab.runs import RunHeader
from embedlab.text_display import display_text

PAGE_PATHS = ("corpora", "atlas", "retrieval", "ood", "sessions")
FALLBACK_BASE = "http://localhost:8501"
MAX_SELECTION = 20_000           # indices a link carries at most (as ranges, usually far fewer characters)
MAX_SELECTION_CHARS = 6_000      # beyond this the selection is left out of the link (browsers cap URL length)

# Session-state keys of the labs a link writes to before they draw (the Atlas's: `components.atlas_state`).
RETRIEVAL_CORPORA = {"labels": "retr_label_corpus", "judgments": "retr_judged_corpus", "typed": "retr_typed_corpus"}
RETRIEVAL_SOURCE, RETRIEVAL_MODEL = "retr_source", "retr_model"
OOD_CORPUS, OOD_MODEL = "ood_id_corpus", "ood_model"
RUN_TABLES = {"retrieval": "retrieval-runs-table", "ood": "ood-runs-table"}   # components.run_history keys
WRITTEN_KEY = "_share_link_written"   # (page, query) this browser session last wrote to the address bar
LINKED_RUN_KEY = "share_linked_run"   # {"retrieval"|"ood": run id} the link asked for


@dataclass(frozen=True)
class ShareState:
    """What a share link restores. `page` is the page's URL path ("" is the default page, Corpora)."""
    session: str | None = None
    page: str = ""
    corpus: str | None = None
    model: str | None = None
    colour: str | None = None
    focus: int | None = None
    selection: tuple[int, ...] = ()
    run: int | None = None
    tab: str | None = None          # the Atlas tab, by its words ("Failure regions")
    judge: str | None = None        # who judges in this browser (`components.judge_name`)


# --------------------------------------------------------------------------------------------- pure part

def encode_indices(indices: Iterable[int]) -> str:
    """Sorted unique indices as ranges: `3,5-9,12`."""
    values = sorted({int(i) for i in indices if int(i) >= 0})
    parts, i = [], 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        parts.append(str(values[i]) if i == j else f"{values[i]}-{values[j]}")
        i = j + 1
    return ",".join(parts)


_RANGE = re.compile(r"^(\d{1,9})(?:-(\d{1,9}))?$")


def decode_indices(text: str, *, limit: int = MAX_SELECTION) -> tuple[int, ...]:
    """The inverse of `encode_indices`; malformed parts are skipped, at most `limit` indices are kept."""
    out: list[int] = []
    for part in (text or "").split(","):
        m = _RANGE.match(part.strip())
        if not m:
            continue
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo:
            continue
        out.extend(range(lo, min(hi, lo + limit - len(out) - 1) + 1))
        if len(out) >= limit:
            break
    return tuple(sorted(set(out)))


def _int(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _text(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else None
    if value is None:
        return None
    value = str(value)
    return value if value.strip() and len(value) <= 500 else None


def to_query(state: ShareState) -> dict[str, str]:
    """The query parameters of a state, in a fixed order; empty fields are left out."""
    query: dict[str, str] = {}
    for name in ("session", "corpus", "model", "colour"):
        value = getattr(state, name)
        if value:
            query[name] = value
    if state.focus is not None:
        query["focus"] = str(int(state.focus))
    if state.selection:
        encoded = encode_indices(state.selection)
        if len(encoded) <= MAX_SELECTION_CHARS:
            query["sel"] = encoded
    if state.run is not None:
        query["run"] = str(int(state.run))
    if state.tab:
        query["tab"] = state.tab
    if state.judge:
        query["judge"] = state.judge
    return query


def from_query(params: Mapping[str, Any], page: str = "") -> ShareState:
    """A state from query parameters (as `st.query_params.to_dict()` or `parse_qs` give them); whatever does not
    parse is ignored."""
    get = {k: _text(v) for k, v in params.items()}
    return ShareState(session=get.get("session"), page=page if page in PAGE_PATHS else "",
                      corpus=get.get("corpus"), model=get.get("model"), colour=get.get("colour"),
                      focus=_int(get.get("focus")) if get.get("focus") else None,
                      selection=decode_indices(get.get("sel") or ""),
                      run=_int(get.get("run")) if get.get("run") else None, tab=get.get("tab"),
                      judge=get.get("judge"))


def build_link(base: str, state: ShareState) -> str:
    """The full URL: base, the page's path, the query."""
    url = base.rstrip("/") + "/" + state.page
    query = to_query(state)
    if query:
        url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote, safe="")
    return url


def split_base(url: str) -> tuple[str, str]:
    """(the app's base URL, the page's path) of a URL without its query: a last path segment naming a page is
    the page."""
    url = url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    head, _, last = url.rpartition("/")
    if last in PAGE_PATHS and urllib.parse.urlsplit(head).netloc:
        return head, last
    return url, ""


def parse_link(url: str) -> tuple[str, ShareState]:
    """(base URL, state) of a share link: the inverse of `build_link`."""
    parts = urllib.parse.urlsplit(url)
    base, page = split_base(urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")))
    params = urllib.parse.parse_qs(parts.query, keep_blank_values=False)
    return base, from_query(params, page)


def describe(state: ShareState) -> str:
    """What the link restores, in words."""
    bits = [f"session “{state.session}”" if state.session else "no session",
            f"page {state.page or 'corpora'}"]
    bits += [f"{name} {value}" for name, value in (("corpus", state.corpus), ("model", state.model),
                                                   ("colour by", state.colour)) if value]
    if state.focus is not None:
        bits.append(f"document #{state.focus}")
    if state.selection:
        kept = "sel" in to_query(state)
        bits.append(f"{len(state.selection):,} selected" + ("" if kept else " (too many for a link: left out)"))
    if state.run is not None:
        bits.append(f"run #{state.run}")
    if state.tab:
        bits.append(f"tab {state.tab}")
    if state.judge:
        bits.append(f"judge {state.judge}")
    return " · ".join(bits)


# --------------------------------------------------------------------------------------------- Streamlit part

def base_url() -> str:
    """This app's address as the browser sees it (without page and query), or a fallback when unknown."""
    try:
        url = st.context.url
    except Exception:  # noqa: BLE001 - outside a browser session (AppTest, bare mode)
        url = None
    if url:
        return split_base(url)[0]
    try:
        host = st.get_option("browser.serverAddress") or "localhost"
        port = st.get_option("browser.serverPort") or 8501
        return f"http://{host}:{port}"
    except Exception:  # noqa: BLE001 - no config to read: the usual local address
        return FALLBACK_BASE


def _atlas_state():
    """`components.atlas_state`, imported when the Atlas is on screen: with `components.data` it imports 0.09 s of
    engine modules (min of 5 fresh processes after the app's other imports, busy 2-core machine) that the other
    pages do not need before their first draw."""
    import components.atlas_state as atlas_state   # measured: 0.09 s the first page would wait for (docstring)

    return atlas_state


def _written_by_us(page: str, query: dict[str, Any]) -> bool:
    """Whether the URL is what this browser session wrote last (the widgets lead), or differs from it only by the
    session that `select_session` has just written; otherwise it came from outside (a link, Back, Forward)."""
    written = st.session_state.get(WRITTEN_KEY)
    if written is None:
        return False
    page = page if page in PAGE_PATHS else ""
    if written == (page, query):
        return True
    rest = {k: v for k, v in query.items() if k != "session"}
    return (written[0] == page and {k: v for k, v in written[1].items() if k != "session"} == rest
            and query.get("session") == st.session_state.get(SESSION_KEY))


def apply_share_link(page: str) -> None:
    """Before the page draws: when the URL is not the one this browser session last wrote (a first visit, a link,
    Back or Forward), its view becomes the pages' state; an empty query (a click in the navigation) leaves the
    state as it is."""
    query = st.query_params.to_dict()
    if _written_by_us(page, query):
        return
    st.session_state[WRITTEN_KEY] = (page if page in PAGE_PATHS else "", query)
    state = from_query(query, page)
    _apply_judge(state.judge)
    if not state.session:
        if query.get("session"):       # a name no session can have (too long, blank): say so, never silently
            st.toast(f"The link names a session that cannot exist ({len(str(query['session'])):,} characters): "
                     "showing another one.", icon=":material/warning:")
        return
    ws = get_workspace()
    try:
        sid = ws.session_id(state.session)
    except UserError:  # a name no session can have
        sid = None
    if sid is None:
        st.toast(f"No session named {display_text(repr(state.session))}: showing another one.",
                 icon=":material/warning:")
        return
    if st.session_state.get(SESSION_KEY) != state.session:
        select_session(state.session)
    if page == "atlas":
        atlas = _atlas_state()
        atlas.show_view(ws, sid, atlas.AtlasView(corpus=state.corpus, model=state.model, colour=state.colour,
                                                 focus=state.focus, selection=state.selection, tab=state.tab,
                                                 run=state.run), whole=True)
        return
    corpus = next((c for c in ws.corpora(sid) if c.name == state.corpus), None)
    if page == "retrieval":
        if corpus is not None:
            for key in RETRIEVAL_CORPORA.values():
                st.session_state[key] = corpus.name
        if state.model:
            st.session_state[RETRIEVAL_MODEL] = state.model
    elif page == "ood":
        if corpus is not None:
            st.session_state[OOD_CORPUS] = corpus.name
        if state.model:
            st.session_state[OOD_MODEL] = state.model
    if page in RUN_TABLES and state.run is not None:
        st.session_state[LINKED_RUN_KEY] = {page: int(state.run)}


def _apply_judge(name: str | None) -> None:
    """The URL's judge becomes this browser's (a name no judge can have is refused with a toast)."""
    if not name or name == st.session_state.get(JUDGE_KEY):
        return
    try:
        set_judge(name)
    except UserError as exc:
        st.toast(f"The link's judge name cannot be used: {display_text(exc)}", icon=":material/warning:")


def shown_run_id(kind: str, runs: Sequence[RunHeader]) -> int:
    """The run a page shows when none is picked in its history table: the one a share link asked for (when it is
    one of `runs`), else the latest (`runs` come newest first, as `list_runs` gives them)."""
    wanted = (st.session_state.get(LINKED_RUN_KEY) or {}).get(kind)
    ids = [int(r.id) for r in runs]
    return wanted if wanted in ids else ids[0]


def _table_pick(key: str) -> int | None:
    state = st.session_state.get(key)
    if state is None:
        return None
    selection = state.get("selection") if isinstance(state, Mapping) else getattr(state, "selection", None)
    if selection is None:
        return None
    rows = selection.get("rows") if isinstance(selection, Mapping) else getattr(selection, "rows", None)
    return int(rows[0]) if rows else None


def _run_on_screen(kind: str, session_id: int) -> int | None:
    runs = get_workspace().runs(session_id, kind)
    if not runs:
        return None
    row = _table_pick(RUN_TABLES[kind])
    if row is not None and row < len(runs):
        picked = int(runs[row].id)
        st.session_state[LINKED_RUN_KEY] = {kind: picked}   # stays on screen if the pick is cleared
        return picked
    return shown_run_id(kind, runs)


def current_share_state(page: str) -> ShareState:
    """The view on screen as a share state (read before the page draws: widget values are already current; the
    Atlas's view is settled first, `settle_view`, so the URL never names what the page will not show)."""
    ss = st.session_state
    current = current_session()
    judge = _text(ss.get(JUDGE_KEY))
    if current is None:
        return ShareState(page=page if page in PAGE_PATHS else "", judge=judge)
    sid, name = current
    state = ShareState(session=name, page=page if page in PAGE_PATHS else "", judge=judge)
    if page == "atlas":
        ws, atlas = get_workspace(), _atlas_state()
        atlas.settle_view(ws, sid)
        view = atlas.view_on_screen(ws, sid)
        if view is None:
            return state
        return replace(state, corpus=view.corpus, model=_text(view.model), colour=_text(view.colour),
                       focus=view.focus, selection=view.selection, tab=view.tab, run=view.run)
    if page == "retrieval":
        source = ss.get(RETRIEVAL_SOURCE)
        corpus = ss.get(RETRIEVAL_CORPORA[source]) if source in RETRIEVAL_CORPORA else None
        return replace(state, corpus=_text(corpus), model=_text(ss.get(RETRIEVAL_MODEL)),
                       run=_run_on_screen("retrieval", sid))
    if page == "ood":
        return replace(state, corpus=_text(ss.get(OOD_CORPUS)), model=_text(ss.get(OOD_MODEL)),
                       run=_run_on_screen("ood", sid))
    return state


def sync_url(state: ShareState) -> None:
    """The address bar shows the view on screen (its query is the share link's); remembered, so that the next run
    tells the user's own changes from a URL that came from outside."""
    query = to_query(state)
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)
    st.session_state[WRITTEN_KEY] = (state.page, query)


def share_link_box(state: ShareState, *, where=None) -> str:
    """The full link with a copy button (st.code's) and what it restores (not the judge: the link is for others);
    returns the link."""
    where = where or st
    state = replace(state, judge=None)
    link = build_link(base_url(), state)
    where.code(link, language=None, wrap_lines=True)
    where.caption("Restores " + display_text(describe(state)) + ".")
    return link
