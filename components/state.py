"""This browser session's workspace (its one connection) and current session; widget-state helpers.

Data is read and written through `get_workspace()` (an `embedlab.workspace.Workspace`); reads cached across reruns
or users live in `components/data.py`."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from embedlab.errors import UserError
from embedlab.text_display import display_text
from embedlab.workspace import Workspace

WORKSPACE_KEY = "_workspace"


def db_path() -> str:
    """The database the app opens: `$EMBEDLAB_DB`, else data/embedlab.sqlite."""
    return Workspace.default_path()


def get_workspace() -> Workspace:
    """This browser session's workspace. One connection per browser session (SQLite connections are cheap; one per
    user avoids interleaved transactions between users), kept across reruns, reopened when the database path
    changes; a database that cannot be opened stops the page with its error."""
    path = db_path()
    ws = st.session_state.get(WORKSPACE_KEY)
    if ws is None or ws.path != path:
        try:
            fresh = Workspace.open(path)
        except UserError as exc:
            st.error(display_text(exc))
            st.stop()
        if ws is not None:
            ws.close()
        st.session_state[WORKSPACE_KEY] = ws = fresh
    return ws


def current_session() -> tuple[int, str] | None:
    """(id, name) of the session picked in the sidebar, or None."""
    name = st.session_state.get("session_name")
    if not name:
        return None
    sid = get_workspace().session_id(name)
    return (sid, name) if sid is not None else None


def require_session() -> tuple[int, str]:
    current = current_session()
    if current is None:
        st.info("Pick or create a session in the sidebar to begin.")
        st.stop()
    return current


def restore_widget(key: str, default: Any = None, valid: Callable[[Any], bool] | None = None) -> None:
    """Before drawing widget `key` inside a tab: give it the value it had when its tab was last open (Streamlit
    drops the state of widgets a run does not draw; see `keep_widgets`), else `default`; a kept value that `valid`
    refuses gives way to `default`."""
    kept = f"_kept_{key}"
    if key in st.session_state or (kept not in st.session_state and default is None):
        return
    value = st.session_state.get(kept, default)
    st.session_state[key] = value if valid is None or valid(value) else default


def keep_widgets(*keys: str) -> None:
    """After drawing widgets: keep their values for `restore_widget`."""
    for key in keys:
        if key in st.session_state:
            st.session_state[f"_kept_{key}"] = st.session_state[key]


def picked_row(key: str) -> int | None:
    """The row picked in the single-row-selection dataframe `key`, or None."""
    state = st.session_state.get(key)
    rows = list(state.selection.rows) if state is not None else []
    return int(rows[0]) if rows else None


def focus_on_pick(key: str, docs: Sequence[int | None], set_focus: Callable[[int], None]) -> Callable[[], None]:
    """An `on_select` callback for dataframe `key`: picking its row r focuses document docs[r] (None: nothing)."""
    def pick() -> None:
        row = picked_row(key)
        if row is not None and docs[row] is not None:
            set_focus(int(docs[row]))
    return pick
