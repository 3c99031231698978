"""Per-user database connection, the current session, and matrices shared by every user of the server."""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np
import streamlit as st

from embedlab.errors import UserError
from embedlab.text_display import display_text
from storage import connect
from storage.db import default_db_path


def db_path() -> str:
    return str(os.environ.get("EMBEDLAB_DB") or default_db_path())


def get_db():
    """This browser session's connection (SQLite connections are cheap; one per user avoids interleaved
    transactions between users)."""
    path = db_path()
    db = st.session_state.get("_db")
    if db is None or st.session_state.get("_db_path") != path:
        try:
            db = connect(path)
        except UserError as exc:
            st.error(display_text(exc))
            st.stop()
        st.session_state["_db"], st.session_state["_db_path"] = db, path
    return db


def current_session() -> tuple[int, str] | None:
    """(id, name) of the session picked in the sidebar, or None."""
    from storage.sessions import get_session_id

    name = st.session_state.get("session_name")
    if not name:
        return None
    sid = get_session_id(get_db(), name)
    return (sid, name) if sid is not None else None


def require_session() -> tuple[int, str]:
    current = current_session()
    if current is None:
        st.info("Pick or create a session in the sidebar to begin.")
        st.stop()
    return current


@st.cache_resource(max_entries=16, show_spinner=False)
def _shared_matrix(path: str, matrix_id: int) -> np.ndarray:
    from storage.matrices import load_matrix

    db = connect(path)
    try:
        arr = load_matrix(db, matrix_id)
    finally:
        db.close()
    arr.setflags(write=False)
    return arr


def shared_matrix(matrix_id: int) -> np.ndarray:
    """A finished matrix, loaded once per server and shared read-only by all users."""
    return _shared_matrix(db_path(), int(matrix_id))


@st.cache_resource(show_spinner=False)
def shared_embedder(model: str):
    """One embedder (and so one loaded model) per server, shared by all users."""
    from embedlab.embedding.embedders import get_embedder

    return get_embedder(model)


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
