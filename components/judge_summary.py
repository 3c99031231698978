"""The Sessions page's "Judgments" section: who judged what in the session (per corpus and judge), each corpus's
judgments as TREC qrels with a BEIR queries file to download, and where to go next (the Atlas's Judgments tab for
agreement and what to judge next, the Retrieval lab's "My judgments" to score methods on them)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from components.state import get_workspace
from embedlab.text_display import display_text


def judgments_summary(session_id: int) -> None:
    ws = get_workspace()
    counts = ws.judgment_counts(session_id)
    if not counts:
        st.caption("No judgments yet: grade neighbours, search hits or a run's lists (Relevant / Partly / Not) on the "
                   "Atlas or the Retrieval page.")
        return
    st.dataframe(pd.DataFrame([{"corpus": r["corpus"], "judge": r["judge"], "judgments": r["judgments"],
                                "queries": r["queries"], "relevant": r["relevant"], "last": r["last"]}
                               for r in counts]), hide_index=True, width="stretch", key="sessions-judgments")
    st.caption("Agreement of two judges and what to judge next: the Atlas's ✍️ Judgments tab. Scores of every method "
               "on them: the Retrieval lab, queries from *My judgments*.")
    corpora = {r["corpus_id"]: r["corpus"] for r in counts}
    for corpus_id, name in corpora.items():
        files = ws.judgment_files(session_id, corpus_id)
        cols = st.columns([2, 1, 1], vertical_alignment="center")
        cols[0].markdown(f"**{display_text(name)}** as TREC qrels")
        for col, (file_name, text) in zip(cols[1:], files.items()):
            col.download_button(file_name, text.encode("utf-8"), file_name=file_name, mime="text/plain",
                                key=f"sessions-judgments-{corpus_id}-{file_name}", icon=":material/download:",
                                width="stretch", on_click="ignore")
