"""EmbedLab: the Streamlit entry. Navigation over pages/, the sidebar session picker, judge name and share link.

The navigation is declared before anything slow is imported or run: on a fresh server Streamlit first shows
the raw `pages/` folder as navigation, and only `st.navigation` replaces it, so it comes first.
"""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# A local favicon: a `:material/…:` page icon is fetched from fonts.gstatic.com, and the app works offline.
st.set_page_config(page_title="EmbedLab", page_icon=str(Path(__file__).resolve().parent / "assets" / "favicon.png"),
                   layout="wide")
PAGES = [
    st.Page("pages/corpora.py", title="Corpora", icon=":material/library_books:", default=True),
    st.Page("pages/atlas.py", title="Atlas", icon=":material/map:"),
    st.Page("pages/retrieval.py", title="Retrieval", icon=":material/search:"),
    st.Page("pages/ood.py", title="OOD", icon=":material/crisis_alert:"),
    st.Page("pages/sessions.py", title="Sessions", icon=":material/folder_shared:"),
]
navigation = st.navigation(PAGES)

# Imported after the navigation on purpose: these imports take 0.35-0.4 s (min of 8 fresh processes after `import
# streamlit`, 2-core machine), during which a fresh server would still show the raw pages/ list.
from components.judge_name import judge_dialog, judge_sidebar
from components.page_setup import mark_app_shell
from components.session_picker import session_picker
from components.share_link import apply_share_link, current_share_state, share_link_box, sync_url
from components.state import db_path
from embedlab.datasets import ensure_demo
from embedlab.workspace import Workspace  # also registers the engine's job kinds


@st.cache_resource(show_spinner="Preparing EmbedLab (first start)…")
def _first_start(path: str) -> None:
    """Once per server: mark jobs of dead processes interrupted; with EMBEDLAB_DEMO=1 set up the demo session."""
    with Workspace.open(path) as ws:
        ws.mark_interrupted()
    if os.environ.get("EMBEDLAB_DEMO") == "1":
        ensure_demo(path)


mark_app_shell()
_first_start(db_path())
apply_share_link(navigation.url_path)
session_picker()
judge_sidebar()
judge_dialog()
view = current_share_state(navigation.url_path)
sync_url(view)
with st.sidebar.popover("Share link", icon=":material/link:", width="stretch"):
    share_link_box(view)
st.sidebar.caption("EmbedLab · embeddings you can see and measure")
navigation.run()
