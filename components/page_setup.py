"""Make every page run inside `app.py`'s navigation, deep links included."""
from __future__ import annotations

import runpy
from pathlib import Path

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

APP_SHELL_KEY = "_app_shell_ran"
APP = Path(__file__).resolve().parents[1] / "app.py"


def mark_app_shell() -> None:
    """Called by app.py: this browser session has run through the navigation."""
    st.session_state[APP_SHELL_KEY] = True


def ensure_app_shell() -> None:
    """Call first thing in a page. While Streamlit still runs in its legacy pages-folder mode (a deep link such as
    `/atlas?session=x` as the first visit of a fresh server; every run under AppTest) a page runs alone, without
    `app.py`: no session picker, no share link, a raw lowercase navigation. Leave that mode and run `app.py` here,
    in this same run, which routes to this page; then stop this bare run. Running in place (no `st.rerun`) keeps
    the widget event that triggered the run, and the real navigation replaces the raw one at once."""
    if not PagesManager.uses_pages_directory:
        return
    PagesManager.uses_pages_directory = False
    runpy.run_path(str(APP), run_name="__main__")
    st.stop()
