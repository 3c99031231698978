"""Sessions: list, rename, duplicate, delete, export/import, share link, notes, run history."""
from __future__ import annotations

import tempfile
import urllib.parse
from pathlib import Path

import pandas as pd
import streamlit as st

from components.run_history import metrics_frame, run_history
from components.state import get_db
from embedlab.errors import UserError
from storage.sessions import (delete_session, duplicate_session, get_notes, get_session_id, list_sessions,
                              rename_session, set_notes)
from components.page_setup import ensure_app_shell

ensure_app_shell()

st.title("Sessions")
db = get_db()
sessions = list_sessions(db)
if sessions:
    st.dataframe(pd.DataFrame([{"session": s.name, "corpora": s.corpora, "documents": s.documents,
                                "embeddings": s.embeddings, "runs": s.runs, "created": s.created_at}
                               for s in sessions]), hide_index=True, width="stretch")
else:
    st.info("No sessions yet: create one in the sidebar, or import an exported file below.")

with st.expander("Import a session (.sqlite exported from EmbedLab)"):
    upload = st.file_uploader("Exported session", type=["sqlite", "db"], key="import-upload")
    if upload is not None and st.button("Import", key="import-go"):
        from storage.transfer import import_session

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.sqlite"
            path.write_bytes(upload.getvalue())
            try:
                name = import_session(db, path)
            except UserError as exc:
                st.error(f"{upload.name}: {exc}")
            else:
                st.success(f"Imported as session {name!r}.")

current = st.session_state.get("session_name")
if not current or get_session_id(db, current) is None:
    st.stop()
sid = get_session_id(db, current)
st.subheader(f"“{current}”")
share = "?session=" + urllib.parse.quote(current, safe="")
st.caption("Share link (append to this app's address):")
st.code(share, language=None)

col1, col2, col3 = st.columns(3)
with col1:
    with st.form("rename"):
        new_name = st.text_input("Rename to", value=current, max_chars=200)
        if st.form_submit_button("Rename"):
            try:
                rename_session(db, current, new_name)
            except UserError as exc:
                st.error(str(exc))
            else:
                st.session_state["session_name"] = new_name.strip()
                st.query_params["session"] = new_name.strip()
                st.rerun()
with col2:
    if st.button("Duplicate", width="stretch"):
        copy = duplicate_session(db, current)
        st.success(f"Duplicated as {copy!r}.")
    from storage.transfer import export_session

    if st.button("Prepare export", width="stretch"):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = export_session(db, current, Path(tmp) / "session.sqlite")
            except UserError as exc:
                st.error(str(exc))
            else:
                st.session_state["export-bytes"] = (current, path.read_bytes())
    ready = st.session_state.get("export-bytes")
    if ready and ready[0] == current:
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in current)[:60] or "session"
        st.download_button(f"Download {len(ready[1]) / 1e6:.1f} MB", ready[1], file_name=f"{safe}.sqlite",
                           mime="application/vnd.sqlite3", width="stretch")
with col3:
    confirm = st.text_input("Type the session name to delete it", key="delete-confirm")
    if st.button("Delete session", type="primary", disabled=confirm != current, width="stretch"):
        delete_session(db, current)
        st.session_state["session_name"] = None
        st.query_params.clear()
        st.rerun()

st.markdown("#### Notes")
notes = get_notes(db, current)
edited = st.text_area("Markdown", value=notes, height=150, label_visibility="collapsed")
if edited != notes and st.button("Save notes"):
    set_notes(db, current, edited)
    st.rerun()
if notes:
    st.markdown(notes)  # Streamlit escapes raw HTML: notes render as Markdown only

st.markdown("#### Run history")
run = run_history(sid, key="sessions-runs")
if run:
    st.caption(f"Run {run['id']} · {run['kind']} · {run['created_at']}")
    st.dataframe(metrics_frame(run["metrics"]), hide_index=True, width="stretch")
    with st.expander("Parameters"):
        st.json(run["params"])
