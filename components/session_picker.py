"""Sidebar session picker: select or create a session. `select_session` is the one way to switch sessions."""
from __future__ import annotations

import streamlit as st

from components.state import get_workspace
from embedlab.errors import UserError
from embedlab.text_display import display_text

SESSION_KEY = "session_name"     # the current session's name: what every page reads
PICKER_KEY = "session_select"    # the sidebar selectbox; it follows SESSION_KEY, never leads it


def select_session(name: str | None) -> None:
    """Make `name` the current session (None: none). The sidebar picker and the URL follow on the next run:
    call `st.rerun()` afterwards when the sidebar has already been drawn in this run."""
    st.session_state[SESSION_KEY] = name
    if name:
        st.query_params["session"] = name
    elif "session" in st.query_params:
        del st.query_params["session"]


def _picked() -> None:
    st.session_state[SESSION_KEY] = st.session_state.get(PICKER_KEY)


def session_picker() -> str | None:
    """Draw the picker and the "New session" form; return the current session's name."""
    ws = get_workspace()
    names = [s.name for s in ws.sessions()]
    current = st.session_state.get(SESSION_KEY)
    if current not in names:
        current = names[0] if names else None
        st.session_state[SESSION_KEY] = current
    if current:
        st.query_params["session"] = current
    st.sidebar.markdown("### Session")
    if names:
        # The widget shows SESSION_KEY; set before it is drawn (allowed), so a switch made elsewhere shows here.
        if st.session_state.get(PICKER_KEY) != current:
            st.session_state[PICKER_KEY] = current
        st.sidebar.selectbox("Session", names, key=PICKER_KEY, on_change=_picked, label_visibility="collapsed")
    with st.sidebar.popover("New session", width="stretch"):
        with st.form("new_session", clear_on_submit=True, border=False):
            name = st.text_input("Name", max_chars=200)
            if st.form_submit_button("Create"):
                try:
                    created = ws.create_session(name)
                except UserError as exc:
                    st.error(display_text(exc))
                else:
                    select_session(created)
                    st.rerun()
    return current
