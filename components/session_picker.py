"""Sidebar session picker: select or create a session; `?session=NAME` in the URL selects one."""
from __future__ import annotations

import streamlit as st

from components.state import get_db
from embedlab.errors import UserError
from storage.sessions import create_session, list_sessions


def session_picker() -> str | None:
    db = get_db()
    names = [s.name for s in list_sessions(db)]
    wanted = st.query_params.get("session")
    if wanted and wanted != st.session_state.get("session_name"):
        if wanted in names:
            st.session_state["session_name"] = wanted
        else:
            st.sidebar.warning(f"No session named {wanted!r}.")
    current = st.session_state.get("session_name")
    if current not in names:
        current = names[0] if names else None
        st.session_state["session_name"] = current
    st.sidebar.markdown("### Session")
    if names:
        picked = st.sidebar.selectbox("Session", names, index=names.index(current), label_visibility="collapsed",
                                      key="session_select")
        if picked != current:
            st.session_state["session_name"] = picked
            current = picked
    if current:
        st.query_params["session"] = current
    with st.sidebar.popover("New session", width="stretch"):
        with st.form("new_session", clear_on_submit=True, border=False):
            name = st.text_input("Name", max_chars=200)
            if st.form_submit_button("Create"):
                try:
                    create_session(db, name)
                except UserError as exc:
                    st.error(str(exc))
                else:
                    st.session_state["session_name"] = name.strip()
                    st.query_params["session"] = name.strip()
                    st.rerun()
    return current
