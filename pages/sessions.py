"""Sessions: list, rename, duplicate, delete, export/import, share link, report, notes, judgments, run history."""
from __future__ import annotations

from components.page_setup import ensure_app_shell

ensure_app_shell()

import pandas as pd
import streamlit as st

from components.judge_summary import judgments_summary
from components.run_history import run_history, run_metrics
from components.session_picker import select_session
from components.share_link import ShareState, share_link_box
from components.state import get_workspace
from embedlab.errors import UserError
from embedlab.formatting import format_size
from embedlab.text_display import display_text
from embedlab.workspace import EXPORT_OMITTABLE, EXPORT_RECOMPUTE_NOTE, Workspace

FLASH_KEY = "sessions_flash"   # a message shown once, after the rerun that refreshes table and sidebar


def flash(kind: str, text: str) -> None:
    st.session_state[FLASH_KEY] = (kind, text)


def safe_file_stem(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:60] or "session"


def import_upload(ws: Workspace, upload) -> None:
    """Import an uploaded session file; switch to it and say which runs got new numbers."""
    try:
        result = ws.import_session_bytes(upload.getvalue())
    except UserError as exc:
        st.error(display_text(f"{upload.name}: {exc}"))
        return
    numbers, moved = result.run_numbers, result.renumbered
    text = f"Imported {display_text(upload.name)} as session {display_text(repr(result.name))}"
    text += f" with {len(numbers)} runs." if numbers else "."
    text += f" {moved}" if moved else (" Run numbers are as in the file." if numbers else "")
    if result.unverified:
        text += " Kept for this session only (imported, not verified): " + "; ".join(display_text(n)
                                                                                     for n in result.unverified)
    flash("success", text)
    select_session(result.name)
    st.rerun()


EVICT_KEY = "sessions_evict_pending"   # the matrix id whose Evict button asks for confirmation


def cached_matrices_box(ws: Workspace, session: str) -> None:
    """"Cached matrices": what this session's corpora use, one row each with an Evict button (confirmed)."""
    with st.expander("Cached matrices"):
        found = ws.cached_matrices(session)
        if not found:
            st.caption("No cached matrices: embed a corpus to store one.")
            return
        st.caption("Embeddings, token embeddings and maps this session's corpora use. Evicting one removes it for "
                   "every corpus that uses it (an embedding with its maps); it is recomputed when next needed.")
        pending = st.session_state.get(EVICT_KEY)
        for c in found:
            text, button = st.columns([5, 2], vertical_alignment="center")
            text.markdown(display_text(f"{c.what} · {c.meta.model or '-'} · {c.meta.rows} × {c.meta.cols} · "
                                       f"{c.status} · used by {', '.join(c.users) or 'no corpus'}"))
            if pending != c.meta.id:
                if button.button("Evict", key=f"evict-{c.meta.id}"):
                    st.session_state[EVICT_KEY] = c.meta.id
                    st.rerun()
                continue
            yes, no = button.columns(2)
            if yes.button("Confirm", key=f"evict-yes-{c.meta.id}", type="primary"):
                st.session_state.pop(EVICT_KEY, None)
                try:
                    removed = ws.evict_matrix(c.meta.id)
                except UserError as exc:
                    flash("error", display_text(exc))
                else:
                    flash("success", display_text("Evicted: " + "; ".join(f"{r.what} of {r.meta.model or '-'}"
                                                                           for r in removed)))
                st.rerun()
            if no.button("Cancel", key=f"evict-no-{c.meta.id}"):
                st.session_state.pop(EVICT_KEY, None)
                st.rerun()


st.title("Sessions")
ws = get_workspace()
shown = st.session_state.pop(FLASH_KEY, None)
if shown:
    getattr(st, shown[0])(shown[1])

sessions = ws.sessions()
if sessions:
    st.dataframe(pd.DataFrame([{"session": s.name, "corpora": s.corpora, "documents": s.documents,
                                "embeddings": s.embeddings, "runs": s.runs, "created": s.created_at}
                               for s in sessions]), hide_index=True, width="stretch")
else:
    st.info("No sessions yet: create one in the sidebar, or import an exported file below.")

with st.expander("Import a session (.sqlite exported from EmbedLab)"):
    upload = st.file_uploader("Exported session", type=["sqlite", "db"], key="import-upload")
    if upload is not None and st.button("Import", key="import-go"):
        import_upload(ws, upload)

current = st.session_state.get("session_name")
sid = ws.session_id(current) if current else None
if sid is None:
    st.stop()
st.subheader(f"“{display_text(current)}”")
st.caption("Share link to this session (the sidebar's “Share link” also keeps the page and view on screen):")
share_link_box(ShareState(session=current))

col1, col2, col3 = st.columns(3)
with col1:
    with st.form("rename"):
        new_name = st.text_input("Rename to", value=current, max_chars=200)
        if st.form_submit_button("Rename"):
            try:
                renamed = ws.rename_session(current, new_name)
            except UserError as exc:
                st.error(display_text(exc))
            else:
                select_session(renamed)
                st.rerun()
with col2:
    if st.button("Duplicate", width="stretch"):
        copy = ws.duplicate_session(current)
        flash("success", f"Duplicated as {display_text(repr(copy))} (pick it in the sidebar).")
        st.rerun()
with col3:
    confirm = st.text_input("Type the session name to delete it", key="delete-confirm")
    if st.button("Delete session", type="primary", disabled=confirm != current, width="stretch"):
        ws.delete_session(current)
        select_session(None)
        st.rerun()

st.markdown("#### Export")
left, right = st.columns([3, 2])
with left:
    parts = ws.export_contents(current)
    st.dataframe(pd.DataFrame([{"content": p.label, "items": p.items, "size": format_size(p.bytes),
                                "can be left out": "yes: " + EXPORT_RECOMPUTE_NOTE[p.key] if p.omittable else ""}
                               for p in parts]), hide_index=True, width="stretch")
    st.caption("Sizes of the data; the file adds the keyword-search index and SQLite's page overhead.")
with right:
    leave_out = st.multiselect("Leave out (can be recomputed)", list(EXPORT_OMITTABLE), key="export-without",
                               format_func={"tokens": "token embeddings", "projections": "projections"}.get)
    estimate = sum(p.bytes for p in parts if p.key not in leave_out)
    name = current

    def session_file() -> bytes:
        """Built when clicked, from the database as it is then: never a stale export."""
        return ws.export_bytes(name, without=leave_out)

    st.download_button(f"Download session (≈ {format_size(estimate)} of data)", session_file,
                       file_name=f"{safe_file_stem(current)}.sqlite", mime="application/vnd.sqlite3",
                       width="stretch", on_click="ignore", icon=":material/download:", key="export-download")

    def report_file() -> bytes:
        """The HTML report, built when clicked (on a connection of its own)."""
        return ws.report_html(name).encode("utf-8")

    st.download_button("Export report (HTML)", report_file, file_name=f"{safe_file_stem(current)}-report.html",
                       mime="text/html", width="stretch", on_click="ignore", icon=":material/description:",
                       key="report-download",
                       help="One self-contained HTML file: each corpus's map, bookmarks with their neighbours, "
                            "every run's tables and plots. Opens offline.")

cached_matrices_box(ws, current)

st.markdown("#### Notes")
notes = ws.notes(current)
edited = st.text_area("Notes", value=notes, height=150, label_visibility="collapsed")
if edited != notes and st.button("Save notes"):
    ws.set_notes(current, edited)
    st.rerun()
if notes:
    st.markdown(display_text(notes, keep_lines=True))  # shown as written: notes also come from imported files

st.markdown("#### Judgments")
judgments_summary(sid)

st.markdown("#### Run history")
run = run_history(sid, key="sessions-runs")
if run:
    st.caption(f"Run #{run.id} · {display_text(run.kind)} · {display_text(run.created_at)}")
    run_metrics(run, key="sessions-run-metrics")
    with st.expander("Parameters"):
        st.json(run.params)
