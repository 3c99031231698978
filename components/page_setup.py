"""Make every page run inside `app.py`'s navigation, deep links included."""
from __future__ import annotations

import streamlit as st

APP_SHELL_KEY = "_app_shell_ran"


def mark_app_shell() -> None:
    """Called by app.py: this browser session has run through the navigation."""
    st.session_state[APP_SHELL_KEY] = True


def ensure_app_shell() -> None:
    """On a fresh server, Streamlit serves a deep link such as `/atlas?session=x` in its legacy pages-folder
    mode: the page runs alone, without `app.py` (no session picker, no layout) until `st.navigation` has run
    once. Leave that mode and rerun, so `app.py` runs and routes to the same page. (Only when `app.py` has
    not run yet for this browser session: a rerun loses the widget event that triggered the run.)"""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory and not st.session_state.get(APP_SHELL_KEY):
        PagesManager.uses_pages_directory = False
        st.rerun()
