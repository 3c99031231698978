"""Make every page run inside `app.py`'s navigation, deep links included."""
from __future__ import annotations

import streamlit as st


def ensure_app_shell() -> None:
    """On a fresh server, Streamlit serves a deep link such as `/atlas?session=x` in its legacy pages-folder
    mode: the page runs alone, without `app.py` (no session picker, no layout) until `st.navigation` has run
    once. Leave that mode and rerun, so `app.py` runs and routes to the same page."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
