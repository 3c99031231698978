"""EmbedLab: the Streamlit entry. Navigation over pages/, the sidebar session picker."""
from __future__ import annotations

import os

import streamlit as st

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import embedlab.tasks  # noqa: E402,F401 - registers the job kinds
from components.page_setup import mark_app_shell  # noqa: E402
from components.session_picker import session_picker  # noqa: E402
from components.state import db_path  # noqa: E402


@st.cache_resource(show_spinner=False)
def _first_start(path: str) -> None:
    """Once per server: mark jobs of dead processes interrupted; with EMBEDLAB_DEMO=1 set up the demo session."""
    from embedlab.jobs import mark_interrupted
    from storage import connect

    db = connect(path)
    mark_interrupted(db)
    db.close()
    if os.environ.get("EMBEDLAB_DEMO") == "1":
        from embedlab.datasets import ensure_demo

        ensure_demo(path)


st.set_page_config(page_title="EmbedLab", page_icon=":material/explore:", layout="wide")
_first_start(db_path())

PAGES = [
    st.Page("pages/corpora.py", title="Corpora", icon=":material/library_books:", default=True),
    st.Page("pages/atlas.py", title="Atlas", icon=":material/map:"),
    st.Page("pages/retrieval.py", title="Retrieval", icon=":material/search:"),
    st.Page("pages/ood.py", title="OOD", icon=":material/crisis_alert:"),
    st.Page("pages/sessions.py", title="Sessions", icon=":material/folder_shared:"),
]
mark_app_shell()
navigation = st.navigation(PAGES)
session_picker()
st.sidebar.caption("EmbedLab · embeddings you can see and measure")
navigation.run()
